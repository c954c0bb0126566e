package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters (RFC 6238 defaults, which every authenticator app reads).
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
)

// ErrCodeRejected is returned for a wrong, expired or replayed one-time
// code; the cases are not told apart.
var ErrCodeRejected = errors.New("code rejected")

// NewTOTPKey makes a TOTP secret for accountName at issuer.
func NewTOTPKey(issuer, accountName string) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: accountName,
		Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
}

// MatchTOTP returns the time step whose code equals code, trying the
// current step and one step either side (RFC 6238's drift of one step), or
// ErrCodeRejected.
func MatchTOTP(secret, code string, now time.Time) (int64, error) {
	step := now.Unix() / totpPeriod
	matched := int64(-1)
	for _, s := range []int64{step - 1, step, step + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0),
			totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits,
				Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, fmt.Errorf("computing TOTP: %w", err)
		}
		// Check all three in constant time so timing shows nothing.
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = s
		}
	}
	if matched < 0 {
		return 0, ErrCodeRejected
	}
	return matched, nil
}

// ConsumeTOTPStep records step as used for account, rejecting a step at or
// before the last accepted one: a code is good once, across replicas.
func ConsumeTOTPStep(ctx context.Context, db *pgxpool.Pool, account string, step int64) error {
	tag, err := db.Exec(ctx, `UPDATE totp_factors SET last_step = $2
		WHERE account_id = $1 AND last_step < $2`, account, step)
	if err != nil {
		return fmt.Errorf("recording TOTP use: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return ErrCodeRejected
	}
	return nil
}
