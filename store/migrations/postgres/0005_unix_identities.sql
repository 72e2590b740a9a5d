-- Unix identities (PostgreSQL flavour): the one uid and gid each user's
-- sessions run as, on every host, so files keep their owner when a session
-- moves to another host. Allocated once, from the hosts' --uid-range, by
-- whichever host first starts a session for the user, and never changed
-- after that except by an operator (`directory user map`), who may instead
-- map the user to an existing system user (mapped = TRUE).
--
-- Keyed by the user name as tickets and sessions.owner carry it, not by
-- the accounts table: a host may receive a ticket for a user with no
-- password account (behind a trusted proxy, or in tests). uid and gid are
-- BIGINT like every integer here, checked to be a usable u32: never 0
-- (root) and never 4294967295, which is (uid_t) -1, "leave unchanged", to
-- setresuid(2). Names sort bytewise (COLLATE "C"), as in SQLite and the
-- in-memory store. created_at is when the current uid was given, in
-- milliseconds since the Unix epoch by the backend's clock.

CREATE TABLE unix_identities (
    name       TEXT COLLATE "C" PRIMARY KEY,
    uid        BIGINT NOT NULL UNIQUE CHECK (uid > 0 AND uid < 4294967295),
    gid        BIGINT NOT NULL CHECK (gid > 0 AND gid < 4294967295),
    mapped     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
