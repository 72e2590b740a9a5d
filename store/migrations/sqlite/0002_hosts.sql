-- The host registry (SQLite flavour): one row per session host, with its
-- lease. Timestamps are milliseconds since the Unix epoch read from the
-- backend's clock; a lease is live while lease_expires_at > now.

CREATE TABLE hosts (
    id               TEXT PRIMARY KEY NOT NULL,
    url              TEXT NOT NULL,
    load             INTEGER NOT NULL CHECK (load >= 0),
    draining         INTEGER NOT NULL DEFAULT 0 CHECK (draining IN (0, 1)),
    lease_expires_at INTEGER NOT NULL,
    registered_at    INTEGER NOT NULL
);
