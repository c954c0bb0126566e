package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/jackc/pgx/v5"

	"github.com/pleura-dev/pleura/portal/audit"
)

// waUser adapts an account to go-webauthn's User.
type waUser struct {
	acct  *Account
	creds []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return []byte(u.acct.ID) }
func (u *waUser) WebAuthnName() string                       { return u.acct.ID }
func (u *waUser) WebAuthnDisplayName() string                { return u.acct.DisplayName }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func (s *Service) waUser(ctx context.Context, account string) (*waUser, error) {
	a, err := s.Get(ctx, account)
	if err != nil {
		return nil, err
	}
	rows, err := s.DB.Query(ctx, `SELECT credential FROM webauthn_credentials
		WHERE account_id = $1 ORDER BY created_at`, account)
	if err != nil {
		return nil, fmt.Errorf("reading WebAuthn credentials: %w", err)
	}
	creds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (webauthn.Credential,
		error) {
		var c webauthn.Credential
		var raw []byte
		if err := r.Scan(&raw); err != nil {
			return c, err
		}
		return c, json.Unmarshal(raw, &c)
	})
	if err != nil {
		return nil, fmt.Errorf("reading WebAuthn credentials: %w", err)
	}
	return &waUser{acct: a, creds: creds}, nil
}

// BeginWebAuthnRegistration starts registering a security key or passkey
// for account. It returns the options for the browser and the ceremony
// state to keep server-side.
func (s *Service) BeginWebAuthnRegistration(ctx context.Context, account string) ([]byte,
	[]byte, error) {
	u, err := s.waUser(ctx, account)
	if err != nil {
		return nil, nil, err
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range u.creds {
		exclude = append(exclude, c.Descriptor())
	}
	opts, state, err := s.WebAuthn.BeginRegistration(u,
		webauthn.WithExclusions(exclude),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			UserVerification: protocol.VerificationPreferred}))
	if err != nil {
		return nil, nil, fmt.Errorf("starting WebAuthn registration: %w", err)
	}
	return marshalPair(opts, state)
}

// FinishWebAuthnRegistration verifies the browser's answer against the
// ceremony state and stores the credential.
func (s *Service) FinishWebAuthnRegistration(ctx context.Context, source, account string,
	state []byte, r *http.Request) error {
	u, err := s.waUser(ctx, account)
	if err != nil {
		return err
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(state, &sd); err != nil {
		return ErrCodeRejected
	}
	cred, err := s.WebAuthn.FinishRegistration(u, sd, r)
	if err != nil {
		_ = s.Audit.Record(ctx, audit.Event{Actor: account, Action: audit.MFAChange,
			Outcome: audit.Failure, Subject: account, Source: source,
			Reason: "webauthnRegistration"})
		return fmt.Errorf("%w: %v", ErrCodeRejected, err)
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	if _, err := s.DB.Exec(ctx, `INSERT INTO webauthn_credentials (id, account_id, credential)
		VALUES ($1, $2, $3)`, cred.ID, account, raw); err != nil {
		return fmt.Errorf("storing WebAuthn credential: %w", err)
	}
	if err := s.Audit.Record(ctx, audit.Event{Actor: account, Action: audit.MFAChange,
		Outcome: audit.Success, Subject: account, Source: source,
		Reason: "webauthnAdded"}); err != nil {
		return err
	}
	return s.notify(ctx, account, "A security key was added to your account",
		"A security key or passkey was just registered for signing in to your portal.")
}

// BeginWebAuthnLogin starts a WebAuthn second-factor check for account.
func (s *Service) BeginWebAuthnLogin(ctx context.Context, account string) ([]byte, []byte,
	error) {
	u, err := s.waUser(ctx, account)
	if err != nil {
		return nil, nil, err
	}
	if len(u.creds) == 0 {
		return nil, nil, ErrNoFactor
	}
	opts, state, err := s.WebAuthn.BeginLogin(u)
	if err != nil {
		return nil, nil, fmt.Errorf("starting WebAuthn sign-in: %w", err)
	}
	return marshalPair(opts, state)
}

// FinishWebAuthnLogin verifies an assertion as account's second factor,
// rate limited like codes, and records the new signature counter.
func (s *Service) FinishWebAuthnLogin(ctx context.Context, source, account string,
	state []byte, r *http.Request, purpose audit.Action) error {
	if err := s.limit(ctx, ScopeSecondFactor, source, account); err != nil {
		return err
	}
	u, err := s.waUser(ctx, account)
	if err != nil {
		return err
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(state, &sd); err != nil {
		return ErrCodeRejected
	}
	cred, verr := s.WebAuthn.FinishLogin(u, sd, r)
	outcome := audit.Success
	if verr != nil {
		outcome = audit.Failure
	}
	if err := s.Audit.Record(ctx, audit.Event{Actor: account, Action: purpose,
		Outcome: outcome, Subject: account, Source: source, Reason: "webauthn"}); err != nil {
		return err
	}
	if verr != nil {
		return fmt.Errorf("%w: %v", ErrCodeRejected, verr)
	}
	if cred.Authenticator.CloneWarning {
		return fmt.Errorf("%w: authenticator counter went backwards", ErrCodeRejected)
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	_, err = s.DB.Exec(ctx, `UPDATE webauthn_credentials SET credential = $2,
		last_used_at = now() WHERE id = $1`, cred.ID, raw)
	return err
}

func marshalPair(opts, state any) ([]byte, []byte, error) {
	o, err := json.Marshal(opts)
	if err != nil {
		return nil, nil, err
	}
	st, err := json.Marshal(state)
	return o, st, err
}
