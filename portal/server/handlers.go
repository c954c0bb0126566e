package server

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pquerna/otp"

	tc "github.com/pleura-dev/pleura/internal/tenantconfig"
	"github.com/pleura-dev/pleura/portal/audit"
	"github.com/pleura-dev/pleura/portal/auth"
	"github.com/pleura-dev/pleura/portal/session"
)

// inviteTTL is how long an enrolment code from an invitation stays valid.
const inviteTTL = 7 * 24 * time.Hour

func (s *Server) home(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	canInvite, _ := rc.eff.Allows(tc.RecordDemographic, tc.ActionWrite)
	s.render(w, r, rc, http.StatusOK, "home", map[string]any{
		"Name": rc.account.DisplayName, "HasMFA": rc.account.HasMFA(),
		"CanInvite": canInvite}, "")
	return nil
}

func (s *Server) signInForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if rc.sess != nil && rc.sess.State == session.StateFull {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	s.render(w, r, rc, http.StatusOK, "signin", nil, "")
	return nil
}

// signIn checks the password and starts a session: full when no second
// factor is due, otherwise one that can only reach the second-factor or
// MFA-enrolment pages. Any session the browser already had is ended first,
// so a token planted before sign-in (fixation) is worthless.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	email, password := r.PostFormValue("email"), r.PostFormValue("password")
	if email == "" || password == "" || len(password) > 4*auth.MaxLength {
		return auth.ErrInvalidCredentials
	}
	acct, err := s.id.SignIn(ctx, rc.source, email, password)
	if err != nil {
		return err
	}
	eff, err := s.id.Effective(acct)
	if err != nil {
		return err
	}
	if rc.token != "" {
		if err := s.Sessions.End(ctx, rc.token, session.ReasonRotated); err != nil {
			return err
		}
	}
	state, next := session.StateFull, "/"
	if acct.HasMFA() {
		state, next = session.StatePassword, "/sign-in/second-factor"
	} else if eff.MFARequired {
		state, next = session.StatePassword, "/mfa"
	}
	token, err := s.Sessions.Create(ctx, acct.ID, rc.device, r.UserAgent(), state)
	if err != nil {
		return err
	}
	if err := s.Audit.Record(ctx, audit.Event{Actor: acct.ID, Action: audit.SignIn,
		Outcome: audit.Success, Subject: acct.ID, Source: rc.source,
		Reason: "password:" + state}); err != nil {
		return err
	}
	s.setSession(w, token)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (s *Server) secondFactorForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if rc.sess.State == session.StateFull {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	if !rc.account.HasMFA() {
		http.Redirect(w, r, "/mfa", http.StatusSeeOther)
		return nil
	}
	s.render(w, r, rc, http.StatusOK, "second_factor", map[string]any{}, "")
	return nil
}

// secondFactor completes sign-in with a TOTP or recovery code and rotates
// the session token.
func (s *Server) secondFactor(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	code := strings.TrimSpace(r.PostFormValue("code"))
	if rc.sess.State == session.StateFull {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	if rc.eff.PhishingResistant {
		return &Error{Status: http.StatusForbidden, Page: "second_factor",
			Message: "Your role must sign in with a security key.",
			Err:     errors.New("phishing-resistant factor required")}
	}
	if err := s.id.VerifySecondFactor(ctx, rc.source, rc.account.ID, code,
		audit.SecondFactor); err != nil {
		return err
	}
	return s.rotate(w, r, rc, "/")
}

// stepUp re-checks a second factor for a sensitive action and rotates the
// session token; the step-up stays fresh for the policy's window.
func (s *Server) stepUp(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	code := strings.TrimSpace(r.PostFormValue("code"))
	next := localPath(r.PostFormValue("next"))
	if rc.eff.PhishingResistant {
		return &Error{Status: http.StatusForbidden, Page: "second_factor",
			Data:    map[string]any{"StepUp": true, "Next": next},
			Message: "Your role must confirm with a security key.",
			Err:     errors.New("phishing-resistant factor required")}
	}
	if err := s.id.VerifySecondFactor(r.Context(), rc.source, rc.account.ID, code,
		audit.StepUp); err != nil {
		e := errFor(err, "second_factor")
		e.Data = map[string]any{"StepUp": true, "Next": next}
		return e
	}
	return s.rotate(w, r, rc, next)
}

// rotate replaces the session with a full one and a new token.
func (s *Server) rotate(w http.ResponseWriter, r *http.Request, rc *reqCtx,
	next string) error {
	token, err := s.Sessions.Rotate(r.Context(), rc.token, rc.device, session.StateFull)
	if err != nil {
		return err
	}
	s.setSession(w, token)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := s.Sessions.End(r.Context(), rc.token, session.ReasonSignOut); err != nil {
		return err
	}
	if err := s.Audit.Record(r.Context(), audit.Event{Actor: rc.account.ID,
		Action: audit.SessionEnd, Outcome: audit.Success, Subject: rc.sess.PublicID,
		Source: rc.source, Reason: session.ReasonSignOut}); err != nil {
		return err
	}
	s.clearSession(w)
	http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
	return nil
}

func (s *Server) enrolForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	s.render(w, r, rc, http.StatusOK, "enrol", nil, "")
	return nil
}

