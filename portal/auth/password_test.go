package auth

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

func TestCheckPasswordFollows80063B(t *testing.T) {
	cases := map[string]struct {
		// password is the candidate.
		password string
		// mfa says whether a second factor is required (8 minimum) or not (15).
		mfa bool
		// wantErr is a substring of the message, or "" for accepted.
		wantErr string
	}{
		"14 characters, password only":  {"a-fine-phrase!", false, "at least 15"},
		"15 characters, password only":  {"tulip cloud sun", false, ""},
		"8 characters with MFA":         {"kx7!pqlm", true, ""},
		"7 characters with MFA":         {"kx7!pql", true, "at least 8"},
		"64 characters allowed":         {strings.Repeat("word ", 12) + "ends here", false, ""},
		"no composition rules":          {"all lower case words here", false, ""},
		"common password":               {"passwordpassword", false, "common or breached"},
		"common with spaces":            {"correct horse battery staple", false, "common"},
		"common, any case":              {"PasswordPassword1", false, "common"},
		"common with a suffix":          {"qwertyuiopasdfgh2026!", false, "common"},
		"breached, common":              {"manchester", true, "common or breached"},
		"breached, rare":                {"87654321vv", true, "common or breached"},
		"breached, long":                {"123456789qwerty", false, "common or breached"},
		"repeated unit":                 {"abcabcabcabcabcabc", false, "repeats"},
		"too long":                      {strings.Repeat("x1y2", 65), false, "at most 256"},
		"mostly the clinic's name":      {"northlungclinic1", false, "clinic"},
		"unicode counts as characters":  {"ñandú ñandú ñandú", false, ""},
		"emoji and spaces count as one": {"🙂🙂🙂🙂🙂🙂🙂", true, "at least 8"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			err := CheckPassword(tc.password, tc.mfa, "northlungclinic")
			if tc.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
			} else {
				g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
			}
		})
	}
}

func TestArgon2idHashVerifyAndRehash(t *testing.T) {
	g := NewWithT(t)
	weak := Hasher{Params: Argon2Params{MemoryKiB: 8 * 1024, Passes: 1, Threads: 1}}
	strong := Hasher{Params: DefaultArgon2}
	g.Expect(DefaultArgon2.MemoryKiB).To(BeNumerically(">=", 19*1024))
	g.Expect(DefaultArgon2.Passes).To(BeNumerically(">=", 2))

	h, err := weak.Hash("tulip cloud sun")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h).To(HavePrefix("$argon2id$v=19$m=8192,t=1,p=1$"))

	ok, rehash, err := strong.Verify("tulip cloud sun", h)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeTrue())
	g.Expect(rehash).To(BeTrue(), "parameters rose since this hash was made")

	h2, err := strong.Hash("tulip cloud sun")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(h2).NotTo(Equal(h), "fresh salt")
	ok, rehash, err = strong.Verify("tulip cloud sun", h2)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeTrue())
	g.Expect(rehash).To(BeFalse())

	ok, _, err = strong.Verify("tulip cloud sum", h2)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeFalse())

	_, _, err = strong.Verify("x", "$2a$10$bcrypt")
	g.Expect(err).To(HaveOccurred())
}

func TestMatchTOTPAllowsOneStepOfDrift(t *testing.T) {
	g := NewWithT(t)
	key, err := NewTOTPKey("Clinic", "acct_1")
	g.Expect(err).NotTo(HaveOccurred())
	now := time.Unix(1_800_000_000, 0)
	code := func(at time.Time) string {
		c, err := totp.GenerateCodeCustom(key.Secret(), at, totp.ValidateOpts{Period: 30,
			Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		g.Expect(err).NotTo(HaveOccurred())
		return c
	}
	step := now.Unix() / 30
	for off, wantOK := range map[int64]bool{-2: false, -1: true, 0: true, 1: true, 2: false} {
		at := time.Unix((step+off)*30, 0)
		got, err := MatchTOTP(key.Secret(), code(at), now)
		if wantOK {
			g.Expect(err).NotTo(HaveOccurred(), "offset %d", off)
			g.Expect(got).To(Equal(step + off))
		} else if code(at) != code(now) {
			g.Expect(err).To(MatchError(ErrCodeRejected), "offset %d", off)
		}
	}
}

func TestCodesAreRandomAndHashedPerPurpose(t *testing.T) {
	g := NewWithT(t)
	a, err := NewCode(10)
	g.Expect(err).NotTo(HaveOccurred())
	b, _ := NewCode(10)
	g.Expect(a).NotTo(Equal(b))
	g.Expect(a).To(MatchRegexp(`^[A-Z2-7]{4}(-[A-Z2-7]{1,4})+$`))
	g.Expect(HashCode("enrol", a)).To(Equal(HashCode("enrol", strings.ToLower(a))))
	g.Expect(HashCode("enrol", a)).To(Equal(HashCode("enrol",
		strings.ReplaceAll(a, "-", ""))))
	g.Expect(HashCode("enrol", a)).NotTo(Equal(HashCode("recovery:acct_1", a)))
}
