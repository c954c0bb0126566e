// Package audit is the one interface through which the portal records
// security events (sign-in, failure, MFA change, step-up, session end,
// recovery) into the append-only audit_events table. The tamper-evident
// Merkle log builds on this table later.
package audit

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Action names a recorded event.
type Action string

// The actions this issue records.
const (
	SignIn          Action = "signIn"
	SignInFailed    Action = "signInFailed"
	SecondFactor    Action = "secondFactor"
	MFAChange       Action = "mfaChange"
	StepUp          Action = "stepUp"
	SessionEnd      Action = "sessionEnd"
	Recovery        Action = "recovery"
	Enrolment       Action = "enrolment"
	Invite          Action = "invite"
	RateLimited     Action = "rateLimited"
	ProfileChange   Action = "profileChange"
	AccountDisabled Action = "accountDisabled"
)

// Outcome is how the event ended.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	Failure Outcome = "failure"
	Denied  Outcome = "denied"
)

// Event is one audit record. It carries opaque identifiers only: never a
// password, code, token, contact detail or patient data.
type Event struct {
	// Actor is the acting account's id, or "anonymous".
	Actor string
	// Action and Outcome say what happened.
	Action  Action
	Outcome Outcome
	// Subject is the account or session acted on, by opaque id.
	Subject string
	// Source is the client address.
	Source string
	// Reason is a short machine-readable reason, e.g. "badPassword".
	Reason string
	// TraceID correlates with request logs.
	TraceID string
}

// Recorder records audit events.
type Recorder interface {
	// Record appends e; an error means the event was not recorded and the
	// caller must fail the operation it audits.
	Record(ctx context.Context, e Event) error
}

// DB appends events to audit_events.
type DB struct {
	pool *pgxpool.Pool
}

// NewDB records into pool's audit_events table.
func NewDB(pool *pgxpool.Pool) *DB {
	return &DB{pool: pool}
}

// Record inserts e.
func (d *DB) Record(ctx context.Context, e Event) error {
	if e.Actor == "" {
		e.Actor = "anonymous"
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO audit_events
		(actor, action, outcome, subject, source, reason, trace_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		clean(e.Actor), string(e.Action), string(e.Outcome), clean(e.Subject),
		clean(e.Source), clean(e.Reason), clean(e.TraceID))
	if err != nil {
		return fmt.Errorf("recording audit event %s: %w", e.Action, err)
	}
	return nil
}

// clean strips control characters so a stored field cannot forge lines in
// an export.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
