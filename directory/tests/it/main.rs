//! The directory's integration tests: `app()` served on real loopback
//! listeners over a real store, SQLite always and PostgreSQL (a fresh
//! schema per test) whenever `DATABASE_URL` is set. Each test in `api`
//! (hosts, placement, failover, the page), `signin` (accounts, cookies,
//! limits and device cookies, origins, the trusted proxy), `owners` (ownership, tickets,
//! hot desking, the cap, ending sessions), `shares` (share links and
//! their viewers) and `recordings` (session recordings, their policy and
//! retention) is written once over a
//! [`harness::Db`] and generated per backend here.

// Test helpers outside `#[test]` fns unwrap too: a failure is the test's
// answer.
#![allow(clippy::unwrap_used)]

mod api;
mod cli;
mod harness;
mod owners;
mod recordings;
mod shares;
mod signin;
mod tls;

macro_rules! on_backends {
    ($($module:ident::$test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let db = crate::harness::Db::sqlite().await;
                    crate::$module::$test(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some(db) = crate::harness::Db::postgres().await else { return };
                    crate::$module::$test(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

on_backends![
    api::the_host_list_shows_leases_loads_and_expiry,
    api::no_host_registers_through_the_directory,
    api::a_new_session_goes_to_the_least_loaded_host,
    api::drained_hosts_get_no_new_sessions,
    api::no_healthy_host_is_a_503_with_advice,
    api::a_live_owner_is_retried_not_replaced,
    api::a_silent_owner_is_waited_for_until_its_lease_expires,
    api::an_owner_proven_dead_is_replaced_at_once,
    api::another_host_answering_proves_the_owner_gone,
    api::placement_moves_a_session_whose_owner_expired,
    api::a_renewal_keeps_the_session_on_the_host_it_is_attached_to,
    api::concurrent_reports_on_two_replicas_agree,
    api::unknown_and_ended_sessions_are_refused,
    api::sessions_are_listed,
    api::settings_are_each_users_own_and_checked,
    api::config_health_and_openapi,
    api::the_page_and_its_assets_go_compressed_and_cached,
    api::malformed_requests_get_the_refusals_the_document_lists,
    api::the_page_is_served_with_a_policy_naming_live_hosts,
    api::draining_needs_the_operators_token,
    signin::signing_in_sets_a_strict_cookie,
    signin::wrong_passwords_and_unknown_users_answer_alike,
    signin::too_many_attempts_are_refused_before_hashing,
    signin::a_stranger_cannot_lock_the_owners_browser_out,
    signin::a_forged_or_foreign_device_cookie_is_no_exemption,
    signin::disabled_users_are_refused_and_signed_out,
    signin::signing_out_ends_the_login,
    signin::foreign_and_null_origins_are_refused,
    signin::a_trusted_proxy_names_the_user_and_no_one_else_can,
    owners::other_users_sessions_look_unknown,
    owners::tickets_are_signed_for_the_user_session_host_and_epoch,
    owners::hot_desking_picks_the_most_recently_active_running_session,
    owners::the_session_cap_refuses_new_sessions,
    owners::ending_a_session_fences_it_and_tells_its_host,
    owners::the_sessions_page_lists_only_ones_own_escaped,
    shares::only_the_owner_shares_a_running_session,
    shares::a_redeemed_link_opens_exactly_its_session_to_a_viewer,
    shares::revoked_expired_and_ended_links_open_nothing,
    shares::a_link_opened_signed_out_survives_signing_in,
    recordings::recordings_are_their_owners_alone,
    recordings::recordings_are_listed_with_their_markers,
    recordings::frames_replay_the_recording,
    recordings::exports_are_casts_and_text,
    recordings::deleting_a_recording_removes_every_block,
    recordings::the_choice_to_be_recorded_is_the_users_where_the_policy_allows,
    recordings::tickets_tell_hosts_to_record_as_the_policy_says,
    recordings::recordings_past_the_retention_are_deleted,
    recordings::the_player_is_served_as_the_page_is,
];
