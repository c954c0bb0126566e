package auth

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Argon2Params are Argon2id's cost parameters.
type Argon2Params struct {
	// MemoryKiB is the memory cost in KiB.
	MemoryKiB uint32
	// Passes is the time cost (iterations).
	Passes uint32
	// Threads is the parallelism.
	Threads uint8
}

// DefaultArgon2 meets OWASP's Argon2id floor: 19 MiB, 2 passes, 1 lane.
var DefaultArgon2 = Argon2Params{MemoryKiB: 19 * 1024, Passes: 2, Threads: 1}

// Password length rules from NIST SP 800-63B.
const (
	// MinLengthSingleFactor applies where the password is the only factor.
	MinLengthSingleFactor = 15
	// MinLengthWithMFA applies where a second factor is required.
	MinLengthWithMFA = 8
	// MaxLength is generous (64+ must be allowed) but caps hashing cost.
	MaxLength = 256
)

// commonPasswordsFile is a hand-kept list: passwords people pick for a
// clinic portal (seasons, clinic words) that breach corpora rank low.
//
//go:embed common-passwords.txt
var commonPasswordsFile []byte

// breachedPasswordsFile holds the 49,233 passwords seen most often in
// public breaches (see breached-passwords.LICENSE for its source).
//
//go:embed breached-passwords.txt.gz
var breachedPasswordsFile []byte

// commonPasswords is built on first use, so processes that never check a
// password do not pay for the set.
var commonPasswords = sync.OnceValue(func() map[string]bool {
	m := make(map[string]bool, 50_000)
	add := func(r io.Reader) {
		s := bufio.NewScanner(r)
		for s.Scan() {
			if line := strings.TrimSpace(s.Text()); line != "" && line[0] != '#' {
				m[strings.ToLower(line)] = true
			}
		}
	}
	add(bytes.NewReader(commonPasswordsFile))
	zr, err := gzip.NewReader(bytes.NewReader(breachedPasswordsFile))
	if err != nil {
		// The file is embedded at build time; a broken one is a build defect.
		panic(fmt.Sprintf("embedded breached-password list is corrupt: %v", err))
	}
	add(zr)
	return m
})

// Hasher hashes and verifies passwords with Argon2id.
type Hasher struct {
	// Params are used for new hashes; a stored hash with weaker ones is
	// reported as needing a rehash.
	Params Argon2Params
}

// Hash returns a PHC-format Argon2id hash of the NFKC-normalised password.
func (h Hasher) Hash(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("drawing salt: %w", err)
	}
	p := h.Params
	key := argon2.IDKey([]byte(norm.NFKC.String(password)), salt, p.Passes, p.MemoryKiB,
		p.Threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB,
		p.Passes, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded, and whether encoded was
// made with weaker parameters than h.Params and should be replaced.
func (h Hasher) Verify(password, encoded string) (ok, rehash bool, err error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(norm.NFKC.String(password)), salt, p.Passes, p.MemoryKiB,
		p.Threads, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	rehash = p.MemoryKiB < h.Params.MemoryKiB || p.Passes < h.Params.Passes ||
		p.Threads < h.Params.Threads
	return ok, rehash, nil
}

func parsePHC(s string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("stored password hash is not argon2id")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("stored password hash has an unknown version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Passes,
		&p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("stored password hash has bad parameters")
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return p, nil, nil, fmt.Errorf("stored password hash is malformed")
	}
	return p, salt, key, nil
}

// CheckPassword applies 800-63B's rules: a minimum length (15 when the
// password is the only factor, 8 otherwise), MaxLength, and no common,
// breached or context-specific password. There are no composition rules.
// The returned message is safe to show the user.
func CheckPassword(password string, mfaRequired bool, context ...string) error {
	n := utf8.RuneCountInString(norm.NFKC.String(password))
	min := MinLengthSingleFactor
	if mfaRequired {
		min = MinLengthWithMFA
	}
	if n < min {
		return fmt.Errorf("use at least %d characters; a passphrase of several words works well",
			min)
	}
	if n > MaxLength {
		return fmt.Errorf("use at most %d characters", MaxLength)
	}
	lower := strings.ToLower(password)
	// Also catch a listed password with spaces, or with digits and
	// symbols tacked on the end ("password2026!").
	bare := strings.TrimRight(strings.ReplaceAll(lower, " ", ""), "0123456789!@#$%^&*?.")
	listed := commonPasswords()
	if listed[lower] || listed[strings.ReplaceAll(lower, " ", "")] || listed[bare] {
		return fmt.Errorf("that password is on a list of common or breached passwords; " +
			"choose another")
	}
	if repetitive(lower) {
		return fmt.Errorf("that password repeats a short pattern; choose another")
	}
	for _, c := range context {
		if c = strings.ToLower(strings.TrimSpace(c)); len(c) >= 4 &&
			strings.Contains(lower, c) && len(lower)-len(c) < min {
			return fmt.Errorf("that password is mostly your name, email or the clinic's name; " +
				"choose another")
		}
	}
	return nil
}

// repetitive reports a password made of one short unit repeated, like
// "abcabcabcabcabc" or "aaaaaaaaaaaaaaa".
func repetitive(s string) bool {
	for unit := 1; unit <= 4 && unit < len(s); unit++ {
		if strings.Repeat(s[:unit], len(s)/unit+1)[:len(s)] == s {
			return true
		}
	}
	return false
}
