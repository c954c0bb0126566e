package app_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pleura-dev/pleura/portal/auth"
	pcrypto "github.com/pleura-dev/pleura/portal/crypto"
)

// BenchmarkAuthenticatedPage measures a signed-in patient's home page over
// TLS 1.3 with four concurrent clients: session lookup and touch, policy
// evaluation, rendering. Reports requests/s and p99 latency.
func BenchmarkAuthenticatedPage(b *testing.B) {
	f := setup(b)
	_, ab := f.newAdmin(b)
	_, pb := f.newPatient(b, ab)
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(2) // 2 × GOMAXPROCS(2) = 4 clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(p *testing.PB) {
		var mine []time.Duration
		for p.Next() {
			t0 := time.Now()
			resp, err := pb.c.Get(f.base + "/")
			if err != nil {
				b.Error(err)
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkSignIn measures one password sign-in in the identity service:
// rate-limit bookkeeping, blind-index lookup, Argon2id (19 MiB, 2 passes)
// and the audit insert. Limits are lifted so they do not cut the run short.
func BenchmarkSignIn(b *testing.B) {
	f := setup(b)
	u := fmt.Sprintf("bench%d@north.example", time.Now().UnixNano())
	_, code, err := f.app.Identity.CreateAccount(context.Background(), "",
		auth.NewAccount{Kind: auth.KindPatient, Roles: []string{"patient"}, Email: u},
		time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	const pw = "benchmark passphrase for sign-in"
	if _, err := f.app.Identity.Enrol(context.Background(), "bench", code, pw); err != nil {
		b.Fatal(err)
	}
	svc := *f.app.Identity
	lim := auth.Limit{Max: 1 << 30, Window: time.Minute}
	svc.Limits = map[auth.Scope]auth.Limits{auth.ScopeSignIn: {Account: lim, Address: lim}}
	b.ResetTimer()
	for b.Loop() {
		if _, err := svc.SignIn(context.Background(), "bench", u, pw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFieldEncryption compares the keyring's AES-256-GCM with bound
// associated data against raw AES-256-GCM on the same 256-byte value, in
// the same run.
func BenchmarkFieldEncryption(b *testing.B) {
	f := setup(b)
	value := make([]byte, 256)
	_, _ = rand.Read(value)
	loc := pcrypto.Location{Table: "accounts", Row: "acct_bench", Column: "mrn"}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, _ := aes.NewCipher(key)
	raw, _ := cipher.NewGCM(block)

	b.Run("keyring-seal", func(b *testing.B) {
		b.SetBytes(int64(len(value)))
		for b.Loop() {
			if _, err := f.app.Keys.Encrypt(loc, value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-gcm-seal", func(b *testing.B) {
		b.SetBytes(int64(len(value)))
		nonce := make([]byte, raw.NonceSize())
		for b.Loop() {
			_, _ = rand.Read(nonce)
			_ = raw.Seal(nil, nonce, value, nil)
		}
	})
	ct, _ := f.app.Keys.Encrypt(loc, value)
	b.Run("keyring-open", func(b *testing.B) {
		b.SetBytes(int64(len(value)))
		ctx := context.Background()
		for b.Loop() {
			if _, err := f.app.Keys.Decrypt(ctx, loc, ct); err != nil {
				b.Fatal(err)
			}
		}
	})
	nonce := make([]byte, raw.NonceSize())
	sealed := raw.Seal(nil, nonce, value, nil)
	b.Run("raw-gcm-open", func(b *testing.B) {
		b.SetBytes(int64(len(value)))
		for b.Loop() {
			if _, err := raw.Open(nil, nonce, sealed, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("blind-index", func(b *testing.B) {
		for b.Loop() {
			_ = f.app.Keys.BlindIndex("mrn", "MRN-000123")
		}
	})
}
