package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/pleura-dev/pleura/portal/auth"
)

// Error is a service error: an HTTP status, a message safe to show, and the
// internal cause, which is logged (never shown).
type Error struct {
	// Status is the HTTP status.
	Status int
	// Message is shown to the user; it reveals nothing an attacker could use.
	Message string
	// Page re-renders a form with Message, when set, with Data.
	Page string
	Data any
	// Err is the cause, for the log.
	Err error
}

// Error is the safe message with the internal cause, for logs only.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Messages shared by attack-relevant paths. One message for every sign-in
// failure, whatever the cause, so nobody learns which accounts exist.
const (
	msgBadSignIn   = "That email and password do not match an active account."
	msgBadCode     = "That code did not work. Check it and try again."
	msgRateLimited = "Too many attempts. Wait a while and try again."
	msgBadEnrol    = "That enrolment code is not valid. Ask the clinic for a new one."
	msgBadRecovery = "We could not reset the password with those details."
	msgNotFound    = "Not found."
	msgForbidden   = "Not found."
	msgCSRF        = "This form has expired. Go back, reload the page and try again."
	msgInternal    = "Something went wrong on our side. Try again in a moment."
)

// errFor maps a domain error to a service error; page is the form to show
// it on, for input errors.
func errFor(err error, page string) *Error {
	var se *Error
	var in *auth.InputError
	switch {
	case errors.As(err, &se):
		return se
	case errors.As(err, &in):
		return &Error{Status: http.StatusUnprocessableEntity, Message: in.Message,
			Page: page, Err: err}
	case errors.Is(err, auth.ErrInvalidCredentials):
		return &Error{Status: http.StatusUnauthorized, Message: msgBadSignIn, Page: page,
			Err: err}
	case errors.Is(err, auth.ErrCodeRejected):
		return &Error{Status: http.StatusUnauthorized, Message: msgBadCode, Page: page,
			Err: err}
	case errors.Is(err, auth.ErrRateLimited):
		return &Error{Status: http.StatusTooManyRequests, Message: msgRateLimited,
			Page: page, Err: err}
	case errors.Is(err, auth.ErrInvalidCode):
		return &Error{Status: http.StatusUnauthorized, Message: msgBadEnrol, Page: page,
			Err: err}
	case errors.Is(err, auth.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Message: msgNotFound, Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Status: 499, Message: msgInternal, Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Message: msgInternal, Err: err}
}

// renderError is the one path that turns an error into a response and a
// log line. The log line carries the route and opaque ids only.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, rc *reqCtx, err error,
	page string) {
	e := errFor(err, page)
	attrs := []any{"route", rc.route, "status", e.Status, "err", e.Err}
	if rc.account != nil {
		attrs = append(attrs, "account", rc.account.ID)
	}
	if e.Status >= 500 {
		s.log.Error("Request failed", attrs...)
	} else {
		s.log.Info("Request refused", attrs...)
	}
	if e.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "900")
	}
	if e.Page != "" {
		s.render(w, r, rc, e.Status, e.Page, e.Data, e.Message)
		return
	}
	s.render(w, r, rc, e.Status, "error", map[string]string{"Title": e.Message}, "")
}
