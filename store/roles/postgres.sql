-- Least privilege for Thinline's PostgreSQL store.
--
-- Makes three group roles (NOLOGIN: give each server its own LOGIN role
-- IN ROLE one of them) and grants each, on each table, what the
-- statements its server runs need (store/src/sql.rs) and nothing more:
--
--   thinline_owner      owns the schema and its tables; runs the
--                       migrations (any `directory` command, given a
--                       --store that logs in as a member of this role,
--                       migrates a schema that is behind).
--   thinline_directory  accounts and sign-ins, placement and takeover,
--                       ending sessions, share links, drains, host
--                       enrolments, mapped Unix identities; reads and
--                       deletes recordings. No screens, no scrollback.
--   thinline_host       sessions, screens, scrollback, recordings (it
--                       makes them and appends to them) and its own lease;
--                       reads what checking a sign-in and its enrolment
--                       needs; allocates Unix identities. It cannot write
--                       an account or a sign-in, nor read a password hash.
--
-- Run it as a superuser (or a role with CREATEROLE that may own the
-- schema and its tables), with psql:
--
--   psql "$ADMIN_URL" -v schema=thinline -f store/roles/postgres.sql
--
-- Every variable is optional: schema (default public), owner, directory
-- and host (defaults thinline_owner, thinline_directory, thinline_host),
-- so that several deployments can share one cluster.
--
-- Run it again whenever you like, and you must: it is idempotent and
-- grants on the tables that exist. The first time, it makes the roles and
-- the schema; migrate (as the owner), then run it again for the tables.
-- After an upgrade whose migrations add a table or a column, run the new
-- version's script. It replaces the directory's and the host's privileges
-- on the store's tables with exactly those below (privileges granted to
-- these roles by hand are revoked).
--
-- Only the block of \ lines and the set_config line are psql's; the rest
-- is plain SQL, which the store's tests run as it is (tests/it/postgres.rs).
--
-- No default privileges are set, on purpose: least privilege here is per
-- column, which ALTER DEFAULT PRIVILEGES cannot say. A table that a later
-- migration adds is the owner's alone until this script grants it, and
-- the script refuses to run while the owner owns a table it does not know.
-- No table has a sequence (keys are text and numbers the store picks); a
-- migration that adds one must grant USAGE on it here.
--
-- What the roles do not stop (row-level limits are future work): a host
-- may write any session's row, screen and scrollback, and renew or
-- redirect any host's lease row, as the statements name rows by id. Every
-- write is fenced by the session's epoch, and renew_lease checks the
-- enrolment secret, but both are the store's code, not the database's:
-- a host whose credentials leak can read every screen and move any
-- session. Give hosts their own login roles so that one can be revoked.

\set ON_ERROR_STOP on
\if :{?schema}
\else
\set schema public
\endif
\if :{?owner}
\else
\set owner thinline_owner
\endif
\if :{?directory}
\else
\set directory thinline_directory
\endif
\if :{?host}
\else
\set host thinline_host
\endif

SELECT set_config('thinline_roles.schema', :'schema', false),
       set_config('thinline_roles.owner', :'owner', false),
       set_config('thinline_roles.directory', :'directory', false),
       set_config('thinline_roles.host', :'host', false);

