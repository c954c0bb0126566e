package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewCode returns a random code of n bytes, base32 in groups of four for
// reading aloud or typing, e.g. "ABCD-EFGH-...".
func NewCode(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := codeEncoding.EncodeToString(b)
	var groups []string
	for len(s) > 4 {
		groups = append(groups, s[:4])
		s = s[4:]
	}
	return strings.Join(append(groups, s), "-"), nil
}

// HashCode is how high-entropy one-time codes (enrolment, recovery) and
// tokens are stored: SHA-256 of the normalised code, bound to a purpose.
// Their 80+ bits of entropy make a slow hash unnecessary.
func HashCode(purpose, code string) []byte {
	norm := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	h := sha256.New()
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(norm))
	return h.Sum(nil)
}
