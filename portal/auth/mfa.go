package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pleura-dev/pleura/portal/audit"
	pcrypto "github.com/pleura-dev/pleura/portal/crypto"
	"github.com/pleura-dev/pleura/portal/session"
)

var totpCode = regexp.MustCompile(`^[0-9]{6}$`)

// TOTPEnrolment is a secret shown once while the user sets up an app.
type TOTPEnrolment struct {
	// Secret is base32, for typing into an app. Never log it.
	Secret string
	// URL is the otpauth:// URL for a QR code.
	URL string
}

func totpLocation(account string) pcrypto.Location {
	return pcrypto.Location{Table: "totp_factors", Row: account, Column: "secret"}
}

// BeginTOTP stores a new, unconfirmed TOTP secret for account (replacing an
// unconfirmed one) and returns it for display. A confirmed factor must be
// removed first, which needs step-up.
func (s *Service) BeginTOTP(ctx context.Context, account string) (*TOTPEnrolment, error) {
	key, err := NewTOTPKey(s.Issuer, account)
	if err != nil {
		return nil, fmt.Errorf("making TOTP secret: %w", err)
	}
	ct, err := s.Keys.Encrypt(totpLocation(account), []byte(key.Secret()))
	if err != nil {
		return nil, err
	}
	tag, err := s.DB.Exec(ctx, `INSERT INTO totp_factors (account_id, secret_ct)
		VALUES ($1, $2) ON CONFLICT (account_id) DO UPDATE SET secret_ct = $2,
		last_step = 0 WHERE NOT totp_factors.confirmed`, account, ct)
	if err != nil {
		return nil, fmt.Errorf("storing TOTP secret: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return nil, &InputError{"totp", "an authenticator app is already set up; remove it first"}
	}
	return &TOTPEnrolment{Secret: key.Secret(), URL: key.URL()}, nil
}

// ConfirmTOTP confirms the pending TOTP factor with a first code and
// returns fresh recovery codes to show once.
func (s *Service) ConfirmTOTP(ctx context.Context, source, account, code string) ([]string,
	error) {
	if err := s.limit(ctx, ScopeSecondFactor, source, account); err != nil {
		return nil, err
	}
	if err := s.checkTOTP(ctx, account, code, false); err != nil {
		_ = s.Audit.Record(ctx, audit.Event{Actor: account, Action: audit.MFAChange,
			Outcome: audit.Failure, Subject: account, Source: source, Reason: "badTOTP"})
		return nil, err
	}
	if _, err := s.DB.Exec(ctx, `UPDATE totp_factors SET confirmed = true
		WHERE account_id = $1`, account); err != nil {
		return nil, fmt.Errorf("confirming TOTP: %w", err)
	}
	codes, err := s.NewRecoveryCodes(ctx, account)
	if err != nil {
		return nil, err
	}
	if err := s.Audit.Record(ctx, audit.Event{Actor: account, Action: audit.MFAChange,
		Outcome: audit.Success, Subject: account, Source: source,
		Reason: "totpAdded"}); err != nil {
		return nil, err
	}
	return codes, s.notify(ctx, account, "An authenticator app was added to your account",
		"An authenticator app was just set up for signing in to your patient portal.")
}

// RemoveTOTP removes account's TOTP factor. The caller must have checked
// step-up.
func (s *Service) RemoveTOTP(ctx context.Context, source, account string) error {
	if _, err := s.DB.Exec(ctx, `DELETE FROM totp_factors WHERE account_id = $1`,
		account); err != nil {
		return fmt.Errorf("removing TOTP: %w", err)
	}
	if err := s.Audit.Record(ctx, audit.Event{Actor: account, Action: audit.MFAChange,
		Outcome: audit.Success, Subject: account, Source: source,
		Reason: "totpRemoved"}); err != nil {
		return err
	}
	return s.notify(ctx, account, "An authenticator app was removed from your account",
		"An authenticator app was removed from your patient portal account.")
}

// checkTOTP verifies code against account's secret (confirmed or not) and
// consumes its time step.
func (s *Service) checkTOTP(ctx context.Context, account, code string,
	confirmed bool) error {
	if !totpCode.MatchString(code) {
		return ErrCodeRejected
	}
	var ct []byte
	err := s.DB.QueryRow(ctx, `SELECT secret_ct FROM totp_factors
		WHERE account_id = $1 AND confirmed = $2`, account, confirmed).Scan(&ct)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrCodeRejected
	} else if err != nil {
		return fmt.Errorf("reading TOTP secret: %w", err)
	}
	secret, err := s.Keys.Decrypt(ctx, totpLocation(account), ct)
	if err != nil {
		return err
	}
	step, err := MatchTOTP(string(secret), code, s.Now())
	if err != nil {
		return err
	}
	return ConsumeTOTPStep(ctx, s.DB, account, step)
}

