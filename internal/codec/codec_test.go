package codec

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

func ring(t *testing.T, data string) *Keyring {
	t.Helper()
	r, err := ParseKeyring([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const (
	key1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	key2 = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=" // 32 bytes
)

func TestEncryptsAndRoundTrips(t *testing.T) {
	dc := DataConverter(ring(t, `{"active":"k1","keys":{"k1":"`+key1+`"}}`))
	secret := "s3cr3t-rabbit-password"
	p, err := dc.ToPayload(map[string]string{"password": secret})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Data, []byte(secret)) || string(p.Metadata[MetadataKeyID]) != "k1" {
		t.Fatalf("payload not sealed with k1: %q", p)
	}
	var back map[string]string
	if err := dc.FromPayload(p, &back); err != nil || back["password"] != secret {
		t.Fatalf("round trip: %v %v", back, err)
	}
}

func TestRotationKeepsOldPayloadsReadable(t *testing.T) {
	old := DataConverter(ring(t, `{"active":"k1","keys":{"k1":"`+key1+`"}}`))
	p, err := old.ToPayload("written before rotation")
	if err != nil {
		t.Fatal(err)
	}
	rotated := DataConverter(ring(t, `{"active":"k2","keys":{"k1":"`+key1+`","k2":"`+key2+`"}}`))
	var s string
	if err := rotated.FromPayload(p, &s); err != nil || s != "written before rotation" {
		t.Fatalf("old-key payload after rotation: %q %v", s, err)
	}
	p2, _ := rotated.ToPayload("after")
	if string(p2.Metadata[MetadataKeyID]) != "k2" {
		t.Fatalf("rotated ring encrypts with %q, want k2", p2.Metadata[MetadataKeyID])
	}
	withoutK1 := DataConverter(ring(t, `{"active":"k2","keys":{"k2":"`+key2+`"}}`))
	err = withoutK1.FromPayload(p, &s)
	if err == nil || !strings.Contains(err.Error(), `key "k1"`) {
		t.Fatalf("a retired key's payload gave %v, want an error naming k1", err)
	}
}

func TestUnencryptedPayloadsAreAccepted(t *testing.T) {
	plain, _ := converter.GetDefaultDataConverter().ToPayload("typed into tctl")
	dc := DataConverter(ring(t, `{"active":"k1","keys":{"k1":"`+key1+`"}}`))
	var s string
	if err := dc.FromPayload(plain, &s); err != nil || s != "typed into tctl" {
		t.Fatalf("plain payload: %q %v", s, err)
	}
}

func TestTamperingAndRelabellingFail(t *testing.T) {
	r := ring(t, `{"active":"k1","keys":{"k1":"`+key1+`","k2":"`+key1+`"}}`)
	c := New(r)
	enc, _ := c.Encode([]*commonpb.Payload{{Data: []byte("x")}})
	enc[0].Data[len(enc[0].Data)-1] ^= 1
	if _, err := c.Decode(enc); err == nil {
		t.Fatal("tampered payload decoded")
	}
	enc, _ = c.Encode([]*commonpb.Payload{{Data: []byte("x")}})
	enc[0].Metadata[MetadataKeyID] = []byte("k2") // same key bytes, other id: the AAD must catch it
	if _, err := c.Decode(enc); err == nil {
		t.Fatal("relabelled payload decoded")
	}
}

func TestParseKeyringNamesTheProblem(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{`, "cannot parse"},
		{`{"active":"k1","keys":{}}`, "keys: none given"},
		{`{"active":"k1","keys":{"k1":"c2hvcnQ="}}`, "keys.k1: must be the base64 of exactly 32 bytes"},
		{`{"active":"k9","keys":{"k1":"` + key1 + `"}}`, `active: "k9" is not one of the keys`},
		{`{"active":"a b","keys":{"a b":"` + key1 + `"}}`, "key id"},
	} {
		_, err := ParseKeyring([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKeyring(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
	f, err := NewKeyFile("fresh")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ParseKeyring(f); err != nil || r.Active() != "fresh" {
		t.Fatalf("NewKeyFile output does not parse: %v", err)
	}
}

func TestServerRequiresTokenAndAnswersCORS(t *testing.T) {
	c := New(ring(t, `{"active":"k1","keys":{"k1":"`+key1+`"}}`))
	srv := httptest.NewServer(NewServer(c, ServerOptions{Token: "tok", AllowedOrigins: []string{"http://127.0.0.1:8233"}}))
	defer srv.Close()
	sealed, _ := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"hello"`)}})
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})

	post := func(token string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "http://127.0.0.1:8233")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tok := range []string{"", "wrong"} {
		if resp := post(tok); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: HTTP %d, want 401", tok, resp.StatusCode)
		}
	}
	resp := post("tok")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Fatalf("decode: HTTP %d, CORS %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	var out struct {
		Payloads []struct {
			Data []byte `json:"data"`
		} `json:"payloads"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Payloads) != 1 || string(out.Payloads[0].Data) != `"hello"` {
		t.Fatalf("decoded %+v %v", out, err)
	}
	for path, want := range map[string]int{"/t/tok/decode": http.StatusOK, "/t/wrong/decode": http.StatusUnauthorized, "/t/decode": http.StatusUnauthorized} {
		resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %s: HTTP %d, want %d", path, resp.StatusCode, want)
		}
	}
	pre, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	pre.Header.Set("Origin", "http://127.0.0.1:8233")
	presp, err := http.DefaultClient.Do(pre)
	if err != nil || presp.StatusCode != http.StatusNoContent || presp.Header.Get("Access-Control-Allow-Headers") == "" {
		t.Fatalf("preflight: %v %v", presp, err)
	}
}

// clearStatus stands for a status type: phases and reasons, no secret.
type clearStatus struct {
	Phase string `json:"phase"`
}

func (clearStatus) ClearPayload() {}

// A Clear value stays plain JSON that tctl can print; everything else is still sealed,
// and both read back through the same converter.
func TestClearValuesStayReadable(t *testing.T) {
	dc := DataConverter(ring(t, `{"active":"k1","keys":{"k1":"`+key1+`"}}`))
	p, err := dc.ToPayload(clearStatus{Phase: "waiting-platform"})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata[MetadataEncoding]) != "json/plain" || string(p.Metadata[MetadataClear]) != "true" ||
		string(p.Data) != `{"phase":"waiting-platform"}` {
		t.Fatalf("clear value was not left readable: %v %q", p.Metadata, p.Data)
	}
	var back clearStatus
	if err := dc.FromPayload(p, &back); err != nil || back.Phase != "waiting-platform" {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	// A plain JSON reader (what tctl does) needs no codec at all.
	if err := converter.GetDefaultDataConverter().FromPayload(p, &back); err != nil {
		t.Fatalf("the default converter cannot read a clear payload: %v", err)
	}
	dec, err := New(ring(t, `{"active":"k1","keys":{"k1":"`+key1+`"}}`)).Decode([]*commonpb.Payload{p})
	if err != nil || len(dec[0].Metadata) != 1 || string(dec[0].Data) != string(p.Data) {
		t.Fatalf("decode through the codec (server) should hand out plain JSON with only its encoding: %v %v", dec, err)
	}
	sealed, err := dc.ToPayload(struct{ Phase string }{"x"})
	if err != nil || string(sealed.Metadata[MetadataEncoding]) != EncodingEncrypted {
		t.Fatalf("a value without ClearPayload was not sealed: %v %v", sealed.GetMetadata(), err)
	}
}
