package crypto

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Rewrapper re-encrypts stored wrapped data keys under the transit key's
// latest version after a rotation. The data keys themselves, and so every
// field they encrypt, stay as they are.
type Rewrapper struct {
	db      *pgxpool.Pool
	transit Transit
	log     *slog.Logger

	pending   prometheus.Gauge
	rewrapped prometheus.Counter
	failures  prometheus.Counter
	latest    prometheus.Gauge
}

// NewRewrapper registers its progress metrics with reg.
func NewRewrapper(db *pgxpool.Pool, t Transit, log *slog.Logger,
	reg prometheus.Registerer) *Rewrapper {
	r := &Rewrapper{db: db, transit: t, log: log,
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pleura_portal_data_keys_pending_rewrap",
			Help: "Stored data keys wrapped under an older transit key version.",
		}),
		rewrapped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pleura_portal_data_keys_rewrapped_total",
			Help: "Stored data keys rewrapped under the latest transit key version.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pleura_portal_data_key_rewrap_failures_total",
			Help: "Rewrap attempts that failed; they are retried on the next pass.",
		}),
		latest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pleura_portal_transit_key_latest_version",
			Help: "The tenant transit key's latest version seen by the rewrapper.",
		}),
	}
	reg.MustRegister(r.pending, r.rewrapped, r.failures, r.latest)
	return r
}

// RewrapMetrics are the rewrapper's progress metrics.
type RewrapMetrics struct {
	// Pending counts stored keys still under an older version.
	Pending prometheus.Gauge
	// Rewrapped counts keys rewrapped since start.
	Rewrapped prometheus.Counter
	// Latest is the transit key's latest version.
	Latest prometheus.Gauge
}

// Metrics returns the progress metrics, for tests and dashboards.
func (r *Rewrapper) Metrics() RewrapMetrics {
	return RewrapMetrics{Pending: r.pending, Rewrapped: r.rewrapped, Latest: r.latest}
}

// RunOnce rewraps every stale data key and returns how many it rewrapped.
func (r *Rewrapper) RunOnce(ctx context.Context) (int, error) {
	latest, err := r.transit.LatestVersion(ctx)
	if err != nil {
		return 0, err
	}
	r.latest.Set(float64(latest))
	rows, err := r.db.Query(ctx, `SELECT id, wrapped FROM data_keys
		WHERE key_version < $1 ORDER BY id`, latest)
	if err != nil {
		return 0, fmt.Errorf("listing stale data keys: %w", err)
	}
	type stale struct {
		id      int64
		wrapped string
	}
	var todo []stale
	for rows.Next() {
		var s stale
		if err := rows.Scan(&s.id, &s.wrapped); err != nil {
			return 0, fmt.Errorf("reading stale data keys: %w", err)
		}
		todo = append(todo, s)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reading stale data keys: %w", err)
	}
	r.pending.Set(float64(len(todo)))
	done := 0
	for _, s := range todo {
		if err := r.rewrapOne(ctx, s.id, s.wrapped); err != nil {
			r.failures.Inc()
			r.log.Error("Rewrapping data key failed", "dataKey", s.id, "err", err)
			continue
		}
		done++
		r.rewrapped.Inc()
		r.pending.Dec()
	}
	return done, nil
}

func (r *Rewrapper) rewrapOne(ctx context.Context, id int64, wrapped string) error {
	out, err := r.transit.Rewrap(ctx, wrapped)
	if err != nil {
		return err
	}
	v, err := WrappedVersion(out)
	if err != nil {
		return err
	}
	// Compare-and-set on the old value: a concurrent replica's rewrap wins
	// harmlessly.
	_, err = r.db.Exec(ctx, `UPDATE data_keys SET wrapped = $1, key_version = $2,
		rewrapped_at = now() WHERE id = $3 AND wrapped = $4`, out, v, id, wrapped)
	if err != nil {
		return fmt.Errorf("storing rewrapped data key %d: %w", id, err)
	}
	return nil
}

// Run calls RunOnce every interval until ctx ends.
func (r *Rewrapper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := r.RunOnce(ctx); err != nil {
			r.log.Error("Rewrap pass failed", "err", err)
		} else if n > 0 {
			r.log.Info("Rewrapped data keys", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
