package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pleura-dev/pleura/internal/tenantconfig"
	"github.com/pleura-dev/pleura/portal/audit"
	pcrypto "github.com/pleura-dev/pleura/portal/crypto"
	"github.com/pleura-dev/pleura/portal/notify"
	"github.com/pleura-dev/pleura/portal/session"
)

// Account kinds.
const (
	KindStaff   = "staff"
	KindPatient = "patient"
	KindProxy   = "proxy"
)

// StaffRoles are the staff roles the portal knows.
var StaffRoles = []string{"pulmonologist", "respiratoryTherapist", "scheduler", "billing",
	"admin"}

// recoveryCodeCount is how many recovery codes a user gets at a time.
const recoveryCodeCount = 10

// Limits is an operation's rate limits.
type Limits struct {
	// Account limits attempts against one account (or one identifier,
	// whether or not an account has it); Address limits one source.
	Account, Address Limit
}

// DefaultLimits are per-operation limits. Per account they stop guessing
// one password or code; per address they stop stuffing across accounts.
var DefaultLimits = map[Scope]Limits{
	ScopeSignIn: {Account: Limit{10, 15 * time.Minute},
		Address: Limit{30, 15 * time.Minute}},
	ScopeSecondFactor: {Account: Limit{5, 15 * time.Minute},
		Address: Limit{20, 15 * time.Minute}},
	ScopeEnrolment: {Account: Limit{5, time.Hour}, Address: Limit{20, time.Hour}},
	ScopeRecovery:  {Account: Limit{5, time.Hour}, Address: Limit{10, time.Hour}},
}

// Account is an identity as the rest of the portal sees it.
type Account struct {
	// ID is the opaque account id ("acct_...") used in logs and audit.
	ID string
	// Kind is KindStaff, KindPatient or KindProxy.
	Kind string
	// Roles are the account's roles in the tenant policy.
	Roles []string
	// DisplayName is how the person is addressed.
	DisplayName string
	// Disabled accounts cannot sign in and have no sessions.
	Disabled bool
	// HasPassword is false until enrolment (or after staff recovery).
	HasPassword bool
	// HasTOTP is a confirmed TOTP factor.
	HasTOTP bool
	// WebAuthn counts registered WebAuthn credentials.
	WebAuthn int
}

// HasMFA reports any enrolled second factor.
func (a *Account) HasMFA() bool { return a.HasTOTP || a.WebAuthn > 0 }

// Service is the identity service: accounts, enrolment, passwords, second
// factors, recovery and profile changes. Every security event goes through
// Audit; every notification through Outbox.
type Service struct {
	DB       *pgxpool.Pool
	Keys     *pcrypto.Keyring
	Hasher   Hasher
	Limiter  *Limiter
	Limits   map[Scope]Limits
	Audit    audit.Recorder
	Outbox   *notify.Outbox
	Sessions *session.Manager
	// Policy returns the tenant's current policy; it may change at run time.
	Policy func() *tenantconfig.Policy
	// Issuer names the clinic in authenticator apps.
	Issuer string
	// WebAuthn is the relying party for security keys and passkeys.
	WebAuthn *webauthn.WebAuthn
	// Now is the clock.
	Now func() time.Time

	dummyHash string
}

