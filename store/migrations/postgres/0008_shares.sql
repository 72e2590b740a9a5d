-- Share links (PostgreSQL flavour): an owner lets another signed-in user
-- watch one running session, until the link expires (by the backend's
-- clock) or the owner revokes it. `token_hash` is the hex sha256 of the
-- link's secret token, never the token itself; `id` is public (hosts
-- recheck shares by it). A revoked share stays, so the owner's list shows
-- it; shares go with their session.

CREATE TABLE shares (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    owner      TEXT NOT NULL,
    may_type   BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX shares_by_owner ON shares (owner, created_at DESC);