DO $roles$
DECLARE
    target    text := current_setting('thinline_roles.schema');
    owner     text := current_setting('thinline_roles.owner');
    directory text := current_setting('thinline_roles.directory');
    host      text := current_setting('thinline_roles.host');
    role_name text;
    tbl       text;
    missing   text[] := '{}';
    g         record;
    grants    CONSTANT text[][] := ARRAY[
        -- grantee      table                privileges
        --
        -- Opening the store reads which migrations were applied.
        ['directory',  '_sqlx_migrations',  'SELECT (version, success, checksum)'],
        ['host',       '_sqlx_migrations',  'SELECT (version, success, checksum)'],

        -- Session owners as hosts record them (put_user, an upsert).
        ['host',       'users',             'SELECT, INSERT, UPDATE (name)'],

        -- create_session, get_session; update_session (what a session
        -- changes as it runs), save_screen (last_active) and take_over
        -- (epoch, owner_host: a host claims a session it restores). The
        -- owner, program, args and env of a session are never rewritten.
        ['host',       'sessions',          'SELECT, INSERT, UPDATE (cwd, cols, "rows", title, foreground, state, last_active, epoch, owner_host)'],
        -- list_sessions, get_session; end_session (state, epoch) and
        -- take_over (epoch, owner_host). Directories create no session.
        ['directory',  'sessions',          'SELECT, UPDATE (state, epoch, owner_host)'],

        -- save_screen's upsert, load_screen. Nobody deletes a screen: it
        -- goes with its session (ON DELETE CASCADE, run as the owner).
        ['host',       'screens',           'SELECT, INSERT, UPDATE (screen, saved_at, saved_by, epoch)'],
        -- save_screen appends blocks and trims the oldest; load_screen.
        ['host',       'scrollback_blocks', 'SELECT, INSERT, DELETE'],

        -- renew_lease: reads the previous expiry and returns the row;
        -- inserts or updates the host's url, load, shutting_down and
        -- expiry. Not `draining`: only an operator drains a host.
        ['host',       'hosts',             'SELECT, INSERT (id, url, load, shutting_down, lease_expires_at, registered_at), UPDATE (url, load, shutting_down, lease_expires_at)'],
        -- list_hosts, get_host; set_drain_requested (draining); enrolling
        -- or removing a host ends its lease (lease_expires_at).
        ['directory',  'hosts',             'SELECT, UPDATE (draining, lease_expires_at)'],

        -- renew_lease checks the host's own enrolment in its transaction,
        -- so a host reads the enrolled url and the sha256 of the secret
        -- (every host's: the statement names the row by id). The hash of
        -- a random 32-byte secret gives away nothing that can be used.
        ['host',       'host_enrolments',   'SELECT (id, url, secret_hash)'],
        -- enrol_host, remove_host_enrolment, list_host_enrolments: a
        -- directory writes secret hashes and never reads one back.
        ['directory',  'host_enrolments',   'SELECT (id, url, enrolled_at), INSERT (id, url, secret_hash, enrolled_at), UPDATE (url, secret_hash, enrolled_at), DELETE'],

        -- get_login and live_logins join the account for `disabled`; a
        -- host never sees a password hash.
        ['host',       'accounts',          'SELECT (name, disabled)'],
        -- create_account, get_account, list_accounts, set_password,
        -- set_disabled; create_login locks the row FOR SHARE, which needs
        -- UPDATE on a column; recording_opt_in, set_recording_opt_in
        -- (record_sessions). Nobody deletes an account.
        ['directory',  'accounts',          'SELECT, INSERT (name, password_hash, disabled, created_at), UPDATE (password_hash, disabled, record_sessions)'],

        -- get_login, live_logins: hosts recheck the sign-ins behind their
        -- sockets. Only directories make or end one.
        ['host',       'logins',            'SELECT'],
        ['directory',  'logins',            'SELECT, INSERT, DELETE'],

        -- unix_identity: the first host to serve a user gives it the
        -- lowest free uid, once (an insert that never updates).
        ['host',       'unix_identities',   'SELECT (name, uid, gid, mapped), INSERT (name, uid, gid, mapped, created_at)'],
        -- map_unix_identity's upsert, list_unix_identities.
        ['directory',  'unix_identities',   'SELECT, INSERT, UPDATE (uid, gid, mapped, created_at)'],

        -- get_settings, put_settings' upsert: the page's settings panel
        -- talks to directories only; hosts never read them.
        ['directory',  'settings',          'SELECT, INSERT, UPDATE (body, updated_at)'],

        -- live_shares: hosts recheck the share links behind their
        -- viewers' sockets (never the token's hash, nor who made it).
        ['host',       'shares',            'SELECT (id, session_id, expires_at, revoked)'],
        -- create_share, share_by_token, list_shares, revoke_share (only
        -- ever sets revoked). Shares go with their session.
        ['directory',  'shares',            'SELECT, INSERT (id, token_hash, session_id, owner, may_type, created_at, expires_at), UPDATE (revoked)'],

        -- create_recording (its counters start at their defaults),
        -- get_recording; save_screen locks the session's recording FOR
        -- UPDATE and counts the blocks it appends.
        ['host',       'recordings',        'SELECT, INSERT (session_id, owner, started_at, updated_at, cols, "rows", max_bytes), UPDATE (bytes, blocks, duration_ms, updated_at)'],
        -- list_recordings, get_recording; delete_recording and
        -- delete_recordings_before (the blocks go with their recording:
        -- ON DELETE CASCADE, run as the owner).
        ['directory',  'recordings',        'SELECT, DELETE'],
        -- save_screen appends blocks (never reads, rewrites or deletes
        -- one).
        ['host',       'recording_blocks',  'INSERT (session_id, seq, start_ms, end_ms, data)'],
        -- recording_blocks: playing a recording back.
        ['directory',  'recording_blocks',  'SELECT']
    ];
    known     text[];
BEGIN
    SELECT array_agg(DISTINCT grants[i][2]) INTO known
    FROM generate_subscripts(grants, 1) AS i;

    FOREACH role_name IN ARRAY ARRAY[owner, directory, host] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
        END IF;
    END LOOP;

    -- The schema: the owner's, or (say, `public`) one the owner may create
    -- in. Nobody else creates anything in it.
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = target) THEN
        EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', target, owner);
    ELSE
        EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', target, owner);
    END IF;
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', target);
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I, %I', target, directory, host);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I, %I', target, directory, host);

    -- The store's tables belong to the owner, also those an earlier
    -- deployment's single role created, so that its migrations may alter
    -- them and so that only it holds rights this script does not grant.
    FOR tbl IN
        SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = target AND c.relkind IN ('r', 'p') AND c.relname = ANY (known)
          AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = owner)
    LOOP
        EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', target, tbl, owner);
    END LOOP;

    FOR tbl IN
        SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = target AND c.relkind IN ('r', 'p') AND NOT c.relname = ANY (known)
          AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = owner)
    LOOP
        RAISE EXCEPTION 'table %.% has no grants in this script', target, tbl
            USING HINT = 'A migration newer than this script made it: run the roles script '
                         'of the same Thinline version as the migrations.';
    END LOOP;

    FOREACH tbl IN ARRAY known LOOP
        IF to_regclass(format('%I.%I', target, tbl)) IS NULL THEN
            missing := missing || tbl;
        ELSE
            EXECUTE format('REVOKE ALL ON TABLE %I.%I FROM %I, %I', target, tbl, directory, host);
        END IF;
    END LOOP;

    FOR g IN
        SELECT grants[i][1] AS grantee, grants[i][2] AS tbl, grants[i][3] AS privileges
        FROM generate_subscripts(grants, 1) AS i
    LOOP
        IF NOT g.tbl = ANY (missing) THEN
            EXECUTE format('GRANT %s ON TABLE %I.%I TO %I', g.privileges, target, g.tbl,
                           CASE g.grantee WHEN 'host' THEN host ELSE directory END);
        END IF;
    END LOOP;

    IF cardinality(missing) > 0 THEN
        RAISE NOTICE 'schema % has no table %: migrate it as a member of % and run this script again',
            target, array_to_string(missing, ', '), owner;
    END IF;
END
$roles$;
