-- Drain is an intent with an owner (SQLite flavour).
--
-- `hosts.draining` is from now on only an operator's request (`directory
-- host drain`), kept across the host's restarts until the operator lifts
-- it. A host draining because its own process is shutting down (SIGTERM)
-- says so in `shutting_down`, which every renewal replaces, so a host
-- started again under the same id serves again.
--
-- Before this, a SIGTERM drain was stored in `draining` and never cleared:
-- every host stopped once stayed drained forever. Stored drains cannot be
-- told apart by who asked for them, so all are lifted here; an operator
-- who wants one drained asks again.
--
-- `screens.epoch` is the session epoch the screen was written at, so the
-- store itself shows that the last write came from the current owner.

ALTER TABLE hosts ADD COLUMN shutting_down INTEGER NOT NULL DEFAULT 0 CHECK (shutting_down IN (0, 1));
UPDATE hosts SET draining = 0;
ALTER TABLE screens ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
