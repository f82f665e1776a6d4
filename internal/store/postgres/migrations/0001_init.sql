-- sparekey schema, version 1, for PostgreSQL: the tables, keys, cascades, unique constraints and
-- indexes of the SQLite schema (internal/store/sqlite/migrations/0001_init.sql), in native types.
--
-- Times are timestamptz holding whole UTC seconds (the store truncates, as SQLite keeps Unix
-- seconds); NULL means "none". Ids are COLLATE "C" so they compare and sort by bytes, as in SQLite:
-- search pages by (created_at, id), and a locale collation would page differently.
-- The constraint names are part of the store's contract: it maps a violation to a domain error by
-- constraint name (internal/store/postgres/errors.go), never by message text.

CREATE TABLE projects (
    id            text COLLATE "C" PRIMARY KEY,
    secret_digest bytea NOT NULL,
    sealed_pepper bytea NOT NULL,
    created_at    timestamptz NOT NULL
);

CREATE TABLE signing_keys (
    kid                text COLLATE "C" PRIMARY KEY,
    project_id         text COLLATE "C" NOT NULL
                       CONSTRAINT signing_keys_project_fk REFERENCES projects (id) ON DELETE CASCADE,
    sealed_private_key bytea NOT NULL,
    jwk                jsonb NOT NULL,
    created_at         timestamptz NOT NULL,
    -- signs from then on (NULL: from created_at); published and verifying from created_at
    activates_at       timestamptz,
    -- replaced: verifies and stays published until then (NULL: not replaced)
    retires_at         timestamptz
);
CREATE INDEX signing_keys_project ON signing_keys (project_id, created_at);

