package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Limit is a fixed-window rate limit.
type Limit struct {
	// Max attempts per Window.
	Max    int
	Window time.Duration
}

// Scope names what is limited; each has an account and an address limit.
type Scope string

// The limited operations.
const (
	ScopeSignIn       Scope = "signIn"
	ScopeSecondFactor Scope = "secondFactor"
	ScopeEnrolment    Scope = "enrolment"
	ScopeRecovery     Scope = "recovery"
)

// Limiter counts attempts in rate_limits so that every replica sees the
// same counts.
type Limiter struct {
	db *pgxpool.Pool
}

// NewLimiter counts in db.
func NewLimiter(db *pgxpool.Pool) *Limiter {
	return &Limiter{db: db}
}

// Hit counts one attempt against key in scope and reports whether it is
// within limit. Keys are hashed, so no identifier is stored in the clear.
func (l *Limiter) Hit(ctx context.Context, scope Scope, key string, limit Limit) (bool, error) {
	h := sha256.Sum256([]byte(string(scope) + "\x00" + key))
	var hits int
	err := l.db.QueryRow(ctx, `INSERT INTO rate_limits AS r (key, window_start, hits)
		VALUES ($1, now(), 1)
		ON CONFLICT (key) DO UPDATE SET
			hits = CASE WHEN r.window_start < now() - make_interval(secs => $2)
				THEN 1 ELSE r.hits + 1 END,
			window_start = CASE WHEN r.window_start < now() - make_interval(secs => $2)
				THEN now() ELSE r.window_start END
		RETURNING hits`, h[:], limit.Window.Seconds()).Scan(&hits)
	if err != nil {
		return false, fmt.Errorf("counting %s attempt: %w", scope, err)
	}
	return hits <= limit.Max, nil
}
