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
    created_at         timestamptz NOT NULL
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
    last_step     bigint NOT NULL DEFAULT 0,
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
