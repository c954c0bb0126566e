package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/pleura-dev/pleura/portal/audit"
	"github.com/pleura-dev/pleura/portal/auth"
	"github.com/pleura-dev/pleura/portal/session"
)

// The WebAuthn endpoints speak JSON to static/webauthn.js: begin returns
// the browser options (the ceremony state stays on the server session),
// finish takes the browser's answer and returns where to go next.

func (s *Server) writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) webauthnRegisterBegin(w http.ResponseWriter, r *http.Request,
	rc *reqCtx) error {
	opts, state, err := s.id.BeginWebAuthnRegistration(r.Context(), rc.account.ID)
	if err != nil {
		return err
	}
	if err := s.Sessions.SetCeremony(r.Context(), rc.token, state); err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, opts)
	return nil
}

// webauthnRegisterFinish stores the new credential; a sign-in that was
// waiting for MFA enrolment becomes a full session with a new token.
func (s *Server) webauthnRegisterFinish(w http.ResponseWriter, r *http.Request,
	rc *reqCtx) error {
	ctx := r.Context()
	state, err := s.Sessions.TakeCeremony(ctx, rc.token)
	if err != nil {
		return auth.ErrCodeRejected
	}
	if err := s.id.FinishWebAuthnRegistration(ctx, rc.source, rc.account.ID, state,
		r); err != nil {
		return err
	}
	token, err := s.Sessions.Rotate(ctx, rc.token, rc.device, session.StateFull)
	if err != nil {
		return err
	}
	s.setSession(w, token)
	s.writeJSON(w, http.StatusOK, []byte(`{"next":"/mfa"}`))
	return nil
}

func (s *Server) webauthnLoginBegin(w http.ResponseWriter, r *http.Request,
	rc *reqCtx) error {
	opts, state, err := s.id.BeginWebAuthnLogin(r.Context(), rc.account.ID)
	if errors.Is(err, auth.ErrNoFactor) {
		return &Error{Status: http.StatusNotFound, Message: "No security key is registered.",
			Err: err}
	} else if err != nil {
		return err
	}
	if err := s.Sessions.SetCeremony(r.Context(), rc.token, state); err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, opts)
	return nil
}

// webauthnLoginFinish completes sign-in with a security key, or a step-up
// when the session is already full, and rotates the session token.
func (s *Server) webauthnLoginFinish(w http.ResponseWriter, r *http.Request,
	rc *reqCtx) error {
	ctx := r.Context()
	next, purpose := "/", audit.SecondFactor
	if rc.sess.State == session.StateFull {
		next, purpose = localPath(r.URL.Query().Get("next")), audit.StepUp
	}
	state, err := s.Sessions.TakeCeremony(ctx, rc.token)
	if err != nil {
		return auth.ErrCodeRejected
	}
	if err := s.id.FinishWebAuthnLogin(ctx, rc.source, rc.account.ID, state, r,
		purpose); err != nil {
		return err
	}
	token, err := s.Sessions.Rotate(ctx, rc.token, rc.device, session.StateFull)
	if err != nil {
		return err
	}
	s.setSession(w, token)
	body, err := json.Marshal(map[string]string{"next": next})
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, body)
	return nil
}
