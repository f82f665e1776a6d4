-- sparekey schema, version 1. Times are Unix seconds (UTC); NULL means "none".
-- Ids are the public ids; recovery codes, ten per member, use compact keys to keep a member small.

CREATE TABLE projects (
    id            TEXT PRIMARY KEY,
    secret_digest BLOB NOT NULL,
    sealed_pepper BLOB NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,
    project_id         TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    sealed_private_key BLOB NOT NULL,
    jwk                TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    -- signs from then on (NULL: from created_at); published and verifying from created_at
    activates_at       INTEGER,
    -- replaced: verifies and stays published until then (NULL: not replaced)
    retires_at         INTEGER
) WITHOUT ROWID;
CREATE INDEX signing_keys_project ON signing_keys (project_id, created_at);

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- name case-folded by sparekey: SQLite's lower() folds ASCII only
    name_folded TEXT NOT NULL,
    slug        TEXT NOT NULL,
    external_id TEXT,
    settings    TEXT NOT NULL,
    -- kept out of settings: search reads settings with json_each, which parses the whole
    -- document and refuses one nested deeper than SQLite's JSON limit
    trusted_metadata TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX organizations_slug ON organizations (project_id, slug);
CREATE UNIQUE INDEX organizations_external_id ON organizations (project_id, external_id);
CREATE INDEX organizations_created ON organizations (project_id, created_at, id);

CREATE TABLE members (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email           TEXT NOT NULL,
    external_id     TEXT,
    status          TEXT NOT NULL,
    profile         TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    lock_created_at INTEGER,
    lock_expires_at INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX members_email ON members (organization_id, email);
CREATE UNIQUE INDEX members_external_id ON members (organization_id, external_id);

CREATE TABLE passwords (
    member_id  TEXT PRIMARY KEY REFERENCES members (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE totp_registrations (
    pk            INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    member_id     TEXT NOT NULL UNIQUE REFERENCES members (id) ON DELETE CASCADE,
    sealed_secret BLOB NOT NULL,
    sealed_codes  BLOB,
    -- the TOTP steps accepted so far (auth.TOTPRegistration): all up to last_step but those of
    -- the 64 below it whose bit is set in unspent_steps (a uint64 stored as its int64 bits)
    last_step     INTEGER NOT NULL DEFAULT 0,
    unspent_steps INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- One row per code: the HMAC is the key, so verifying a code is one primary-key probe.
CREATE TABLE recovery_codes (
    registration_pk INTEGER NOT NULL REFERENCES totp_registrations (pk) ON DELETE CASCADE,
    mac             BLOB NOT NULL,
    position        INTEGER NOT NULL,
    id              BLOB NOT NULL,
    used_at         INTEGER,
    PRIMARY KEY (registration_pk, mac)
) WITHOUT ROWID;

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    member_id        TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    token_digest     BLOB NOT NULL UNIQUE,
    started_at       INTEGER NOT NULL,
    last_accessed_at INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    factors          TEXT NOT NULL,
    custom_claims    TEXT NOT NULL
);
CREATE INDEX sessions_member ON sessions (member_id, started_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE intermediate_sessions (
    token_digest    BLOB PRIMARY KEY,
    project_id      TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    member_id       TEXT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    factors         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX intermediate_sessions_member ON intermediate_sessions (member_id);
CREATE INDEX intermediate_sessions_expires ON intermediate_sessions (expires_at);

-- The audit trail, written in the transaction of the action each event records. No foreign keys
-- and no cascades: events outlive the members and organizations they name. The primary key is
-- the listing order (a project's events by time, then id; ids are unique uuids that nothing
-- looks up alone), so an event costs one table insert and one index insert: a member's history.
CREATE TABLE events (
    project_id      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    id              TEXT NOT NULL,
    type            TEXT NOT NULL,
    organization_id TEXT,
    member_id       TEXT,
    request_id      TEXT NOT NULL,
    client_ip       TEXT NOT NULL,
    user_agent      TEXT NOT NULL,
    data            TEXT NOT NULL,
    PRIMARY KEY (project_id, created_at, id)
) WITHOUT ROWID;
CREATE INDEX events_member ON events (project_id, member_id, created_at);

-- Webhook endpoints. The signing secret is sealed under the master key, bound to project and
-- webhook id. event_types is a JSON array of event types; [] means every type.
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    event_types   TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhooks_project ON webhooks (project_id, created_at, id);

-- The webhook outbox: one row per event and matching webhook, written by the trigger below in
-- the transaction that writes the event. Delivery times (next_attempt_at, claimed_until,
-- last_attempt_at, finished_at) are Unix milliseconds: retries back off from 100 ms in tests.
-- No foreign key to webhooks: deleting a webhook deletes its rows itself, and an event written
-- while that happens must not fail its action; the dispatcher claims rows of existing webhooks
-- only. A row is leased by one dispatcher at a time (claim, claimed_until).
CREATE TABLE webhook_deliveries (
    webhook_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    project_id       TEXT NOT NULL,
    event_created_at INTEGER NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    claim            TEXT,
    claimed_until    INTEGER,
    last_attempt_at  INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    finished_at      INTEGER,
    PRIMARY KEY (webhook_id, event_id)
) WITHOUT ROWID;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE state <> 'pending';
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (webhook_id, event_created_at, event_id);

-- Every path that writes an event writes its deliveries in the same statement, current and
-- future paths alike; a project without webhooks costs one index probe per event.
CREATE TRIGGER events_webhook_outbox AFTER INSERT ON events
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event_id, project_id, event_created_at, next_attempt_at)
    SELECT w.id, NEW.id, NEW.project_id, NEW.created_at, NEW.created_at * 1000
    FROM webhooks w
    WHERE w.project_id = NEW.project_id
      AND (w.event_types = '[]' OR EXISTS (SELECT 1 FROM json_each(w.event_types) t WHERE t.value = NEW.type));
END;
