package crypto_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pleura-dev/pleura/internal/portaltest"
	"github.com/pleura-dev/pleura/internal/testenv"
	pcrypto "github.com/pleura-dev/pleura/portal/crypto"
	"github.com/pleura-dev/pleura/portal/store"
)

func TestEnvelopeEncryptionWithVaultTransit(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env := testenv.StartForTest(t, testenv.Options{Vault: true, Postgres: true})
	portaltest.TransitKey(t, env, "north-data")
	pool, err := store.Open(ctx, portaltest.Database(t, env, "crypto_north"))
	g.Expect(err).NotTo(HaveOccurred())
	defer pool.Close()
	transit := pcrypto.NewVaultTransit(env.Vault.Client, testenv.VaultTransitMount,
		"north-data")

	keys, err := pcrypto.NewKeyring(ctx, "north", pool, transit)
	g.Expect(err).NotTo(HaveOccurred())
	row1 := pcrypto.Location{Table: "accounts", Row: "acct_1", Column: "mrn"}
	ct, err := keys.Encrypt(row1, []byte("MRN-000123"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(ct)).NotTo(ContainSubstring("MRN-000123"))

	pt, err := keys.Decrypt(ctx, row1, ct)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(pt)).To(Equal("MRN-000123"))

	t.Run("a ciphertext moved elsewhere does not open", func(t *testing.T) {
		g := NewWithT(t)
		for name, loc := range map[string]pcrypto.Location{
			"another row":    {Table: "accounts", Row: "acct_2", Column: "mrn"},
			"another column": {Table: "accounts", Row: "acct_1", Column: "email"},
			"another table":  {Table: "outbox", Row: "acct_1", Column: "mrn"},
		} {
			_, err := keys.Decrypt(ctx, loc, ct)
			g.Expect(err).To(MatchError(pcrypto.ErrDecrypt), name)
		}
		other, err := pcrypto.NewKeyring(ctx, "south", pool, transit)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = other.Decrypt(ctx, row1, ct)
		g.Expect(err).To(MatchError(pcrypto.ErrDecrypt), "another tenant")

		tampered := append([]byte(nil), ct...)
		tampered[len(tampered)-1] ^= 1
		_, err = keys.Decrypt(ctx, row1, tampered)
		g.Expect(err).To(MatchError(pcrypto.ErrDecrypt), "tampered")
		_, err = keys.Decrypt(ctx, row1, ct[:10])
		g.Expect(err).To(MatchError(pcrypto.ErrDecrypt), "truncated")
	})

	t.Run("a second replica shares the keys", func(t *testing.T) {
		g := NewWithT(t)
		replica, err := pcrypto.NewKeyring(ctx, "north", pool, transit)
		g.Expect(err).NotTo(HaveOccurred())
		pt, err := replica.Decrypt(ctx, row1, ct)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(pt)).To(Equal("MRN-000123"))
		g.Expect(replica.BlindIndex("mrn", "MRN-000123")).To(Equal(
			keys.BlindIndex("mrn", "MRN-000123")))
		g.Expect(keys.BlindIndex("mrn", "MRN-000123")).NotTo(Equal(
			keys.BlindIndex("mrn", "MRN-000124")))
		g.Expect(keys.BlindIndex("mrn", "x")).NotTo(Equal(keys.BlindIndex("email", "x")))
		var stored int
		g.Expect(pool.QueryRow(ctx, `SELECT count(*) FROM data_keys
			WHERE wrapped LIKE 'vault:v1:%'`).Scan(&stored)).To(Succeed())
		g.Expect(stored).To(Equal(2), "one field and one index key, stored wrapped")
	})

	t.Run("rewrap after rotation keeps data readable", func(t *testing.T) {
		g := NewWithT(t)
		reg := prometheus.NewRegistry()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		rw := pcrypto.NewRewrapper(pool, transit, log, reg)
		n, err := rw.RunOnce(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(n).To(Equal(0), "nothing to do before a rotation")

		portaltest.RotateTransitKey(t, env, "north-data")
		n, err = rw.RunOnce(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(n).To(Equal(2))
		g.Expect(testutil.ToFloat64(rw.Metrics().Rewrapped)).To(Equal(2.0))
		g.Expect(testutil.ToFloat64(rw.Metrics().Pending)).To(Equal(0.0))
		g.Expect(testutil.ToFloat64(rw.Metrics().Latest)).To(Equal(2.0))
		var wrapped string
		g.Expect(pool.QueryRow(ctx, `SELECT string_agg(wrapped, ' ') FROM data_keys`).
			Scan(&wrapped)).To(Succeed())
		g.Expect(strings.Count(wrapped, "vault:v2:")).To(Equal(2))

		// A fresh replica unwraps the rewrapped keys and reads old data.
		fresh, err := pcrypto.NewKeyring(ctx, "north", pool, transit)
		g.Expect(err).NotTo(HaveOccurred())
		pt, err := fresh.Decrypt(ctx, row1, ct)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(pt)).To(Equal("MRN-000123"))
	})
}