-- The slug constraint is declared before the external id one: PostgreSQL checks unique indexes in
-- creation order, so a row breaking both reports the slug first, as SQLite's store does.
CREATE TABLE organizations (
    id          text COLLATE "C" PRIMARY KEY,
    project_id  text COLLATE "C" NOT NULL
                CONSTRAINT organizations_project_fk REFERENCES projects (id) ON DELETE CASCADE,
    name        text NOT NULL,
    -- name case-folded by sparekey (Go's Unicode rules), so fuzzy search is the same on every
    -- backend and every database locale
    name_folded text NOT NULL,
    slug        text NOT NULL,
    external_id text,
    settings    jsonb NOT NULL,
    -- kept out of settings, as in SQLite, where search's json_each would parse it
    trusted_metadata jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT organizations_slug UNIQUE (project_id, slug),
    CONSTRAINT organizations_external_id UNIQUE (project_id, external_id)
);
CREATE INDEX organizations_created ON organizations (project_id, created_at, id);

-- Likewise email before external id.
CREATE TABLE members (
    id              text COLLATE "C" PRIMARY KEY,
    project_id      text COLLATE "C" NOT NULL,
    organization_id text COLLATE "C" NOT NULL
                    CONSTRAINT members_organization_fk REFERENCES organizations (id) ON DELETE CASCADE,
    failed_attempts integer NOT NULL DEFAULT 0,
    lock_created_at timestamptz,
    lock_expires_at timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    email           text NOT NULL,
    external_id     text,
    status          text NOT NULL,
    profile         jsonb NOT NULL,
    CONSTRAINT members_email UNIQUE (organization_id, email),
    CONSTRAINT members_external_id UNIQUE (organization_id, external_id)
);

CREATE TABLE passwords (
    member_id  text COLLATE "C" PRIMARY KEY
               CONSTRAINT passwords_member_fk REFERENCES members (id) ON DELETE CASCADE,
    id         text COLLATE "C" NOT NULL,
    sealed     bytea NOT NULL,
    created_at timestamptz NOT NULL
);

-- pk is a compact internal key: ten recovery codes per member refer to it.
CREATE TABLE totp_registrations (
    pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the TOTP steps accepted so far (auth.TOTPRegistration): all up to last_step but those of
    -- the 64 below it whose bit is set in unspent_steps (a uint64 stored as its int64 bits)
    last_step     bigint NOT NULL DEFAULT 0,
    unspent_steps bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    id            text COLLATE "C" NOT NULL CONSTRAINT totp_registrations_id UNIQUE,
    member_id     text COLLATE "C" NOT NULL CONSTRAINT totp_registrations_member UNIQUE
                  CONSTRAINT totp_registrations_member_fk REFERENCES members (id) ON DELETE CASCADE,
    sealed_secret bytea NOT NULL,
    sealed_codes  bytea
);

-- One row per code: the HMAC is the key, so verifying a code is one primary-key probe. Fixed-width
-- columns come first so the rows carry no alignment padding.
CREATE TABLE recovery_codes (
    registration_pk bigint NOT NULL
                    CONSTRAINT recovery_codes_registration_fk REFERENCES totp_registrations (pk) ON DELETE CASCADE,
    used_at         timestamptz,
    id              uuid NOT NULL,
    position        smallint NOT NULL,
    mac             bytea NOT NULL,
    PRIMARY KEY (registration_pk, mac)
);

CREATE TABLE sessions (
    id               text COLLATE "C" PRIMARY KEY,
    project_id       text COLLATE "C" NOT NULL,
    organization_id  text COLLATE "C" NOT NULL,
    member_id        text COLLATE "C" NOT NULL
                     CONSTRAINT sessions_member_fk REFERENCES members (id) ON DELETE CASCADE,
    started_at       timestamptz NOT NULL,
    last_accessed_at timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    token_digest     bytea NOT NULL CONSTRAINT sessions_token_digest UNIQUE,
    factors          jsonb NOT NULL,
    custom_claims    jsonb NOT NULL
);
CREATE INDEX sessions_member ON sessions (member_id, started_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE intermediate_sessions (
    token_digest    bytea PRIMARY KEY,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    project_id      text COLLATE "C" NOT NULL,
    organization_id text COLLATE "C" NOT NULL,
    member_id       text COLLATE "C" NOT NULL
                    CONSTRAINT intermediate_sessions_member_fk REFERENCES members (id) ON DELETE CASCADE,
    factors         jsonb NOT NULL
);
CREATE INDEX intermediate_sessions_member ON intermediate_sessions (member_id);
CREATE INDEX intermediate_sessions_expires ON intermediate_sessions (expires_at);

-- The audit trail, written in the transaction of the action each event records. No foreign keys
-- and no cascades: events outlive the members and organizations they name. The primary key is
-- the listing order (a project's events by time, then id; ids are unique uuids that nothing
-- looks up alone), so an event costs the heap row and two index entries: that key and a
-- member's history.
CREATE TABLE events (
    project_id      text COLLATE "C" NOT NULL,
    created_at      timestamptz NOT NULL,
    id              text COLLATE "C" NOT NULL,
    type            text COLLATE "C" NOT NULL,
    organization_id text COLLATE "C",
    member_id       text COLLATE "C",
    request_id      text NOT NULL,
    client_ip       text NOT NULL,
    user_agent      text NOT NULL,
    data            jsonb NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (project_id, created_at, id)
);
CREATE INDEX events_member ON events (project_id, member_id, created_at, id);

-- Webhook endpoints. The signing secret is sealed under the master key, bound to project and
-- webhook id. An empty event_types means every type.
CREATE TABLE webhooks (
    id            text COLLATE "C" PRIMARY KEY,
    project_id    text COLLATE "C" NOT NULL
                  CONSTRAINT webhooks_project_fk REFERENCES projects (id) ON DELETE CASCADE,
    url           text NOT NULL,
    event_types   text[] NOT NULL,
    sealed_secret bytea NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX webhooks_project ON webhooks (project_id, created_at, id);

-- The webhook outbox: one row per event and matching webhook, written by the trigger below in
-- the statement that writes the event. Delivery times (next_attempt_at, claimed_until,
-- last_attempt_at, finished_at) keep milliseconds: retries back off from 100 ms in tests.
-- No foreign key to webhooks: deleting a webhook deletes its rows itself, and an event written
-- while that happens must not fail its action on the key check; the dispatchers claim rows of
-- existing webhooks only. A row is leased by one replica at a time (claim, claimed_until), taken
-- with FOR UPDATE SKIP LOCKED.
CREATE TABLE webhook_deliveries (
    webhook_id       text COLLATE "C" NOT NULL,
    event_id         text COLLATE "C" NOT NULL,
    project_id       text COLLATE "C" NOT NULL,
    event_created_at timestamptz NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CONSTRAINT webhook_deliveries_state CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    claim            text,
    claimed_until    timestamptz,
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    finished_at      timestamptz,
    CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at) WHERE state <> 'pending';
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (webhook_id, event_created_at, event_id);

-- Every statement that writes events writes their deliveries too, whichever store method and
-- CTE it comes from: one INSERT … SELECT per statement over the events it inserted. A project
-- without webhooks costs one index probe per statement. search_path is fixed to the schema the
-- migration ran in, so the function finds its tables whatever the session's search_path.
CREATE FUNCTION webhook_outbox() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event_id, project_id, event_created_at, next_attempt_at)
    SELECT w.id, e.id, e.project_id, e.created_at, e.created_at
    FROM new_events e JOIN webhooks w ON w.project_id = e.project_id
    WHERE cardinality(w.event_types) = 0 OR e.type = ANY (w.event_types);
    RETURN NULL;
END
$$;
CREATE TRIGGER events_webhook_outbox AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_outbox();
