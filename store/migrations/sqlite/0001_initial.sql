-- The first schema of the shared user-data backend (SQLite flavour).
-- Integers are 64-bit; timestamps are milliseconds since the Unix epoch
-- read from the backend's clock; args and env are JSON text.

CREATE TABLE users (
    id   TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    owner       TEXT NOT NULL,
    program     TEXT NOT NULL,
    args        TEXT NOT NULL,
    cwd         TEXT NOT NULL,
    env         TEXT NOT NULL,
    cols        INTEGER NOT NULL,
    "rows"      INTEGER NOT NULL,
    title       TEXT,
    foreground  TEXT,
    state       TEXT NOT NULL CHECK (state IN ('running', 'ended')),
    owner_host  TEXT NOT NULL,
    epoch       INTEGER NOT NULL CHECK (epoch >= 0),
    created_at  INTEGER NOT NULL,
    last_active INTEGER NOT NULL
);

CREATE INDEX sessions_by_owner ON sessions (owner, created_at DESC);

CREATE TABLE screens (
    session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    screen     BLOB NOT NULL,
    saved_at   INTEGER NOT NULL,
    saved_by   TEXT NOT NULL
);

CREATE TABLE scrollback_blocks (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    lines      INTEGER NOT NULL CHECK (lines >= 0),
    data       BLOB NOT NULL,
    PRIMARY KEY (session_id, seq)
);