func (s *Server) enrol(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	code, password := r.PostFormValue("code"), r.PostFormValue("password")
	if code == "" || len(code) > 64 {
		return auth.ErrInvalidCode
	}
	if _, err := s.id.Enrol(r.Context(), rc.source, code, password); err != nil {
		return err
	}
	s.render(w, r, rc, http.StatusOK, "signin",
		notice{text: "Your password is set. Sign in to continue."}, "")
	return nil
}

func (s *Server) recoverForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	s.render(w, r, rc, http.StatusOK, "recover", nil, "")
	return nil
}

// recover resets a forgotten password with a recovery code. The answer for
// a wrong code and an unknown email is the same.
func (s *Server) recover(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	email, code := r.PostFormValue("email"), r.PostFormValue("code")
	password := r.PostFormValue("password")
	err := s.id.ResetPassword(r.Context(), rc.source, email, code, password)
	if errors.Is(err, auth.ErrInvalidCredentials) {
		return &Error{Status: http.StatusUnauthorized, Message: msgBadRecovery,
			Page: "recover", Err: err}
	} else if err != nil {
		return err
	}
	s.render(w, r, rc, http.StatusOK, "signin", notice{text: "Your password was reset. " +
		"Sign in with it and your authenticator."}, "")
	return nil
}

func (s *Server) mfaPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	s.render(w, r, rc, http.StatusOK, "mfa", map[string]any{
		"HasTOTP":  rc.account.HasTOTP,
		"WebAuthn": rc.account.WebAuthn,
		"Required": rc.eff.MFARequired && !rc.account.HasMFA()}, "")
	return nil
}

func (s *Server) totpBegin(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if !slices.Contains(rc.eff.Factors, tc.FactorTOTP) {
		return &auth.InputError{Field: "totp",
			Message: "Your role must use a security key or passkey instead of an app."}
	}
	enr, err := s.id.BeginTOTP(r.Context(), rc.account.ID)
	if err != nil {
		return err
	}
	key, err := otp.NewKeyFromURL(enr.URL)
	if err != nil {
		return err
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	s.render(w, r, rc, http.StatusOK, "totp_setup", map[string]any{"Secret": enr.Secret,
		"QR": templateURL("data:image/png;base64," +
			base64.StdEncoding.EncodeToString(buf.Bytes()))}, "")
	return nil
}

// totpConfirm confirms the app with its first code, shows recovery codes,
// and completes a sign-in that was waiting for MFA enrolment.
func (s *Server) totpConfirm(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	codes, err := s.id.ConfirmTOTP(ctx, rc.source, rc.account.ID,
		strings.TrimSpace(r.PostFormValue("code")))
	if err != nil {
		return err
	}
	token, err := s.Sessions.Rotate(ctx, rc.token, rc.device, session.StateFull)
	if err != nil {
		return err
	}
	s.setSession(w, token)
	rc.token = token
	rc.sess.State = session.StateFull
	s.render(w, r, rc, http.StatusOK, "recovery_codes", map[string]any{"Codes": codes}, "")
	return nil
}

func (s *Server) totpRemove(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := s.id.RemoveTOTP(r.Context(), rc.source, rc.account.ID); err != nil {
		return err
	}
	http.Redirect(w, r, "/mfa", http.StatusSeeOther)
	return nil
}

func (s *Server) recoveryCodes(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	codes, err := s.id.NewRecoveryCodes(r.Context(), rc.account.ID)
	if err != nil {
		return err
	}
	if err := s.Audit.Record(r.Context(), audit.Event{Actor: rc.account.ID,
		Action: audit.MFAChange, Outcome: audit.Success, Subject: rc.account.ID,
		Source: rc.source, Reason: "recoveryCodesReplaced"}); err != nil {
		return err
	}
	s.render(w, r, rc, http.StatusOK, "recovery_codes", map[string]any{"Codes": codes}, "")
	return nil
}

func (s *Server) sessionsPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	list, err := s.Sessions.List(r.Context(), rc.account.ID)
	if err != nil {
		return err
	}
	s.render(w, r, rc, http.StatusOK, "sessions", map[string]any{"Sessions": list,
		"Current": rc.sess.PublicID}, "")
	return nil
}

