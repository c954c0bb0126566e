-- The WebAuthn ceremony in progress for a session (challenge and options),
-- taken and cleared by the finishing request.
ALTER TABLE sessions ADD COLUMN webauthn_ceremony jsonb;
ALTER TABLE webauthn_credentials ADD COLUMN last_used_at timestamptz;
