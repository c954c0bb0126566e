-- Data keys, wrapped by the tenant's Vault transit key.
CREATE TABLE data_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    purpose      text NOT NULL CHECK (purpose IN ('field', 'index')),
    wrapped      text NOT NULL,
    key_version  integer NOT NULL,
    active       boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    rewrapped_at timestamptz
);
CREATE UNIQUE INDEX data_keys_one_active ON data_keys (purpose) WHERE active;

-- Accounts: staff, patients and proxies, each an individual identity.
-- High-risk identifiers are encrypted; *_bidx is a keyed blind index.
CREATE TABLE accounts (
    id             text PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('staff', 'patient', 'proxy')),
    roles          text[] NOT NULL,
    display_name   text NOT NULL DEFAULT '',
    email_ct       bytea,
    email_bidx     bytea UNIQUE,
    phone_ct       bytea,
    mrn_ct         bytea,
    mrn_bidx       bytea UNIQUE,
    dob_ct         bytea,
    password_hash  text,
    notify_email   boolean NOT NULL DEFAULT true,
    disabled_at    timestamptz,
    invited_by     text REFERENCES accounts (id),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Single-use enrolment codes (hash only), for invited patients, staff and
-- the first admin.
CREATE TABLE enrolment_codes (
    code_hash   bytea PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE totp_factors (
    account_id  text PRIMARY KEY REFERENCES accounts (id),
    secret_ct   bytea NOT NULL,
    confirmed   boolean NOT NULL DEFAULT false,
    -- last_step is the last accepted time step; a code for it or an
    -- earlier step is a replay.
    last_step   bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webauthn_credentials (
    id             bytea PRIMARY KEY,
    account_id     text NOT NULL REFERENCES accounts (id),
    credential     jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recovery_codes (
    code_hash   bytea PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id),
    used_at     timestamptz
);
CREATE INDEX recovery_codes_account ON recovery_codes (account_id);

-- Sessions: the token is never stored, only its SHA-256.
CREATE TABLE sessions (
    id_hash      bytea PRIMARY KEY,
    public_id    text NOT NULL UNIQUE,
    account_id   text NOT NULL REFERENCES accounts (id),
    device_hash  bytea NOT NULL,
    user_agent   text NOT NULL DEFAULT '',
    -- state: 'password' waits for a second factor; 'full' is signed in.
    state        text NOT NULL CHECK (state IN ('password', 'full')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    stepup_at    timestamptz,
    ended_at     timestamptz,
    end_reason   text
);
CREATE INDEX sessions_account ON sessions (account_id) WHERE ended_at IS NULL;

-- Rate-limit counters shared by every replica: fixed windows per key.
CREATE TABLE rate_limits (
    key          bytea PRIMARY KEY,
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL
);

-- Notifications waiting for the SMTP relay. The recipient is encrypted.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    text NOT NULL REFERENCES accounts (id),
    recipient_ct  bytea NOT NULL,
    subject       text NOT NULL,
    body          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    sent_at       timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Append-only audit events. The portal's role may only INSERT and SELECT.
CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    outcome    text NOT NULL,
    subject    text NOT NULL DEFAULT '',
    source     text NOT NULL DEFAULT '',
    reason     text NOT NULL DEFAULT '',
    trace_id   text NOT NULL DEFAULT ''
);

CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END $$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE OR TRUNCATE
    ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- The portal connects as the database owner; take UPDATE, DELETE and
-- TRUNCATE away from that role (and everyone) so only INSERT and SELECT are
-- left. The trigger above still stops a superuser by accident.
REVOKE ALL ON audit_events FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_events FROM CURRENT_USER;
