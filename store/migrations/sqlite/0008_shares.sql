-- Share links (SQLite flavour): an owner lets another signed-in user
-- watch one running session, until the link expires (by the backend's
-- clock) or the owner revokes it. `token_hash` is the hex sha256 of the
-- link's secret token, never the token itself; `id` is public (hosts
-- recheck shares by it). A revoked share stays, so the owner's list shows
-- it; shares go with their session.

CREATE TABLE shares (
    id         TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    owner      TEXT NOT NULL,
    may_type   INTEGER NOT NULL CHECK (may_type IN (0, 1)),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
);

CREATE INDEX shares_by_owner ON shares (owner, created_at DESC);
