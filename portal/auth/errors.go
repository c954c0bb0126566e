package auth

import "errors"

// Service errors. Handlers map each to a status and a message that reveals
// nothing an attacker could use (no "no such user", no "wrong password").
var (
	// ErrInvalidCredentials covers unknown account, wrong password and
	// disabled account alike.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrRateLimited means too many attempts; try later.
	ErrRateLimited = errors.New("too many attempts")
	// ErrInvalidCode covers unknown, used and expired enrolment codes.
	ErrInvalidCode = errors.New("invalid or expired code")
	// ErrNotFound is a missing or forbidden object; the two look the same.
	ErrNotFound = errors.New("not found")
	// ErrNoFactor means the account has no usable second factor enrolled.
	ErrNoFactor = errors.New("no second factor enrolled")
)

// InputError is bad input; Field names the form field, Message is safe to
// show.
type InputError struct {
	Field, Message string
}

// Error names the field and the problem.
func (e *InputError) Error() string { return e.Field + ": " + e.Message }