// VerifySecondFactor checks a TOTP code or a recovery code for account.
// It is rate limited per account and address; a recovery code is consumed.
// purpose is recorded in the audit log ("signIn" or "stepUp").
func (s *Service) VerifySecondFactor(ctx context.Context, source, account, code string,
	purpose audit.Action) error {
	if err := s.limit(ctx, ScopeSecondFactor, source, account); err != nil {
		return err
	}
	code = strings.TrimSpace(code)
	var err error
	reason := "totp"
	if totpCode.MatchString(code) {
		err = s.checkTOTP(ctx, account, code, true)
	} else {
		reason = "recoveryCode"
		err = s.useRecoveryCode(ctx, account, code)
	}
	outcome := audit.Success
	if err != nil {
		outcome = audit.Failure
	}
	if aerr := s.Audit.Record(ctx, audit.Event{Actor: account, Action: purpose,
		Outcome: outcome, Subject: account, Source: source, Reason: reason}); aerr != nil {
		return aerr
	}
	return err
}

// NewRecoveryCodes replaces account's recovery codes and returns the new
// ones, to be shown once; only their hashes are stored.
func (s *Service) NewRecoveryCodes(ctx context.Context, account string) ([]string, error) {
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE account_id = $1`,
		account); err != nil {
		return nil, fmt.Errorf("replacing recovery codes: %w", err)
	}
	codes := make([]string, recoveryCodeCount)
	for i := range codes {
		if codes[i], err = NewCode(10); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO recovery_codes (code_hash, account_id)
			VALUES ($1, $2)`, HashCode("recovery:"+account, codes[i]), account); err != nil {
			return nil, fmt.Errorf("storing recovery code: %w", err)
		}
	}
	return codes, tx.Commit(ctx)
}

