//! Every path of the failover decision, with plain data and a fixed clock.

use super::*;

const NOW: Millis = 1_000_000;
const ID: &str = "0123456789abcdef0123456789abcdef";

fn host(id: &str, load: u32, live: bool) -> HostRecord {
    HostRecord {
        id: id.to_owned(),
        url: format!("http://{id}.test:80"),
        load,
        drain_requested: false,
        shutting_down: false,
        // A lease that ends exactly now is already expired.
        lease_expires_at: if live { NOW + 3_000 } else { NOW },
        registered_at: NOW - 60_000,
    }
}

/// A host whose process is shutting down (SIGTERM).
fn draining(mut host: HostRecord) -> HostRecord {
    host.shutting_down = true;
    host
}

/// A host an operator asked to drain.
fn operator_drained(mut host: HostRecord) -> HostRecord {
    host.drain_requested = true;
    host
}

fn session(owner: &str, epoch: u64) -> SessionRecord {
    SessionRecord {
        id: ID.to_owned(),
        owner: "ada".to_owned(),
        program: "/bin/bash".to_owned(),
        args: Vec::new(),
        cwd: "/home/ada".to_owned(),
        env: Vec::new(),
        cols: 80,
        rows: 24,
        title: None,
        foreground: None,
        state: SessionState::Running,
        owner_host: owner.to_owned(),
        epoch,
        created_at: NOW - 10_000,
        last_active: NOW - 1_000,
    }
}

fn report(host: &str, epoch: u64) -> UnreachableReport {
    UnreachableReport {
        host: host.to_owned(),
        epoch,
    }
}

fn target(id: &str) -> Target {
    Target {
        host: id.to_owned(),
        url: format!("http://{id}.test:80"),
    }
}

fn moves(expected_epoch: u64, lost: &str, to: &str) -> Decision {
    Decision::Move {
        expected_epoch,
        lost: lost.to_owned(),
        to: target(to),
    }
}

#[test]
fn a_live_owner_is_probed_then_retried_when_alive_or_silent() {
    let hosts = [host("h1", 5, true), host("h2", 0, true)];
    let record = session("h1", 3);
    let reported = report("h1", 3);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(
        plan.decide(&ProbeOutcome::NotProbed),
        Decision::Probe {
            host: "h1".to_owned(),
            url: "http://h1.test:80".to_owned()
        }
    );
    let retry = Decision::RetryOwner {
        owner: target("h1"),
        epoch: 3,
    };
    assert_eq!(plan.decide(&ProbeOutcome::Alive), retry);
    // A timeout may be a partition or a stopped process: wait for the lease.
    assert_eq!(plan.decide(&ProbeOutcome::Inconclusive), retry);
}

#[test]
fn an_expired_lease_moves_without_probing() {
    let hosts = [host("h1", 0, false), host("h2", 4, true)];
    let record = session("h1", 3);
    let reported = report("h1", 3);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(plan.decide(&ProbeOutcome::NotProbed), moves(3, "h1", "h2"));
}

#[test]
fn an_owner_that_never_registered_counts_as_expired() {
    let hosts = [host("h2", 4, true)];
    let record = session("h-gone", 1);
    let reported = report("h-gone", 1);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(
        plan.decide(&ProbeOutcome::NotProbed),
        moves(1, "h-gone", "h2")
    );
}

#[test]
fn an_owner_proven_dead_moves_at_once_despite_its_lease() {
    let hosts = [host("h1", 0, true), host("h2", 4, true)];
    let record = session("h1", 3);
    let reported = report("h1", 3);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(plan.decide(&ProbeOutcome::Refused), moves(3, "h1", "h2"));
    assert_eq!(
        plan.decide(&ProbeOutcome::OtherHost("h7".to_owned())),
        moves(3, "h1", "h2")
    );
}

