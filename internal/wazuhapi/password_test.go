package wazuhapi

import (
	"regexp"
	"strings"
	"testing"
)

// apiPolicy is the API's own check (framework/wazuh/security.py, _user_password plus
// the 8..64 length test), so the generator is measured against the API, not itself.
var apiPolicy = regexp.MustCompile(`^.{8,64}$`)
var apiClasses = []*regexp.Regexp{regexp.MustCompile(`[a-z]`), regexp.MustCompile(`[A-Z]`), regexp.MustCompile(`\d`), regexp.MustCompile(`[^A-Za-z0-9]`)}

func apiAccepts(p string) bool {
	if !apiPolicy.MatchString(p) {
		return false
	}
	for _, re := range apiClasses {
		if !re.MatchString(p) {
			return false
		}
	}
	return true
}

func TestGeneratePasswordMeetsThePolicy(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		p, err := GeneratePassword(DefaultPasswordLength)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != DefaultPasswordLength {
			t.Fatalf("len(%q) = %d", p, len(p))
		}
		if !apiAccepts(p) {
			t.Fatalf("the API's policy refuses %q", p)
		}
		if err := CheckPassword(p); err != nil {
			t.Fatalf("CheckPassword(%q) = %v", p, err)
		}
		if strings.ContainsAny(p, " \"'`\\") {
			t.Fatalf("%q holds a quote, backslash or space", p)
		}
		seen[p] = true
	}
	if len(seen) != 2000 {
		t.Errorf("%d distinct passwords out of 2000", len(seen))
	}
	// At minimum length the four guaranteed characters land everywhere: over many
	// draws each position holds a symbol at least once (a generator that appended
	// them would fail this).
	symbolAt := make([]bool, MinPasswordLength)
	for i := 0; i < 500; i++ {
		p, err := GeneratePassword(MinPasswordLength)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range p {
			if strings.ContainsRune(symbolChars, r) {
				symbolAt[j] = true
			}
		}
	}
	for j, ok := range symbolAt {
		if !ok {
			t.Errorf("no symbol ever at position %d", j)
		}
	}
}

func TestGeneratePasswordLengths(t *testing.T) {
	for _, n := range []int{MinPasswordLength, 32, MaxPasswordLength} {
		p, err := GeneratePassword(n)
		if err != nil || len(p) != n || !apiAccepts(p) {
			t.Errorf("GeneratePassword(%d) = %q, %v", n, p, err)
		}
	}
	for _, n := range []int{0, 7, 65} {
		if _, err := GeneratePassword(n); err == nil {
			t.Errorf("GeneratePassword(%d) succeeded", n)
		}
	}
}

func TestCheckPasswordAgreesWithTheAPI(t *testing.T) {
	for _, p := range []string{
		"wazuh", "wazuh-wui", "Wazuh1!", "Wazuh12!", "wazuh123!", "WAZUH123!", "Wazuhwazuh!", "Wazuh1234",
		"Wazuh 123", "Wazuh123é", "Wazuh123€", strings.Repeat("aA1!", 16), strings.Repeat("aA1!", 16) + "x",
	} {
		got := CheckPassword(p) == nil
		// The API counts characters, Go's regexp too (. is a rune).
		if want := apiAccepts(p); got != want {
			t.Errorf("CheckPassword(%q) accepts = %v, the API's policy = %v", p, got, want)
		}
	}
	err := CheckPassword("wazuh")
	if err == nil || !strings.Contains(err.Error(), "5009") {
		t.Errorf("short password: %v", err)
	}
	err = CheckPassword("wazuhwazuh1")
	if err == nil || !strings.Contains(err.Error(), "an upper-case letter, a symbol") {
		t.Errorf("missing classes: %v", err)
	}
}
