package app

import (
	"context"
	"fmt"
	"time"
)

// Retention of housekeeping rows. Audit events are never swept here.
const (
	// rateLimitRetention outlives every rate-limit window.
	rateLimitRetention = 24 * time.Hour
	// endedSessionRetention keeps ended sessions for investigation.
	endedSessionRetention = 90 * 24 * time.Hour
)

// Sweep deletes expired rate-limit counters, long-ended sessions and used
// or expired enrolment codes, returning how many rows went.
func (a *App) Sweep(ctx context.Context) (int64, error) {
	var total int64
	for _, q := range []struct {
		sql string
		age time.Duration
	}{
		{`DELETE FROM rate_limits WHERE window_start < now() - make_interval(secs => $1)`,
			rateLimitRetention},
		{`DELETE FROM sessions WHERE ended_at < now() - make_interval(secs => $1)`,
			endedSessionRetention},
		{`DELETE FROM enrolment_codes WHERE COALESCE(used_at, expires_at)
			< now() - make_interval(secs => $1)`, endedSessionRetention},
	} {
		tag, err := a.Pool.Exec(ctx, q.sql, q.age.Seconds())
		if err != nil {
			return total, fmt.Errorf("sweeping: %w", err)
		}
		total += tag.RowsAffected()
	}
	return total, nil
}

func (a *App) sweepEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := a.Sweep(ctx); err != nil {
			a.Log.Error("Sweeping housekeeping rows failed", "err", err)
		} else if n > 0 {
			a.Log.Info("Swept housekeeping rows", "count", n)
		}
	}
}
