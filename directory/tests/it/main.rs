//! The directory's integration tests: `app()` served on real loopback
//! listeners over a real store, SQLite always and PostgreSQL (a fresh
//! schema per test) whenever `DATABASE_URL` is set. Each test in `api` is
//! written once over a [`harness::Db`] and generated per backend here.

// Test helpers outside `#[test]` fns unwrap too: a failure is the test's
// answer.
#![allow(clippy::unwrap_used)]

mod api;
mod harness;

macro_rules! on_backends {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let db = crate::harness::Db::sqlite().await;
                    crate::api::$test(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some(db) = crate::harness::Db::postgres().await else { return };
                    crate::api::$test(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

on_backends![
    leases_register_renew_and_expire,
    lease_requests_are_validated_and_clamped,
    a_new_session_goes_to_the_least_loaded_host,
    drained_hosts_get_no_new_sessions,
    no_healthy_host_is_a_503_with_advice,
    a_live_owner_is_retried_not_replaced,
    a_silent_owner_is_waited_for_until_its_lease_expires,
    an_owner_proven_dead_is_replaced_at_once,
    another_host_answering_proves_the_owner_gone,
    placement_moves_a_session_whose_owner_expired,
    concurrent_reports_on_two_replicas_agree,
    unknown_and_ended_sessions_are_refused,
    sessions_are_listed,
    config_health_and_openapi,
    the_page_is_served_with_a_policy_naming_live_hosts,
    host_calls_need_the_host_token_when_one_is_set,
];