// Init prepares the service; call once before use.
func (s *Service) Init() error {
	if s.Limits == nil {
		s.Limits = DefaultLimits
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	// Unknown accounts are checked against this hash so that sign-in costs
	// the same whether or not the account exists.
	h, err := s.Hasher.Hash("pleura timing equaliser, never a real password")
	s.dummyHash = h
	return err
}

// NewAccount is what staff (or the first-admin subcommand) enter to create
// an account.
type NewAccount struct {
	Kind        string
	Roles       []string
	DisplayName string
	Email       string
	// MRN and DOB (YYYY-MM-DD) are for patients; optional.
	MRN, DOB string
}

// Validate checks n against the policy, naming the bad field.
func (n *NewAccount) Validate(p *tenantconfig.Policy) error {
	if !slices.Contains([]string{KindStaff, KindPatient, KindProxy}, n.Kind) {
		return &InputError{"kind", "choose staff, patient or proxy"}
	}
	if len(n.Roles) == 0 {
		return &InputError{"roles", "choose at least one role"}
	}
	for _, r := range n.Roles {
		if p.Role(r) == nil {
			return &InputError{"roles", fmt.Sprintf("role %q is not in the policy", r)}
		}
	}
	if _, err := mail.ParseAddress(n.Email); err != nil || strings.ContainsAny(n.Email, "<> ") {
		return &InputError{"email", "enter an address like name@example.org"}
	}
	if n.DOB != "" {
		if _, err := time.Parse(time.DateOnly, n.DOB); err != nil {
			return &InputError{"dob", "write the date of birth as YYYY-MM-DD"}
		}
	}
	if len(n.DisplayName) > 200 || len(n.MRN) > 64 {
		return &InputError{"displayName", "too long"}
	}
	return nil
}

// CreateAccount creates an account and returns it with a single-use
// enrolment code valid for ttl. actor is the inviting account ("" for the
// first admin).
func (s *Service) CreateAccount(ctx context.Context, actor string, n NewAccount,
	ttl time.Duration) (string, string, error) {
	if err := n.Validate(s.Policy()); err != nil {
		return "", "", err
	}
	id, err := newID()
	if err != nil {
		return "", "", err
	}
	email := normEmail(n.Email)
	enc := func(col, v string) ([]byte, error) {
		if v == "" {
			return nil, nil
		}
		return s.Keys.Encrypt(pcrypto.Location{Table: "accounts", Row: id, Column: col},
			[]byte(v))
	}
	emailCT, err := enc("email", email)
	if err != nil {
		return "", "", err
	}
	mrnCT, err := enc("mrn", n.MRN)
	if err != nil {
		return "", "", err
	}
	dobCT, err := enc("dob", n.DOB)
	if err != nil {
		return "", "", err
	}
	var mrnIdx []byte
	if n.MRN != "" {
		mrnIdx = s.Keys.BlindIndex("mrn", strings.ToUpper(strings.TrimSpace(n.MRN)))
	}
	var invitedBy any
	if actor != "" {
		invitedBy = actor
	}
	_, err = s.DB.Exec(ctx, `INSERT INTO accounts (id, kind, roles, display_name, email_ct,
		email_bidx, mrn_ct, mrn_bidx, dob_ct, invited_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, id, n.Kind, n.Roles,
		n.DisplayName, emailCT, s.Keys.BlindIndex("email", email), mrnCT, mrnIdx, dobCT,
		invitedBy)
	if isUnique(err) {
		return "", "", &InputError{"email", "an account with this email or MRN exists"}
	} else if err != nil {
		return "", "", fmt.Errorf("creating account: %w", err)
	}
	code, err := s.issueEnrolmentCode(ctx, id, ttl)
	if err != nil {
		return "", "", err
	}
	return id, code, s.Audit.Record(ctx, audit.Event{Actor: actor, Action: audit.Invite,
		Outcome: audit.Success, Subject: id})
}

func (s *Service) issueEnrolmentCode(ctx context.Context, account string,
	ttl time.Duration) (string, error) {
	code, err := NewCode(15)
	if err != nil {
		return "", err
	}
	_, err = s.DB.Exec(ctx, `INSERT INTO enrolment_codes (code_hash, account_id, expires_at)
		VALUES ($1, $2, $3)`, HashCode("enrol", code), account, s.Now().Add(ttl))
	if err != nil {
		return "", fmt.Errorf("storing enrolment code: %w", err)
	}
	return code, nil
}

// limit counts an attempt against the address and, when key is not empty,
// the account key; it returns ErrRateLimited past either limit.
func (s *Service) limit(ctx context.Context, scope Scope, source, key string) error {
	l := s.Limits[scope]
	ok, err := s.Limiter.Hit(ctx, scope, "addr:"+source, l.Address)
	if err != nil {
		return err
	}
	if key != "" {
		okAcct, err := s.Limiter.Hit(ctx, scope, "acct:"+key, l.Account)
		if err != nil {
			return err
		}
		ok = ok && okAcct
	}
	if !ok {
		_ = s.Audit.Record(ctx, audit.Event{Action: audit.RateLimited, Outcome: audit.Denied,
			Source: source, Reason: string(scope)})
		return ErrRateLimited
	}
	return nil
}

// Enrol redeems a single-use enrolment code by setting the account's
// password, and returns the account id.
func (s *Service) Enrol(ctx context.Context, source, code, password string) (string, error) {
	h := HashCode("enrol", code)
	if err := s.limit(ctx, ScopeEnrolment, source, hex.EncodeToString(h)); err != nil {
		return "", err
	}
	var id string
	err := s.DB.QueryRow(ctx, `SELECT account_id FROM enrolment_codes
		WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2`, h, s.Now()).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		_ = s.Audit.Record(ctx, audit.Event{Action: audit.Enrolment, Outcome: audit.Failure,
			Source: source, Reason: "badCode"})
		return "", ErrInvalidCode
	} else if err != nil {
		return "", fmt.Errorf("reading enrolment code: %w", err)
	}
	acct, err := s.Get(ctx, id)
	if err != nil {
		return "", err
	}
	eff, err := s.Policy().Effective(acct.Roles)
	if err != nil {
		return "", err
	}
	if err := CheckPassword(password, eff.MFARequired, acct.DisplayName,
		s.Issuer); err != nil {
		return "", &InputError{"password", err.Error()}
	}
	hash, err := s.Hasher.Hash(password)
	if err != nil {
		return "", err
	}
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	tag, err := tx.Exec(ctx, `UPDATE enrolment_codes SET used_at = now()
		WHERE code_hash = $1 AND used_at IS NULL`, h)
	if err != nil {
		return "", fmt.Errorf("using enrolment code: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return "", ErrInvalidCode
	}
	if _, err := tx.Exec(ctx, `UPDATE accounts SET password_hash = $2 WHERE id = $1`,
		id, hash); err != nil {
		return "", fmt.Errorf("setting password: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", err
	}
	return id, s.Audit.Record(ctx, audit.Event{Actor: id, Action: audit.Enrolment,
		Outcome: audit.Success, Subject: id, Source: source})
}

// SignIn checks an email and password. It costs one Argon2id verification
// whatever the outcome, and fails with ErrInvalidCredentials for unknown,
// wrong and disabled alike.
func (s *Service) SignIn(ctx context.Context, source, email, password string) (*Account,
	error) {
	email = normEmail(email)
	bidx := s.Keys.BlindIndex("email", email)
	if err := s.limit(ctx, ScopeSignIn, source, hex.EncodeToString(bidx)); err != nil {
		return nil, err
	}
	var id string
	var hash *string
	var disabled *time.Time
	err := s.DB.QueryRow(ctx, `SELECT id, password_hash, disabled_at FROM accounts
		WHERE email_bidx = $1`, bidx).Scan(&id, &hash, &disabled)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("reading account: %w", err)
	}
	stored := s.dummyHash
	if hash != nil {
		stored = *hash
	}
	ok, rehash, verr := s.Hasher.Verify(password, stored)
	if verr != nil || !ok || hash == nil || disabled != nil {
		reason := "badPassword"
		if id == "" {
			reason = "unknownAccount"
		} else if disabled != nil {
			reason = "disabled"
		}
		_ = s.Audit.Record(ctx, audit.Event{Action: audit.SignInFailed,
			Outcome: audit.Failure, Subject: id, Source: source, Reason: reason})
		return nil, ErrInvalidCredentials
	}
	if rehash {
		if h, err := s.Hasher.Hash(password); err == nil {
			_, _ = s.DB.Exec(ctx, `UPDATE accounts SET password_hash = $2 WHERE id = $1`,
				id, h)
		}
	}
	return s.Get(ctx, id)
}

// Get reads an account.
func (s *Service) Get(ctx context.Context, id string) (*Account, error) {
	a := &Account{ID: id}
	var disabled *time.Time
	err := s.DB.QueryRow(ctx, `SELECT a.kind, a.roles, a.display_name, a.disabled_at,
		a.password_hash IS NOT NULL,
		EXISTS (SELECT 1 FROM totp_factors t WHERE t.account_id = a.id AND t.confirmed),
		(SELECT count(*) FROM webauthn_credentials w WHERE w.account_id = a.id)
		FROM accounts a WHERE a.id = $1`, id).Scan(&a.Kind, &a.Roles, &a.DisplayName,
		&disabled, &a.HasPassword, &a.HasTOTP, &a.WebAuthn)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("reading account: %w", err)
	}
	a.Disabled = disabled != nil
	return a, nil
}

// SessionLimits returns the timeouts that apply to account now: the
// strictest across its roles under the current policy. A disabled account
// or one whose roles left the policy gets an error, which ends its sessions.
func (s *Service) SessionLimits(ctx context.Context, account string) (session.Limits,
	error) {
	a, err := s.Get(ctx, account)
	if err != nil {
		return session.Limits{}, err
	}
	if a.Disabled {
		return session.Limits{}, ErrInvalidCredentials
	}
	eff, err := s.Policy().Effective(a.Roles)
	if err != nil {
		return session.Limits{}, err
	}
	return session.Limits{Idle: eff.Session.Idle.Duration,
		Absolute: eff.Session.Absolute.Duration}, nil
}

// Effective returns the policy rules for account.
func (s *Service) Effective(a *Account) (tenantconfig.Effective, error) {
	return s.Policy().Effective(a.Roles)
}

// Disable disables account and ends its sessions.
func (s *Service) Disable(ctx context.Context, actor, account string) error {
	tag, err := s.DB.Exec(ctx, `UPDATE accounts SET disabled_at = now()
		WHERE id = $1 AND disabled_at IS NULL`, account)
	if err != nil {
		return fmt.Errorf("disabling account: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	if _, err := s.Sessions.EndAll(ctx, account, session.ReasonDisabled); err != nil {
		return err
	}
	return s.Audit.Record(ctx, audit.Event{Actor: actor, Action: audit.AccountDisabled,
		Outcome: audit.Success, Subject: account})
}

// Email decrypts account's email address.
func (s *Service) Email(ctx context.Context, account string) (string, error) {
	var ct []byte
	if err := s.DB.QueryRow(ctx, `SELECT email_ct FROM accounts WHERE id = $1`,
		account).Scan(&ct); err != nil {
		return "", fmt.Errorf("reading email: %w", err)
	}
	pt, err := s.Keys.Decrypt(ctx, pcrypto.Location{Table: "accounts", Row: account,
		Column: "email"}, ct)
	return string(pt), err
}

// notify queues a security notification to account's email.
func (s *Service) notify(ctx context.Context, account, subject, body string) error {
	to, err := s.Email(ctx, account)
	if err != nil {
		return err
	}
	return s.Outbox.Enqueue(ctx, account, to, subject, body+"\n\nIf this was not you, "+
		"call the clinic at once.\n")
}

func newID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "acct_" + hex.EncodeToString(b), nil
}

func normEmail(e string) string {
	return strings.ToLower(strings.TrimSpace(e))
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "SQLSTATE 23505")
}
