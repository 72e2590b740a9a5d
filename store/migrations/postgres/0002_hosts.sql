-- The host registry (PostgreSQL flavour): one row per session host, with
-- its lease. Timestamps are milliseconds since the Unix epoch read from the
-- backend's clock; a lease is live while lease_expires_at > now.

CREATE TABLE hosts (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    load             BIGINT NOT NULL CHECK (load >= 0),
    draining         BOOLEAN NOT NULL DEFAULT FALSE,
    lease_expires_at BIGINT NOT NULL,
    registered_at    BIGINT NOT NULL
);
