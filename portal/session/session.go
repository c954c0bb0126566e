// Package session keeps sign-in sessions in PostgreSQL: 256-bit random
// tokens of which only a SHA-256 is stored, bound to the device that
// signed in, with idle and absolute timeouts taken from the tenant policy
// at every request (so a tightened policy applies at once), rotated at
// sign-in and step-up, and listable and revocable by their owner.
package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Session states.
const (
	// StatePassword has passed the password and waits for a second factor
	// or for MFA enrolment.
	StatePassword = "password"
	// StateFull is signed in.
	StateFull = "full"
)

// End reasons, recorded on the row and in the audit log.
const (
	ReasonSignOut        = "signOut"
	ReasonIdle           = "idleTimeout"
	ReasonAbsolute       = "absoluteTimeout"
	ReasonDevice         = "deviceMismatch"
	ReasonRotated        = "rotated"
	ReasonEndedByUser    = "endedByUser"
	ReasonDisabled       = "accountDisabled"
	ReasonRecovery       = "recovery"
	ReasonPolicyTightens = "policyTightened"
)

// pendingLifetime bounds a session that passed the password but not the
// second factor.
const pendingLifetime = 10 * time.Minute

// ErrNoSession means the token names no live session (unknown, ended,
// expired or bound to another device); callers treat it as signed out.
var ErrNoSession = errors.New("no live session")

// Session is a live session as a request sees it.
type Session struct {
	// PublicID identifies the session in lists; it is not a credential.
	PublicID string
	// AccountID is the signed-in account.
	AccountID string
	// State is StatePassword or StateFull.
	State string
	// CreatedAt, LastSeenAt, StepUpAt are when it began, was last used and
	// last passed a second factor (zero if never).
	CreatedAt, LastSeenAt, StepUpAt time.Time
	// UserAgent is what the browser said at sign-in.
	UserAgent string
	// CSRF is the token forms must echo; derived from the session token.
	CSRF string
}

// Limits are the timeouts that apply to an account right now.
type Limits struct {
	Idle, Absolute time.Duration
}

// Manager creates and checks sessions.
type Manager struct {
	db *pgxpool.Pool
	// Now is the clock; tests may set it.
	Now func() time.Time
}

// NewManager keeps sessions in db.
func NewManager(db *pgxpool.Pool) *Manager {
	return &Manager{db: db, Now: time.Now}
}

// NewDeviceID returns a random device identifier for the device cookie.
func NewDeviceID() (string, error) {
	return randomToken()
}

// Create starts a session for account on the device, returning the token
// for the cookie. The token is never stored.
func (m *Manager) Create(ctx context.Context, account, device, userAgent,
	state string) (string, error) {
	return m.create(ctx, account, device, userAgent, state, m.Now())
}

func (m *Manager) create(ctx context.Context, account, device, userAgent, state string,
	created time.Time) (string, error) {
	token, err := randomToken()
	if err != nil {
		return "", err
	}
	pub := make([]byte, 12)
	if _, err := rand.Read(pub); err != nil {
		return "", err
	}
	var stepUp any
	if state == StateFull {
		stepUp = m.Now()
	}
	_, err = m.db.Exec(ctx, `INSERT INTO sessions
		(id_hash, public_id, account_id, device_hash, user_agent, state, created_at,
		 last_seen_at, stepup_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		hashToken(token), hex.EncodeToString(pub), account, hashToken(device),
		truncate(userAgent, 200), state, created, m.Now(), stepUp)
	if err != nil {
		return "", fmt.Errorf("creating session: %w", err)
	}
	return token, nil
}

// Lookup returns the live session for token on device, touching its
// last-seen time. A session presented from another device is ended at once
// (reason ReasonDevice); so is one past its timeouts. Then ErrNoSession is
// returned with the reason and the ended session (for the audit record
// only). limits gives the account's current timeouts.
func (m *Manager) Lookup(ctx context.Context, token, device string,
	limits func(account string) (Limits, error)) (*Session, string, error) {
	if token == "" {
		return nil, "", ErrNoSession
	}
	var s Session
	var devHash []byte
	var stepUp *time.Time
	err := m.db.QueryRow(ctx, `SELECT public_id, account_id, state, created_at,
		last_seen_at, stepup_at, user_agent, device_hash FROM sessions
		WHERE id_hash = $1 AND ended_at IS NULL`, hashToken(token)).Scan(&s.PublicID,
		&s.AccountID, &s.State, &s.CreatedAt, &s.LastSeenAt, &stepUp, &s.UserAgent, &devHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", ErrNoSession
	} else if err != nil {
		return nil, "", fmt.Errorf("reading session: %w", err)
	}
	if stepUp != nil {
		s.StepUpAt = *stepUp
	}
	end := func(reason string) (*Session, string, error) {
		if err := m.endByHash(ctx, hashToken(token), reason); err != nil {
			return nil, "", err
		}
		return &s, reason, ErrNoSession
	}
	if !hmac.Equal(devHash, hashToken(device)) {
		return end(ReasonDevice)
	}
	lim, err := limits(s.AccountID)
	if err != nil {
		// Disabled account, or roles no longer in the policy.
		return end(ReasonDisabled)
	}
	now := m.Now()
	if s.State == StatePassword && now.Sub(s.CreatedAt) > pendingLifetime {
		return end(ReasonAbsolute)
	}
	if now.Sub(s.CreatedAt) > lim.Absolute {
		return end(ReasonAbsolute)
	}
	if now.Sub(s.LastSeenAt) > lim.Idle {
		return end(ReasonIdle)
	}
	if _, err := m.db.Exec(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1`,
		hashToken(token), now); err != nil {
		return nil, "", fmt.Errorf("touching session: %w", err)
	}
	s.LastSeenAt = now
	s.CSRF = CSRFToken(token)
	return &s, "", nil
}

