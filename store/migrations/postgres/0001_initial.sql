-- The first schema of the shared user-data backend (PostgreSQL flavour).
-- Every integer is BIGINT so that both backends decode the same Rust types;
-- timestamps are milliseconds since the Unix epoch read from the backend's
-- clock; args and env are JSON text.

CREATE TABLE users (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    program     TEXT NOT NULL,
    args        TEXT NOT NULL,
    cwd         TEXT NOT NULL,
    env         TEXT NOT NULL,
    cols        BIGINT NOT NULL,
    "rows"      BIGINT NOT NULL,
    title       TEXT,
    foreground  TEXT,
    state       TEXT NOT NULL CHECK (state IN ('running', 'ended')),
    owner_host  TEXT NOT NULL,
    epoch       BIGINT NOT NULL CHECK (epoch >= 0),
    created_at  BIGINT NOT NULL,
    last_active BIGINT NOT NULL
);

CREATE INDEX sessions_by_owner ON sessions (owner, created_at DESC);

CREATE TABLE screens (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    screen     BYTEA NOT NULL,
    saved_at   BIGINT NOT NULL,
    saved_by   TEXT NOT NULL
);

CREATE TABLE scrollback_blocks (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL CHECK (seq >= 0),
    lines      BIGINT NOT NULL CHECK (lines >= 0),
    data       BYTEA NOT NULL,
    PRIMARY KEY (session_id, seq)
);
