// Package codec encrypts every payload socflow's workflows store in Temporal (inputs,
// results, activity arguments, failure details) with AES-256-GCM, so histories shown in
// the Web UI and CLI carry no secret in clear. Keys rotate: the active key encrypts, all
// keys of the ring decrypt, and each payload names the key that sealed it.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Payload metadata this codec writes and reads.
const (
	// MetadataEncoding is the encoding key every Temporal payload carries.
	MetadataEncoding = "encoding"
	// EncodingEncrypted marks a payload sealed by this codec.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key that sealed the payload, so rotation keeps old
	// payloads readable.
	MetadataKeyID = "encryption-key-id"
)

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Keyring holds the keys: Active seals, every key opens.
type Keyring struct {
	active string
	aeads  map[string]cipher.AEAD
}

// keyFile is the on-disk format: {"active": "2026-11", "keys": {"2026-11": "<base64 of 32 bytes>", ...}}.
type keyFile struct {
	Active string            `json:"active"`
	Keys   map[string]string `json:"keys"`
}

// ParseKeyring reads a key file's content; every problem names the field and the fix.
func ParseKeyring(data []byte) (*Keyring, error) {
	var f keyFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("cannot parse the codec key file: %w (want {\"active\": ID, \"keys\": {ID: base64 of 32 bytes}})", err)
	}
	if len(f.Keys) == 0 {
		return nil, errors.New("codec key file: keys: none given (fix: add at least one key, e.g. from `head -c32 /dev/urandom | base64`)")
	}
	r := &Keyring{active: f.Active, aeads: map[string]cipher.AEAD{}}
	for id, b64 := range f.Keys {
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("codec key file: keys: key id %q must be 1-64 letters, digits, '.', '_' or '-'", id)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("codec key file: keys.%s: must be the base64 of exactly 32 bytes (AES-256)", id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("codec key file: keys.%s: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec key file: keys.%s: %w", id, err)
		}
		r.aeads[id] = aead
	}
	if _, ok := r.aeads[f.Active]; !ok {
		return nil, fmt.Errorf("codec key file: active: %q is not one of the keys %v (fix: name the key that should encrypt)", f.Active, r.KeyIDs())
	}
	return r, nil
}

// LoadKeyring reads a key file (keep it 0600: whoever reads it reads every history).
func LoadKeyring(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the codec key file: %w", err)
	}
	return ParseKeyring(data)
}

// NewKeyFile returns the content of a new key file with one fresh key named id.
func NewKeyFile(id string) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return json.MarshalIndent(keyFile{Active: id, Keys: map[string]string{id: base64.StdEncoding.EncodeToString(key)}}, "", "  ")
}

// KeyIDs lists the ring's key ids, sorted.
func (r *Keyring) KeyIDs() []string {
	ids := make([]string, 0, len(r.aeads))
	for id := range r.aeads {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Active is the id of the key that encrypts.
func (r *Keyring) Active() string { return r.active }

// Codec is a converter.PayloadCodec sealing payloads with the keyring's active key.
type Codec struct {
	ring *Keyring
}

// New returns the codec of a keyring.
func New(ring *Keyring) *Codec { return &Codec{ring: ring} }

// Encode seals each payload (its whole proto, metadata included) with the active key,
// except the ones marked clear (values of a Clear type, which carry no secret).
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	id := c.ring.active
	aead := c.ring.aeads[id]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if isClear(p) {
			out[i] = p
			continue
		}
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("cannot encode payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("cannot encode payload: %w", err)
		}
		// The key id is authenticated data: a payload relabelled with another id fails.
		sealed := aead.Seal(nonce, nonce, plain, []byte(id))
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte(id)},
			Data:     sealed,
		}
	}
	return out, nil
}

// Decode opens sealed payloads with the key they name and passes others through, so
// input typed into `tctl workflow start --input` (unencrypted) is still accepted. A
// clear payload loses its mark: readers such as the temporal CLI print plain JSON only
// when the encoding is all its metadata says.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if isClear(p) {
			out[i] = withoutClearMark(p)
			continue
		}
		if string(p.GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.ring.aeads[id]
		if !ok {
			return nil, fmt.Errorf("cannot decode payload: it was encrypted with key %q, which is not in the key ring %v (fix: keep retired keys in the key file)", id, c.ring.KeyIDs())
		}
		n := aead.NonceSize()
		if len(p.Data) < n {
			return nil, errors.New("cannot decode payload: too short to be sealed")
		}
		plain, err := aead.Open(nil, p.Data[:n], p.Data[n:], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("cannot decode payload sealed with key %q: %w", id, err)
		}
		var dec commonpb.Payload
		if err := proto.Unmarshal(plain, &dec); err != nil {
			return nil, fmt.Errorf("cannot decode payload: %w", err)
		}
		out[i] = &dec
	}
	return out, nil
}

// DataConverter wraps the default converter (with Clear values written as marked
// plain JSON first) with the codec; nil ring means no encryption (payloads stay
// readable, as they would without socflow's codec).
func DataConverter(ring *Keyring) converter.DataConverter {
	if ring == nil {
		return payloadConverter()
	}
	return converter.NewCodecDataConverter(payloadConverter(), New(ring))
}

// FailureConverter moves failure messages and stack traces into an encoded payload, so
// an error that quotes a value does not leak it through the history.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true})
}
