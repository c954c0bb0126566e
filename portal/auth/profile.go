package auth

import (
	"context"
	"fmt"
	"regexp"

	"github.com/pleura-dev/pleura/portal/audit"
	pcrypto "github.com/pleura-dev/pleura/portal/crypto"
)

var phonePattern = regexp.MustCompile(`^\+?[0-9 ()-]{7,20}$`)

// Profile is what a user sees and edits of their own account.
type Profile struct {
	DisplayName string
	Email       string
	Phone       string
	NotifyEmail bool
}

// Profile decrypts account's profile.
func (s *Service) Profile(ctx context.Context, account string) (*Profile, error) {
	var p Profile
	var emailCT, phoneCT []byte
	err := s.DB.QueryRow(ctx, `SELECT display_name, email_ct, phone_ct, notify_email
		FROM accounts WHERE id = $1`, account).Scan(&p.DisplayName, &emailCT, &phoneCT,
		&p.NotifyEmail)
	if err != nil {
		return nil, fmt.Errorf("reading profile: %w", err)
	}
	for col, ct := range map[string][]byte{"email": emailCT, "phone": phoneCT} {
		if ct == nil {
			continue
		}
		pt, err := s.Keys.Decrypt(ctx, pcrypto.Location{Table: "accounts", Row: account,
			Column: col}, ct)
		if err != nil {
			return nil, err
		}
		if col == "email" {
			p.Email = string(pt)
		} else {
			p.Phone = string(pt)
		}
	}
	return &p, nil
}

// UpdateContact changes account's phone and notification setting. The
// caller must have checked step-up. The user is notified at the old
// address.
func (s *Service) UpdateContact(ctx context.Context, source, account, phone string,
	notifyEmail bool) error {
	if phone != "" && !phonePattern.MatchString(phone) {
		return &InputError{"phone", "enter digits, spaces, +, ( ) or -, 7 to 20 characters"}
	}
	var ct []byte
	if phone != "" {
		var err error
		ct, err = s.Keys.Encrypt(pcrypto.Location{Table: "accounts", Row: account,
			Column: "phone"}, []byte(phone))
		if err != nil {
			return err
		}
	}
	if _, err := s.DB.Exec(ctx, `UPDATE accounts SET phone_ct = $2, notify_email = $3
		WHERE id = $1`, account, ct, notifyEmail); err != nil {
		return fmt.Errorf("updating contact details: %w", err)
	}
	if err := s.Audit.Record(ctx, audit.Event{Actor: account, Action: audit.ProfileChange,
		Outcome: audit.Success, Subject: account, Source: source,
		Reason: "contactDetails"}); err != nil {
		return err
	}
	return s.notify(ctx, account, "Your contact details changed",
		"The phone number or notification settings of your patient portal account changed.")
}
