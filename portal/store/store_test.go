package store_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/pleura-dev/pleura/internal/portaltest"
	"github.com/pleura-dev/pleura/internal/testenv"
	"github.com/pleura-dev/pleura/portal/audit"
	"github.com/pleura-dev/pleura/portal/store"
)

func TestMigrationsAndAppendOnlyAudit(t *testing.T) {
	g := NewWithT(t)
	env := testenv.StartForTest(t, testenv.Options{Postgres: true})
	dsn := portaltest.Database(t, env, "store_audit")
	ctx := context.Background()

	pool, err := store.Open(ctx, dsn)
	g.Expect(err).NotTo(HaveOccurred())
	defer pool.Close()
	// A second start (another replica, a restart) finds nothing to do.
	g.Expect(store.Migrate(pool)).To(Succeed())

	rec := audit.NewDB(pool)
	g.Expect(rec.Record(ctx, audit.Event{Actor: "acct_1", Action: audit.SignIn,
		Outcome: audit.Success, Source: "127.0.0.1", Reason: "line\nbreak"})).To(Succeed())
	var reason string
	g.Expect(pool.QueryRow(ctx, `SELECT reason FROM audit_events`).Scan(&reason)).To(Succeed())
	g.Expect(reason).To(Equal("linebreak"), "control characters are stripped")

	// The portal's own role (the database owner, not a superuser) can
	// neither change nor remove audit rows.
	for _, q := range []string{
		`UPDATE audit_events SET outcome = 'failure'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
	} {
		_, err := pool.Exec(ctx, q)
		g.Expect(err).To(MatchError(ContainSubstring("permission denied")), q)
	}
	var n int
	g.Expect(pool.QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&n)).To(Succeed())
	g.Expect(n).To(Equal(1))
}