// Rotate ends the session behind token and starts a new one for the same
// account and device in state, with a fresh second-factor time: used at
// sign-in completion and step-up, so a token fixed before either is dead.
// The new session keeps the old one's start, so the absolute timeout still
// counts from sign-in; a session only for the password counts from now.
func (m *Manager) Rotate(ctx context.Context, token, device, state string) (string, error) {
	var account, ua, oldState string
	var created time.Time
	err := m.db.QueryRow(ctx, `UPDATE sessions SET ended_at = now(), end_reason = $2
		WHERE id_hash = $1 AND ended_at IS NULL
		RETURNING account_id, user_agent, created_at, state`,
		hashToken(token), ReasonRotated).Scan(&account, &ua, &created, &oldState)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNoSession
	} else if err != nil {
		return "", fmt.Errorf("rotating session: %w", err)
	}
	if oldState == StatePassword {
		created = m.Now()
	}
	return m.create(ctx, account, device, ua, state, created)
}

// End ends the session behind token.
func (m *Manager) End(ctx context.Context, token, reason string) error {
	return m.endByHash(ctx, hashToken(token), reason)
}

func (m *Manager) endByHash(ctx context.Context, h []byte, reason string) error {
	_, err := m.db.Exec(ctx, `UPDATE sessions SET ended_at = now(), end_reason = $2
		WHERE id_hash = $1 AND ended_at IS NULL`, h, reason)
	if err != nil {
		return fmt.Errorf("ending session: %w", err)
	}
	return nil
}

// EndByPublicID ends one of account's sessions by its public id, and
// reports whether there was such a live session.
func (m *Manager) EndByPublicID(ctx context.Context, account, publicID,
	reason string) (bool, error) {
	tag, err := m.db.Exec(ctx, `UPDATE sessions SET ended_at = now(), end_reason = $3
		WHERE account_id = $1 AND public_id = $2 AND ended_at IS NULL`,
		account, publicID, reason)
	if err != nil {
		return false, fmt.Errorf("ending session: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// EndAll ends every live session of account, returning how many.
func (m *Manager) EndAll(ctx context.Context, account, reason string) (int64, error) {
	tag, err := m.db.Exec(ctx, `UPDATE sessions SET ended_at = now(), end_reason = $2
		WHERE account_id = $1 AND ended_at IS NULL`, account, reason)
	if err != nil {
		return 0, fmt.Errorf("ending sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// List returns account's live sessions, newest first.
func (m *Manager) List(ctx context.Context, account string) ([]Session, error) {
	rows, err := m.db.Query(ctx, `SELECT public_id, account_id, state, created_at,
		last_seen_at, user_agent FROM sessions
		WHERE account_id = $1 AND ended_at IS NULL ORDER BY created_at DESC`, account)
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Session, error) {
		var s Session
		err := r.Scan(&s.PublicID, &s.AccountID, &s.State, &s.CreatedAt, &s.LastSeenAt,
			&s.UserAgent)
		return s, err
	})
}

// CSRFToken derives the anti-forgery token for a session token: an HMAC
// keyed by the token, so it needs no storage and dies with the session.
func CSRFToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("pleura/csrf/v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("drawing token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte("pleura/session/v1\x00" + t))
	return h[:]
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// CSRFEqual compares a submitted CSRF token with the expected one in
// constant time.
func CSRFEqual(got, want string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

// SetCeremony stores a WebAuthn ceremony's state on the session.
func (m *Manager) SetCeremony(ctx context.Context, token string, state []byte) error {
	_, err := m.db.Exec(ctx, `UPDATE sessions SET webauthn_ceremony = $2
		WHERE id_hash = $1 AND ended_at IS NULL`, hashToken(token), state)
	if err != nil {
		return fmt.Errorf("storing WebAuthn ceremony: %w", err)
	}
	return nil
}

// TakeCeremony returns and clears the session's WebAuthn ceremony state, so
// a challenge is answered at most once.
func (m *Manager) TakeCeremony(ctx context.Context, token string) ([]byte, error) {
	var state []byte
	err := m.db.QueryRow(ctx, `UPDATE sessions s SET webauthn_ceremony = NULL
		FROM (SELECT id_hash, webauthn_ceremony FROM sessions WHERE id_hash = $1
			AND ended_at IS NULL FOR UPDATE) old
		WHERE s.id_hash = old.id_hash RETURNING old.webauthn_ceremony`,
		hashToken(token)).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && state == nil) {
		return nil, ErrNoSession
	} else if err != nil {
		return nil, fmt.Errorf("taking WebAuthn ceremony: %w", err)
	}
	return state, nil
}