#[test]
fn a_session_that_already_moved_answers_its_current_owner() {
    let hosts = [
        host("h1", 0, false),
        host("h2", 4, true),
        host("h3", 0, true),
    ];
    // Moved to h2 at epoch 4 while the client still knew h1 at epoch 3.
    let record = session("h2", 4);
    let reported = report("h1", 3);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    let current = Decision::Current {
        owner: target("h2"),
        epoch: 4,
    };
    assert_eq!(plan.decide(&ProbeOutcome::NotProbed), current);
    // A higher epoch alone, on the same host (a restore in place), counts too.
    let record = session("h2", 5);
    let reported = report("h2", 4);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(
        plan.decide(&ProbeOutcome::NotProbed),
        Decision::Current {
            owner: target("h2"),
            epoch: 5
        }
    );
}

#[test]
fn a_session_that_moved_to_a_host_now_expired_moves_again() {
    let hosts = [
        host("h1", 0, false),
        host("h2", 0, false),
        host("h3", 9, true),
    ];
    let record = session("h2", 4);
    let reported = report("h1", 3);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(plan.decide(&ProbeOutcome::NotProbed), moves(4, "h2", "h3"));
}

#[test]
fn draining_hosts_are_never_chosen() {
    let hosts = [
        host("h1", 0, false),
        draining(host("h2", 0, true)),
        operator_drained(host("h3", 1, true)),
        host("h4", 50, true),
    ];
    let record = session("h1", 3);
    let reported = report("h1", 3);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(plan.decide(&ProbeOutcome::NotProbed), moves(3, "h1", "h4"));
    assert_eq!(least_loaded(&hosts, NOW, None).map(|h| &*h.id), Some("h4"));
}

#[test]
fn a_draining_owner_gives_up_its_sessions() {
    // A draining host persists each session, hangs it up and sends its
    // client to the directory (promise 3); the session must then move, or
    // the client would be sent back to a host that refuses it.
    for owner in [
        draining(host("h1", 0, true)),
        operator_drained(host("h1", 0, true)),
    ] {
        let hosts = [owner, host("h2", 0, true)];
        let record = session("h1", 3);
        let plan = FailoverPlan::new(&record, &hosts, NOW);
        assert_eq!(plan.decide(&ProbeOutcome::NotProbed), moves(3, "h1", "h2"));
        let reported = report("h1", 3);
        let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
        assert_eq!(plan.decide(&ProbeOutcome::NotProbed), moves(3, "h1", "h2"));
    }
}

#[test]
fn no_healthy_host_is_an_error_not_a_move_back_to_the_lost_owner() {
    let hosts = [
        host("h1", 0, true),
        host("h2", 0, false),
        draining(host("h3", 0, true)),
    ];
    let record = session("h1", 3);
    let reported = report("h1", 3);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(plan.decide(&ProbeOutcome::Refused), Decision::NoHealthyHost);
    assert_eq!(least_loaded(&[], NOW, None), None);
}

#[test]
fn the_least_loaded_host_is_chosen_and_ties_go_to_the_smallest_id() {
    let hosts = [
        host("h1", 0, false),
        host("h4", 2, true),
        host("h3", 1, true),
        host("h2", 1, true),
        host("h5", 7, true),
    ];
    let record = session("h1", 0);
    let reported = report("h1", 0);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(plan.decide(&ProbeOutcome::NotProbed), moves(0, "h1", "h2"));
    assert_eq!(
        least_loaded(&hosts, NOW, Some("h2")).map(|h| &*h.id),
        Some("h3")
    );
}

#[test]
fn an_ended_session_is_never_restored() {
    let hosts = [host("h1", 0, false), host("h2", 0, true)];
    let mut record = session("h1", 3);
    record.state = SessionState::Ended;
    let reported = report("h1", 3);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(plan.decide(&ProbeOutcome::Refused), Decision::Ended);
    assert_eq!(
        FailoverPlan::new(&record, &hosts, NOW).decide(&ProbeOutcome::NotProbed),
        Decision::Ended
    );
}

#[test]
fn placement_answers_a_live_owner_without_probing_and_moves_an_expired_one() {
    let hosts = [host("h1", 9, true), host("h2", 0, true)];
    let record = session("h1", 2);
    assert_eq!(
        FailoverPlan::new(&record, &hosts, NOW).decide(&ProbeOutcome::NotProbed),
        Decision::Current {
            owner: target("h1"),
            epoch: 2
        }
    );
    let hosts = [host("h1", 0, false), host("h2", 0, true)];
    assert_eq!(
        FailoverPlan::new(&record, &hosts, NOW).decide(&ProbeOutcome::NotProbed),
        moves(2, "h1", "h2")
    );
}

