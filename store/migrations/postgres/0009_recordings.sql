-- Session recordings (PostgreSQL flavour): at most one per session, named
-- by the session's id and made when the session starts (if its owner or
-- the deployment wants it recorded). A recording outlives its session's
-- row, so it has no foreign key to `sessions`: only its owner deleting it,
-- or the retention (by `updated_at`, the backend's time of its last
-- block), ends it. Its blocks go with it.
--
-- A block's `seq` is `epoch << 32 | n`, stored as a BIGINT like every
-- other u64 of the schema: values up to 2^63 - 1 keep their order, and
-- the store refuses larger ones rather than wrap them negative.
-- `start_ms` and `end_ms` count from the start of the recording.

CREATE TABLE recordings (
    session_id  TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    cols        BIGINT NOT NULL CHECK (cols >= 0),
    "rows"      BIGINT NOT NULL CHECK ("rows" >= 0),
    max_bytes   BIGINT NOT NULL CHECK (max_bytes >= 0),
    bytes       BIGINT NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    blocks      BIGINT NOT NULL DEFAULT 0 CHECK (blocks >= 0),
    duration_ms BIGINT NOT NULL DEFAULT 0 CHECK (duration_ms >= 0)
);

CREATE INDEX recordings_by_owner ON recordings (owner, started_at DESC);
CREATE INDEX recordings_by_update ON recordings (updated_at);

CREATE TABLE recording_blocks (
    session_id TEXT NOT NULL REFERENCES recordings (session_id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL CHECK (seq >= 0),
    start_ms   BIGINT NOT NULL CHECK (start_ms >= 0),
    end_ms     BIGINT NOT NULL CHECK (end_ms >= 0),
    data       BYTEA NOT NULL,
    PRIMARY KEY (session_id, seq)
);

-- The account's own choice to have its new sessions recorded, read where
-- the deployment's policy is "opt-in".
ALTER TABLE accounts ADD COLUMN record_sessions BOOLEAN NOT NULL DEFAULT FALSE;
