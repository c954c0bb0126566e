package server

import (
	"net/http"

	tc "github.com/pleura-dev/pleura/internal/tenantconfig"
)

// Access is the session a route needs.
type Access int

// Access levels. The zero value is refused when the table is built, so a
// route cannot forget to declare one.
const (
	accessUnset Access = iota
	// Public needs no session (sign-in, enrolment, recovery).
	Public
	// Pending needs a session that passed the password; a second factor
	// may still be due (second-factor and MFA-enrolment pages).
	Pending
	// SignedIn needs a complete sign-in, with MFA if the policy requires it.
	SignedIn
)

// Permission is what a route declares it needs.
type Permission struct {
	// Access is the session level.
	Access Access
	// Record and Action, when Record is set, must be granted by the
	// account's roles in the tenant policy.
	Record tc.RecordKind
	Action tc.Action
	// StepUp lists actions the route performs; when the policy names one
	// of them, a fresh second factor is required first.
	StepUp []tc.StepUpAction
}

// handler is a route's body; a returned error goes to renderError.
type handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error

type route struct {
	// pattern is a ServeMux pattern, "METHOD /path".
	pattern string
	perm    Permission
	h       handler
	// page is the form re-rendered with an input error's message.
	page string
}

var (
	public   = Permission{Access: Public}
	pending  = Permission{Access: Pending}
	signedIn = Permission{Access: SignedIn}
)

// routes is the portal's one route table. Anything not listed is 404.
func (s *Server) routes() []route {
	authn := []tc.StepUpAction{tc.StepUpChangeAuthenticator}
	return []route{
		{"GET /{$}", signedIn, s.home, ""},
		{"GET /sign-in", public, s.signInForm, ""},
		{"POST /sign-in", public, s.signIn, "signin"},
		{"GET /sign-in/second-factor", pending, s.secondFactorForm, ""},
		{"POST /sign-in/second-factor", pending, s.secondFactor, "second_factor"},
		{"POST /sign-out", pending, s.signOut, ""},
		{"GET /enrol", public, s.enrolForm, ""},
		{"POST /enrol", public, s.enrol, "enrol"},
		{"GET /recover", public, s.recoverForm, ""},
		{"POST /recover", public, s.recover, "recover"},
		{"POST /step-up", signedIn, s.stepUp, "second_factor"},

		{"GET /mfa", pending, s.mfaPage, ""},
		{"POST /mfa/totp", Permission{Access: Pending, StepUp: authn}, s.totpBegin, "mfa"},
		{"POST /mfa/totp/confirm", Permission{Access: Pending, StepUp: authn},
			s.totpConfirm, ""},
		{"POST /mfa/totp/remove", Permission{Access: SignedIn, StepUp: authn},
			s.totpRemove, "mfa"},
		{"POST /mfa/webauthn/register/begin", Permission{Access: Pending, StepUp: authn},
			s.webauthnRegisterBegin, ""},
		{"POST /mfa/webauthn/register/finish", Permission{Access: Pending, StepUp: authn},
			s.webauthnRegisterFinish, ""},
		// Also the WebAuthn step-up: a full session comes out with a fresh
		// second-factor time and a new token.
		{"POST /sign-in/webauthn/begin", pending, s.webauthnLoginBegin, ""},
		{"POST /sign-in/webauthn/finish", pending, s.webauthnLoginFinish, ""},
		{"POST /mfa/recovery-codes", Permission{Access: SignedIn, StepUp: authn},
			s.recoveryCodes, "mfa"},

		{"GET /sessions", signedIn, s.sessionsPage, ""},
		{"POST /sessions/{id}/end", signedIn, s.endSession, ""},
		{"GET /profile", signedIn, s.profilePage, ""},
		{"POST /profile", Permission{Access: SignedIn, StepUp: []tc.StepUpAction{
			tc.StepUpChangeContact, tc.StepUpChangeNotifications}}, s.profileUpdate,
			"profile"},

		{"GET /staff/invite", Permission{Access: SignedIn, Record: tc.RecordDemographic,
			Action: tc.ActionWrite}, s.inviteForm, ""},
		{"POST /staff/invite", Permission{Access: SignedIn, Record: tc.RecordDemographic,
			Action: tc.ActionWrite}, s.invitePatient, "invite"},
		{"GET /admin/invite", Permission{Access: SignedIn, Record: tc.RecordAccount,
			Action: tc.ActionWrite}, s.inviteForm, ""},
		{"POST /admin/invite", Permission{Access: SignedIn, Record: tc.RecordAccount,
			Action: tc.ActionWrite}, s.inviteStaff, "invite"},
		{"POST /admin/accounts/{id}/recover", Permission{Access: SignedIn,
			Record: tc.RecordAccount, Action: tc.ActionWrite}, s.staffRecover, ""},
		{"POST /admin/accounts/{id}/disable", Permission{Access: SignedIn,
			Record: tc.RecordAccount, Action: tc.ActionWrite}, s.disableAccount, ""},
	}
}
