-- Sign-in (PostgreSQL flavour): accounts with a password, and the logins
-- (browser sign-ins) made with them. Kept apart from `users`, which hosts
-- upsert for the owners of sessions and which holds no credentials.
-- Timestamps are milliseconds since the Unix epoch read from the backend's
-- clock; a login is live while expires_at > now and its account is enabled.
-- Names sort and compare bytewise (COLLATE "C") whatever the database's
-- locale, as in SQLite and the in-memory store.

CREATE TABLE accounts (
    name          TEXT COLLATE "C" PRIMARY KEY,
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

-- `id` is the hex sha256 of the cookie secret, never the secret itself.
CREATE TABLE logins (
    id         TEXT PRIMARY KEY,
    user_name  TEXT COLLATE "C" NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX logins_by_user ON logins (user_name);
