package wazuhstandin

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// fernet is the Fernet scheme the real cluster encrypts every message with,
// keyed as Fernet(base64(key)) — the 32 characters of <key> are the 16-byte
// signing key followed by the 16-byte encryption key. A message sealed under
// another key fails the HMAC: cryptography's InvalidToken, the cluster's
// error 3025 "Could not decrypt message".
type fernet struct{ sign, enc []byte }

// errInvalidToken is cryptography.fernet.InvalidToken.
var errInvalidToken = errors.New("InvalidToken")

func newFernet(key string) fernet {
	k := []byte(key)
	if len(k) < 32 {
		k = append(k, make([]byte, 32-len(k))...)
	}
	return fernet{sign: k[:16], enc: k[16:32]}
}

func (f fernet) seal(plain []byte) []byte {
	iv := make([]byte, aes.BlockSize)
	_, _ = rand.Read(iv)
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	padded := append(append([]byte{}, plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(f.enc)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	tok := []byte{0x80}
	tok = binary.BigEndian.AppendUint64(tok, uint64(time.Now().Unix()))
	tok = append(append(tok, iv...), ct...)
	mac := hmac.New(sha256.New, f.sign)
	mac.Write(tok)
	tok = mac.Sum(tok)
	out := make([]byte, base64.URLEncoding.EncodedLen(len(tok)))
	base64.URLEncoding.Encode(out, tok)
	return out
}

func (f fernet) open(token []byte) ([]byte, error) {
	tok := make([]byte, base64.URLEncoding.DecodedLen(len(token)))
	n, err := base64.URLEncoding.Decode(tok, token)
	if err != nil || n < 1+8+aes.BlockSize+aes.BlockSize+sha256.Size || tok[0] != 0x80 {
		return nil, errInvalidToken
	}
	tok = tok[:n]
	body, sum := tok[:n-sha256.Size], tok[n-sha256.Size:]
	mac := hmac.New(sha256.New, f.sign)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), sum) {
		return nil, errInvalidToken
	}
	iv, ct := body[9:9+aes.BlockSize], body[9+aes.BlockSize:]
	if len(ct)%aes.BlockSize != 0 {
		return nil, errInvalidToken
	}
	block, _ := aes.NewCipher(f.enc)
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errInvalidToken
	}
	return plain[:len(plain)-pad], nil
}