func (s *Server) endSession(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	ok, err := s.Sessions.EndByPublicID(r.Context(), rc.account.ID, id,
		session.ReasonEndedByUser)
	if err != nil {
		return err
	}
	if !ok {
		return auth.ErrNotFound
	}
	if err := s.Audit.Record(r.Context(), audit.Event{Actor: rc.account.ID,
		Action: audit.SessionEnd, Outcome: audit.Success, Subject: id, Source: rc.source,
		Reason: session.ReasonEndedByUser}); err != nil {
		return err
	}
	if id == rc.sess.PublicID {
		s.clearSession(w)
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/sessions", http.StatusSeeOther)
	return nil
}

func (s *Server) profilePage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	p, err := s.id.Profile(r.Context(), rc.account.ID)
	if err != nil {
		return err
	}
	s.render(w, r, rc, http.StatusOK, "profile", p, "")
	return nil
}

func (s *Server) profileUpdate(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	phone := strings.TrimSpace(r.PostFormValue("phone"))
	notify := r.PostFormValue("notifyEmail") == "on"
	if err := s.id.UpdateContact(r.Context(), rc.source, rc.account.ID, phone,
		notify); err != nil {
		return err
	}
	p, err := s.id.Profile(r.Context(), rc.account.ID)
	if err != nil {
		return err
	}
	s.render(w, r, rc, http.StatusOK, "profile", notice{text: "Saved.", data: p}, "")
	return nil
}

func (s *Server) inviteData(r *http.Request, code string) map[string]any {
	staff := strings.HasPrefix(r.URL.Path, "/admin/")
	var roles []string
	for _, role := range s.Policy().Roles {
		if slices.Contains(auth.StaffRoles, role.Name) {
			roles = append(roles, role.Name)
		}
	}
	action := "/staff/invite"
	if staff {
		action = "/admin/invite"
	}
	return map[string]any{"Staff": staff, "Roles": roles, "Action": action, "Code": code}
}

func (s *Server) inviteForm(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	s.render(w, r, rc, http.StatusOK, "invite", s.inviteData(r, ""), "")
	return nil
}

// invitePatient creates a patient account, or a proxy's own account (what
// the proxy may see comes with a proxy grant), and shows its enrolment code.
func (s *Server) invitePatient(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	kind := auth.KindPatient
	if r.PostFormValue("kind") == auth.KindProxy {
		kind = auth.KindProxy
	}
	n := auth.NewAccount{Kind: kind, Roles: []string{kind},
		DisplayName: strings.TrimSpace(r.PostFormValue("displayName")),
		Email:       r.PostFormValue("email"), MRN: strings.TrimSpace(r.PostFormValue("mrn")),
		DOB: strings.TrimSpace(r.PostFormValue("dob"))}
	return s.invite(w, r, rc, n)
}

// inviteStaff creates a staff account with one staff role.
func (s *Server) inviteStaff(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	role := r.PostFormValue("role")
	if !slices.Contains(auth.StaffRoles, role) {
		return &auth.InputError{Field: "role", Message: "choose a staff role"}
	}
	n := auth.NewAccount{Kind: auth.KindStaff, Roles: []string{role},
		DisplayName: strings.TrimSpace(r.PostFormValue("displayName")),
		Email:       r.PostFormValue("email")}
	return s.invite(w, r, rc, n)
}

func (s *Server) invite(w http.ResponseWriter, r *http.Request, rc *reqCtx,
	n auth.NewAccount) error {
	_, code, err := s.id.CreateAccount(r.Context(), rc.account.ID, n, inviteTTL)
	if err != nil {
		e := errFor(err, "invite")
		e.Data = s.inviteData(r, "")
		return e
	}
	s.render(w, r, rc, http.StatusOK, "invite", s.inviteData(r, code), "")
	return nil
}

// staffRecover resets an account for staff-assisted recovery after the
// recorded identity check.
func (s *Server) staffRecover(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	code, err := s.id.StaffRecovery(r.Context(), rc.account.ID, rc.source,
		r.PathValue("id"), r.PostFormValue("identityCheck"))
	if err != nil {
		return err
	}
	s.render(w, r, rc, http.StatusOK, "issued", map[string]any{
		"Title": "Account recovery started", "Code": code}, "")
	return nil
}

func (s *Server) disableAccount(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := s.id.Disable(r.Context(), rc.account.ID, r.PathValue("id")); err != nil {
		return err
	}
	s.render(w, r, rc, http.StatusOK, "error",
		map[string]string{"Title": "Account disabled."}, "")
	return nil
}
