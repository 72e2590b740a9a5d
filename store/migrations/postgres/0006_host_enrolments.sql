-- Hosts enrolled by an operator (`directory host add`), one secret each.
--
-- A renewal of a lease is admitted only if the host presents the secret
-- whose sha256 is kept here and announces the url it was enrolled at (the
-- check runs in the renewal's own transaction). With no row at all,
-- registration stays open to loopback urls only. The secret itself is
-- never stored.

CREATE TABLE host_enrolments (
    id TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL
);