func (s *Service) useRecoveryCode(ctx context.Context, account, code string) error {
	tag, err := s.DB.Exec(ctx, `UPDATE recovery_codes SET used_at = now()
		WHERE code_hash = $1 AND account_id = $2 AND used_at IS NULL`,
		HashCode("recovery:"+account, code), account)
	if err != nil {
		return fmt.Errorf("using recovery code: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return ErrCodeRejected
	}
	return nil
}

// ResetPassword is self-service recovery of a forgotten password. It needs
// one of the account's recovery codes, so it never bypasses MFA: an
// account without an enrolled second factor cannot reset this way and must
// use staff-assisted recovery. Sessions end and the user is notified. The
// answer is the same for unknown accounts.
func (s *Service) ResetPassword(ctx context.Context, source, email, code,
	password string) error {
	bidx := s.Keys.BlindIndex("email", normEmail(email))
	if err := s.limit(ctx, ScopeRecovery, source, fmt.Sprintf("%x", bidx)); err != nil {
		return err
	}
	var id string
	err := s.DB.QueryRow(ctx, `SELECT id FROM accounts
		WHERE email_bidx = $1 AND disabled_at IS NULL`, bidx).Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("reading account: %w", err)
	}
	fail := func(reason string) error {
		_ = s.Audit.Record(ctx, audit.Event{Action: audit.Recovery, Outcome: audit.Failure,
			Subject: id, Source: source, Reason: reason})
		return ErrInvalidCredentials
	}
	if id == "" {
		// Same work as a real attempt: one hash.
		_, _ = s.Hasher.Hash(password)
		return fail("unknownAccount")
	}
	acct, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	eff, err := s.Effective(acct)
	if err != nil {
		return err
	}
	if err := CheckPassword(password, eff.MFARequired, acct.DisplayName,
		s.Issuer); err != nil {
		return &InputError{"password", err.Error()}
	}
	hash, err := s.Hasher.Hash(password)
	if err != nil {
		return err
	}
	if !acct.HasMFA() {
		return fail("noSecondFactor")
	}
	if err := s.useRecoveryCode(ctx, id, strings.TrimSpace(code)); err != nil {
		return fail("badRecoveryCode")
	}
	if _, err := s.DB.Exec(ctx, `UPDATE accounts SET password_hash = $2 WHERE id = $1`,
		id, hash); err != nil {
		return fmt.Errorf("setting password: %w", err)
	}
	if _, err := s.Sessions.EndAll(ctx, id, session.ReasonRecovery); err != nil {
		return err
	}
	if err := s.Audit.Record(ctx, audit.Event{Actor: id, Action: audit.Recovery,
		Outcome: audit.Success, Subject: id, Source: source,
		Reason: "recoveryCode"}); err != nil {
		return err
	}
	return s.notify(ctx, id, "Your portal password was reset",
		"Your patient portal password was reset with a recovery code. Your "+
			"authenticator still protects the account, and every session was signed out.")
}

// IdentityChecks are the identity checks staff can record for
// staff-assisted recovery. A fixed vocabulary keeps identity-document
// details out of the audit log.
var IdentityChecks = []string{"photoIdInPerson", "photoIdOnVideoCall",
	"knownToStaffInPerson"}

// StaffRecovery is staff-assisted recovery for a user who lost both
// password and second factor. The staff member must describe the identity
// check performed (recorded in the audit log); the account's password,
// factors, recovery codes and sessions are removed and a new single-use
// enrolment code is returned for the staff member to hand over in person.
// The user is notified.
func (s *Service) StaffRecovery(ctx context.Context, actor, source, account,
	identityCheck string) (string, error) {
	if !slices.Contains(IdentityChecks, identityCheck) {
		return "", &InputError{"identityCheck", "choose the identity check you performed: " +
			strings.Join(IdentityChecks, ", ")}
	}
	if _, err := s.Get(ctx, account); err != nil {
		return "", err
	}
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, q := range []string{
		`UPDATE accounts SET password_hash = NULL WHERE id = $1`,
		`DELETE FROM totp_factors WHERE account_id = $1`,
		`DELETE FROM webauthn_credentials WHERE account_id = $1`,
		`DELETE FROM recovery_codes WHERE account_id = $1`,
		`UPDATE enrolment_codes SET used_at = now() WHERE account_id = $1 AND used_at IS NULL`,
		`UPDATE sessions SET ended_at = now(), end_reason = 'recovery'
			WHERE account_id = $1 AND ended_at IS NULL`,
	} {
		if _, err := tx.Exec(ctx, q, account); err != nil {
			return "", fmt.Errorf("resetting account for recovery: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return "", err
	}
	code, err := s.issueEnrolmentCode(ctx, account, 24*time.Hour)
	if err != nil {
		return "", err
	}
	if err := s.Audit.Record(ctx, audit.Event{Actor: actor, Action: audit.Recovery,
		Outcome: audit.Success, Subject: account, Source: source,
		Reason: "staffAssisted: " + identityCheck}); err != nil {
		return "", err
	}
	return code, s.notify(ctx, account, "Your portal account is being recovered",
		"Clinic staff started recovery of your patient portal account after checking "+
			"your identity. Your old password and authenticators no longer work.")
}
