// Package notify queues security notifications in the outbox table, in
// the same transaction as the change they announce where possible, and
// delivers them through the configured SMTP relay. Messages carry no
// patient data and no secrets: only what happened and what to do.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	pcrypto "github.com/pleura-dev/pleura/portal/crypto"
)

// maxAttempts bounds deliveries of one message before it is left for an
// operator to look at.
const maxAttempts = 10

// Outbox queues and delivers notifications.
type Outbox struct {
	db    *pgxpool.Pool
	keys  *pcrypto.Keyring
	relay string
	from  string
	log   *slog.Logger

	sent, failed prometheus.Counter
}

// NewOutbox delivers through relay (host:port) from the address from. An
// empty relay leaves messages queued.
func NewOutbox(db *pgxpool.Pool, keys *pcrypto.Keyring, relay, from string,
	log *slog.Logger, reg prometheus.Registerer) *Outbox {
	o := &Outbox{db: db, keys: keys, relay: relay, from: from, log: log,
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pleura_portal_notifications_sent_total",
			Help: "Notifications handed to the SMTP relay.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pleura_portal_notification_failures_total",
			Help: "Failed attempts to hand a notification to the SMTP relay.",
		}),
	}
	reg.MustRegister(o.sent, o.failed)
	return o
}

// Enqueue stores a message for account. recipient is encrypted at rest.
func (o *Outbox) Enqueue(ctx context.Context, account, recipient, subject,
	body string) error {
	var id int64
	tx, err := o.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("queueing notification: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// The id is part of the recipient's associated data, so insert first.
	err = tx.QueryRow(ctx, `INSERT INTO outbox (account_id, recipient_ct, subject, body)
		VALUES ($1, '\x00', $2, $3) RETURNING id`, account, subject, body).Scan(&id)
	if err != nil {
		return fmt.Errorf("queueing notification: %w", err)
	}
	ct, err := o.keys.Encrypt(location(id), []byte(recipient))
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE outbox SET recipient_ct = $2 WHERE id = $1`,
		id, ct); err != nil {
		return fmt.Errorf("queueing notification: %w", err)
	}
	return tx.Commit(ctx)
}

// DeliverOnce sends every queued message and returns how many went out.
func (o *Outbox) DeliverOnce(ctx context.Context) (int, error) {
	if o.relay == "" {
		return 0, nil
	}
	rows, err := o.db.Query(ctx, `SELECT id, recipient_ct, subject, body FROM outbox
		WHERE sent_at IS NULL AND attempts < $1 ORDER BY id LIMIT 100`, maxAttempts)
	if err != nil {
		return 0, fmt.Errorf("reading outbox: %w", err)
	}
	type msg struct {
		id            int64
		ct            []byte
		subject, body string
	}
	var msgs []msg
	for rows.Next() {
		var m msg
		if err := rows.Scan(&m.id, &m.ct, &m.subject, &m.body); err != nil {
			return 0, fmt.Errorf("reading outbox: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reading outbox: %w", err)
	}
	sent := 0
	for _, m := range msgs {
		to, err := o.keys.Decrypt(ctx, location(m.id), m.ct)
		if err == nil {
			err = smtp.SendMail(o.relay, nil, o.from, []string{string(to)},
				o.render(string(to), m.subject, m.body))
		}
		if err != nil {
			o.failed.Inc()
			o.log.Error("Delivering notification failed", "outboxID", m.id, "err", err)
			_, _ = o.db.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1 WHERE id = $1`,
				m.id)
			continue
		}
		if _, err := o.db.Exec(ctx, `UPDATE outbox SET sent_at = now(),
			attempts = attempts + 1 WHERE id = $1`, m.id); err != nil {
			return sent, fmt.Errorf("marking notification sent: %w", err)
		}
		o.sent.Inc()
		sent++
	}
	return sent, nil
}

// Run delivers every interval until ctx ends.
func (o *Outbox) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := o.DeliverOnce(ctx); err != nil {
			o.log.Error("Delivering notifications failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *Outbox) render(to, subject, body string) []byte {
	strip := strings.NewReplacer("\r", "", "\n", "")
	var b strings.Builder
	b.WriteString("From: " + strip.Replace(o.from) + "\r\n")
	b.WriteString("To: " + strip.Replace(to) + "\r\n")
	b.WriteString("Subject: " + strip.Replace(subject) + "\r\n")
	b.WriteString("Date: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	return []byte(b.String())
}

func location(id int64) pcrypto.Location {
	return pcrypto.Location{Table: "outbox", Row: strconv.FormatInt(id, 10),
		Column: "recipient"}
}
