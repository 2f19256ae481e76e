package wazuhapi

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"
)

// The API's password policy (framework/wazuh/security.py): 8 to 64 characters, with
// at least one lower-case letter, one upper-case letter, one digit and one character
// that is neither a letter nor a digit.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 64
)

// DefaultPasswordLength is the length socflow generates: the charm's 15 characters.
const DefaultPasswordLength = 15

// The character classes generated passwords draw from. Symbols are printable ASCII
// only, without quotes, backslash or space, so a password survives shells, YAML and
// basic auth unchanged.
const (
	lowerChars  = "abcdefghijklmnopqrstuvwxyz"
	upperChars  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitChars  = "0123456789"
	symbolChars = "!#$%&()*+,-./:;<=>?@[]^_{|}~"
)

// CheckPassword says why the API would refuse password, in the API's own terms
// (codes 5009 and 5007), or nil when it complies.
func CheckPassword(password string) error {
	if n := utf8.RuneCountInString(password); n < MinPasswordLength || n > MaxPasswordLength {
		return fmt.Errorf("password has %d characters; the wazuh API wants %d to %d (error %d)", n, MinPasswordLength, MaxPasswordLength, CodePasswordLength)
	}
	var missing []string
	if !strings.ContainsAny(password, lowerChars) {
		missing = append(missing, "a lower-case letter")
	}
	if !strings.ContainsAny(password, upperChars) {
		missing = append(missing, "an upper-case letter")
	}
	if !strings.ContainsAny(password, digitChars) {
		missing = append(missing, "a digit")
	}
	if !strings.ContainsFunc(password, func(r rune) bool { return !isASCIIAlnum(r) }) {
		missing = append(missing, "a symbol")
	}
	if len(missing) > 0 {
		return fmt.Errorf("password lacks %s; the wazuh API wants upper and lower case letters, a digit and a symbol (error %d)",
			strings.Join(missing, ", "), CodePasswordInsecure)
	}
	return nil
}

func isASCIIAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// GeneratePassword returns a random password of n characters (crypto/rand) that the
// API's policy accepts: one character of each class, the rest from all of them,
// shuffled.
func GeneratePassword(n int) (string, error) {
	if n < MinPasswordLength || n > MaxPasswordLength {
		return "", fmt.Errorf("cannot generate a wazuh API password of %d characters: the API wants %d to %d", n, MinPasswordLength, MaxPasswordLength)
	}
	classes := []string{lowerChars, upperChars, digitChars, symbolChars}
	all := strings.Join(classes, "")
	out := make([]byte, 0, n)
	for _, class := range classes {
		c, err := pick(class)
		if err != nil {
			return "", err
		}
		out = append(out, c)
	}
	for len(out) < n {
		c, err := pick(all)
		if err != nil {
			return "", err
		}
		out = append(out, c)
	}
	// Fisher-Yates, so the guaranteed characters sit anywhere.
	for i := len(out) - 1; i > 0; i-- {
		j, err := randIndex(i + 1)
		if err != nil {
			return "", err
		}
		out[i], out[j] = out[j], out[i]
	}
	return string(out), nil
}

func pick(chars string) (byte, error) {
	i, err := randIndex(len(chars))
	if err != nil {
		return 0, err
	}
	return chars[i], nil
}

var errRandom = errors.New("cannot generate a wazuh API password: no randomness")

func randIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errRandom, err)
	}
	return int(v.Int64()), nil
}
