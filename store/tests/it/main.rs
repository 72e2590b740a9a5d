//! The store's conformance suite: every behaviour the host and directory
//! rely on is written once in `suite` as an async fn over `Arc<dyn Store>`
//! and run against SQLite (a temporary file), PostgreSQL (a fresh schema
//! per test, whenever `DATABASE_URL` is set) and the in-memory store.
//! Backend-specific matters (files, schemas, unreachable servers) live in
//! `sqlite` and `postgres`.

// Test helpers outside `#[test]` fns unwrap too: a failure is the test's
// answer.
#![allow(clippy::unwrap_used)]

mod fixture;
mod identities;
mod names;
mod postgres;
mod sqlite;
mod suite;
mod tls;

/// Generates one test per backend for each suite function. `one` takes a
/// store; `two` takes two separately opened stores over the same database
/// (two pools, as two processes would have).
macro_rules! conformance {
    (one: [$($one:ident),* $(,)?], two: [$($two:ident),* $(,)?] $(,)?) => {
        conformance!(@backend on_sqlite, crate::fixture::SqliteDb, [$($one),*], [$($two),*]);
        conformance!(@backend on_postgres, crate::fixture::PgDb, [$($one),*], [$($two),*]);
        conformance!(@backend on_memory, crate::fixture::MemoryDb, [$($one),*], [$($two),*]);
    };
    (@backend $module:ident, $db:ty, [$($one:ident),*], [$($two:ident),*]) => {
        mod $module {
            use crate::fixture::Fixture as _;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $one() {
                    let Some(db) = <$db>::create().await else { return };
                    crate::suite::$one(db.open().await).await;
                    db.finish().await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $two() {
                    let Some(db) = <$db>::create().await else { return };
                    crate::suite::$two(db.open().await, db.open().await).await;
                    db.finish().await;
                }
            )*
        }
    };
}

conformance! {
    one: [
        fresh_database_is_empty,
        users_round_trip,
        sessions_round_trip,
        list_is_newest_first_and_filters_by_owner,
        duplicate_create_is_refused,
        update_is_fenced_by_epoch,
        update_of_missing_session_is_not_found,
        save_and_load_screen_appends_blocks,
        reappending_a_block_is_a_no_op,
        trimming_keeps_at_least_keep_lines,
        fenced_save_writes_nothing,
        save_to_missing_session_is_not_found,
        take_over_moves_the_session,
        clock_is_monotone_and_close_to_system_time,
        no_hosts_in_a_fresh_database,
        renewing_a_lease_registers_then_extends_it,
        a_lease_expires_by_the_backend_clock,
        an_absurd_ttl_is_capped_not_overflowed,
        an_operators_drain_outlives_renewals_and_restarts,
        a_shutdown_drain_ends_with_the_next_renewal,
        draining_an_unknown_host_is_not_found,
        hosts_are_listed_by_id,
        only_enrolled_hosts_hold_leases_with_their_own_secret,
        accounts_round_trip,
        changing_an_unknown_account_is_not_found,
        a_login_is_live_until_it_expires,
        an_absurd_login_ttl_is_capped_not_overflowed,
        ending_a_login_is_idempotent,
        a_new_password_ends_the_users_logins,
        disabling_ends_the_users_logins,
        live_logins_answers_as_get_login_does,
        claiming_a_session_keeps_the_owners_cap,
        ending_a_session_fences_its_host,
        unix_identities_are_given_once_lowest_first,
        an_identity_outlives_a_change_of_range,
        an_exhausted_range_is_an_error,
        mapping_refuses_root_and_taken_uids,
        identity_names_and_ranges_are_checked,
        a_share_is_found_by_its_tokens_hash,
        only_the_owner_shares_a_running_session,
        shares_are_listed_newest_first_by_owner,
        only_the_owner_revokes_a_share,
        live_shares_leaves_out_revoked_expired_and_ended,
        recordings_round_trip_and_list_newest_first,
        recording_blocks_come_in_seq_order_page_by_page,
        a_recording_counts_each_block_once,
        a_fenced_write_records_nothing,
        blocks_without_a_recording_are_dropped,
        only_the_owner_deletes_a_recording,
        retention_deletes_recordings_last_written_before_the_cutoff,
    ],
    two: [
        two_instances_see_each_others_writes,
        settings_follow_the_account,
        concurrent_take_overs_have_one_winner,
        concurrent_claims_never_pass_the_cap,
        concurrent_writers_only_current_epoch_succeeds,
        concurrent_renewals_of_one_host_all_succeed,
        logins_are_shared_between_instances,
        unix_identities_are_shared_between_instances,
        concurrent_allocations_give_distinct_uids,
        concurrent_allocations_of_one_name_agree,
        recording_opt_in_follows_the_account,
    ],
}
