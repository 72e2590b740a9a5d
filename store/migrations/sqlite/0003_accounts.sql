-- Sign-in (SQLite flavour): accounts with a password, and the logins
-- (browser sign-ins) made with them. Kept apart from `users`, which hosts
-- upsert for the owners of sessions and which holds no credentials.
-- Timestamps are milliseconds since the Unix epoch read from the backend's
-- clock; a login is live while expires_at > now and its account is enabled.

CREATE TABLE accounts (
    name          TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL
);

-- `id` is the hex sha256 of the cookie secret, never the secret itself.
CREATE TABLE logins (
    id         TEXT PRIMARY KEY NOT NULL,
    user_name  TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX logins_by_user ON logins (user_name);