#[test]
fn a_report_naming_a_future_epoch_is_judged_by_the_record() {
    // A confused or lying client cannot force a move of a live owner.
    let hosts = [host("h1", 0, true), host("h2", 0, true)];
    let record = session("h1", 3);
    let reported = report("h1", 99);
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_report(&reported);
    assert_eq!(
        plan.decide(&ProbeOutcome::Alive),
        Decision::RetryOwner {
            owner: target("h1"),
            epoch: 3
        }
    );
}

#[test]
fn only_refusal_and_another_host_prove_death() {
    assert!(ProbeOutcome::Refused.proves_dead());
    assert!(ProbeOutcome::OtherHost("h2".to_owned()).proves_dead());
    assert!(!ProbeOutcome::Alive.proves_dead());
    assert!(!ProbeOutcome::Inconclusive.proves_dead());
    assert!(!ProbeOutcome::NotProbed.proves_dead());
}

#[test]
fn a_client_attached_to_its_owner_keeps_the_session_though_the_lease_lapsed() {
    // The owner's lease lapsed (a busy store took its renewal late), but
    // the client renewing its ticket is attached to it right now.
    let hosts = [host("h1", 0, false), host("h2", 0, true)];
    let record = session("h1", 3);
    let attached = Attachment {
        host: "h1".into(),
        epoch: 3,
    };
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_attachment(&attached);
    assert_eq!(
        plan.decide(&ProbeOutcome::NotProbed),
        Decision::Current {
            owner: target("h1"),
            epoch: 3
        }
    );
    // A placement without that word moves it, as before.
    assert_eq!(
        FailoverPlan::new(&record, &hosts, NOW).decide(&ProbeOutcome::NotProbed),
        moves(3, "h1", "h2")
    );
}

#[test]
fn an_attachment_the_record_has_moved_past_is_a_placement() {
    let hosts = [
        host("h1", 0, false),
        host("h2", 0, true),
        host("h3", 5, true),
    ];
    // Already moved to h2 at epoch 4: the client's attachment at epoch 3
    // is to a fenced copy, and it is sent to the current owner.
    let record = session("h2", 4);
    let stale = Attachment {
        host: "h1".into(),
        epoch: 3,
    };
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_attachment(&stale);
    assert_eq!(
        plan.decide(&ProbeOutcome::NotProbed),
        Decision::Current {
            owner: target("h2"),
            epoch: 4
        }
    );
    // A claim of an epoch the record never reached, or of another host,
    // proves nothing either: the lapsed owner's session moves.
    let record = session("h1", 3);
    for claim in [
        Attachment {
            host: "h1".into(),
            epoch: 4,
        },
        Attachment {
            host: "h3".into(),
            epoch: 3,
        },
    ] {
        let plan = FailoverPlan::new(&record, &hosts, NOW).with_attachment(&claim);
        assert_eq!(plan.decide(&ProbeOutcome::NotProbed), moves(3, "h1", "h2"));
    }
}

#[test]
fn an_attachment_to_a_draining_or_unknown_owner_moves_the_session() {
    let record = session("h1", 3);
    let attached = Attachment {
        host: "h1".into(),
        epoch: 3,
    };
    for hosts in [
        vec![draining(host("h1", 0, true)), host("h2", 0, true)],
        vec![operator_drained(host("h1", 0, false)), host("h2", 0, true)],
        vec![host("h2", 0, true)],
    ] {
        let plan = FailoverPlan::new(&record, &hosts, NOW).with_attachment(&attached);
        assert_eq!(plan.decide(&ProbeOutcome::NotProbed), moves(3, "h1", "h2"));
    }
}

#[test]
fn an_attachment_never_revives_an_ended_session() {
    let hosts = [host("h1", 0, true)];
    let mut record = session("h1", 3);
    record.state = SessionState::Ended;
    let attached = Attachment {
        host: "h1".into(),
        epoch: 3,
    };
    let plan = FailoverPlan::new(&record, &hosts, NOW).with_attachment(&attached);
    assert_eq!(plan.decide(&ProbeOutcome::NotProbed), Decision::Ended);
}
