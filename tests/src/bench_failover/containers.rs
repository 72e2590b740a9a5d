//! `bench failover --containers`: the same rounds as the process figures,
//! on the containerised cluster (`crate::containers`) with hosts' default
//! lease (5 s): `podman kill` of the serving host's container, and the
//! serving host's container cut off the network, whose session may move
//! only once its lease has run out. After each round the container comes
//! back under its own name (killed: started again; cut off: put back, and
//! it ends its fenced copy) before the next.

use std::time::Duration;

use testkit::wait_until;

use anyhow::{Context, Result};

use super::{KILL_TARGET, Round, SIZE, STEP_TIMEOUT, failed, fault_figures, fault_round, ms};
use crate::Figure;
use crate::containers::{ClusterSpec, ContainerCluster, Node};
use crate::page::{NativePage, PageOptions};
use crate::tickets::{TEST_PASSWORD, TEST_USER};

const KILL_ROUNDS: usize = 10;
const CUT_ROUNDS: usize = 5;
/// A cut-off host's session may move only after its lease (the hosts'
/// default, 5 s) and the directory's probe: that is the target.
const CUT_TARGET: &str = "after the 5 s lease, p99 <= lease + 1 s";
const LEASE: Duration = Duration::from_secs(5);

pub async fn failover(progress: &dyn Fn(&str), figures: &mut Vec<Figure>) -> Result<()> {
    progress("failover --containers: PostgreSQL, 2 directories and 3 hosts in containers");
    let folder = tempfile::Builder::new()
        .prefix("thinline-bench-containers-")
        .tempdir()?;
    let spec = ClusterSpec::new(
        &format!("thinline-bench-{}", std::process::id()),
        &folder.path().join("state"),
    )
    .plain_bash();
    let cluster = ContainerCluster::up(spec).await?;
    let outcome = rounds(&cluster, progress, figures).await;
    if outcome.is_err() {
        eprintln!("{}", cluster.all_logs().await);
    }
    let removed = cluster.down().await;
    outcome?;
    removed
}

async fn rounds(
    cluster: &ContainerCluster,
    progress: &dyn Fn(&str),
    figures: &mut Vec<Figure>,
) -> Result<()> {
    cluster.add_user(TEST_USER, TEST_PASSWORD).await?;
    let directory = &cluster.directories[0];
    let cookie = cluster.sign_in(directory, TEST_USER, TEST_PASSWORD).await?;
    let page = NativePage::open(PageOptions::new(&directory.url(), &cookie, SIZE).new_session());
    page.wait_prompt(STEP_TIMEOUT).await?;
    let store = cluster.store.clone();

    let kills = fault_rounds(
        &page,
        store.as_ref(),
        progress,
        "podman kill",
        0..KILL_ROUNDS,
        |victim| async move { cluster.kill(&victim).await },
        |victim| async move {
            cluster.start(&victim).await?;
            cluster.wait_healthy(&victim).await.map(drop)
        },
        cluster,
    )
    .await;
    let kills = record(figures, "failover after podman kill", kills)?;
    figures.extend(fault_figures(
        "failover after podman kill of the serving host's container",
        &kills,
        KILL_TARGET,
        |p50, p99| p50 <= Duration::from_millis(300) && p99 <= Duration::from_secs(1),
    ));

    let cuts = fault_rounds(
        &page,
        store.as_ref(),
        progress,
        "network disconnect",
        KILL_ROUNDS..KILL_ROUNDS + CUT_ROUNDS,
        |victim| async move { cluster.disconnect(&victim).await },
        |victim| async move {
            cluster.reconnect(&victim).await?;
            wait_copy_ended(cluster, &victim).await
        },
        cluster,
    )
    .await;
    let cuts = record(figures, "failover after network disconnect", cuts)?;
    figures.extend(fault_figures(
        "failover after network disconnect of the serving host (lease 5 s)",
        &cuts,
        CUT_TARGET,
        |p50, p99| p50 >= LEASE && p99 <= LEASE + Duration::from_secs(1),
    ));
    Ok(())
}

/// Rounds `range` of `fault` done to the serving host's container, each
/// followed by `recover` of that container, outside the clock.
#[allow(clippy::too_many_arguments)]
async fn fault_rounds<F, FFut, R, RFut>(
    page: &NativePage,
    store: &dyn store::Store,
    progress: &dyn Fn(&str),
    what: &str,
    range: std::ops::Range<usize>,
    fault: F,
    recover: R,
    cluster: &ContainerCluster,
) -> Result<Vec<Round>>
where
    F: Fn(Node) -> FFut,
    FFut: std::future::Future<Output = Result<()>>,
    R: Fn(Node) -> RFut,
    RFut: std::future::Future<Output = Result<()>>,
{
    let mut rounds = Vec::new();
    for i in range {
        let victim = serving(cluster, page)?;
        let round = fault_round(store, page, i, |_| fault(victim.clone())).await?;
        report(progress, what, i, &round, &victim);
        rounds.push(round);
        recover(victim).await?;
    }
    Ok(rounds)
}

/// The rounds, or the failure as a line of the table and the error.
fn record(figures: &mut Vec<Figure>, what: &str, rounds: Result<Vec<Round>>) -> Result<Vec<Round>> {
    rounds.inspect_err(|err| figures.push(failure(what, err)))
}

/// The container serving the page.
fn serving(cluster: &ContainerCluster, page: &NativePage) -> Result<Node> {
    cluster.host(&page.host().context("the page has no host")?)
}

/// Waits until a host put back on the network has ended its copy of the
/// session that moved.
async fn wait_copy_ended(cluster: &ContainerCluster, host: &Node) -> Result<()> {
    wait_until(
        Duration::from_secs(60),
        &format!("{} to end its copy of the session", host.name),
        || async {
            Ok(match cluster.health(host).await {
                Ok((_, body)) if body.contains("\"sessions\":0") => Ok(()),
                Ok((_, body)) => Err(body),
                Err(err) => Err(format!("{err:#}")),
            })
        },
    )
    .await
}

fn report(progress: &dyn Fn(&str), what: &str, i: usize, round: &Round, victim: &Node) {
    progress(&format!(
        "failover --containers: {what} round {i} of {}: {:.0} ms (socket lost {:.0}, welcomed {:.0})",
        victim.name,
        ms(round.echoed),
        ms(round.lost),
        ms(round.welcomed),
    ));
}

fn failure(what: &str, err: &anyhow::Error) -> Figure {
    Figure {
        what: what.into(),
        measured: failed(err),
        target: KILL_TARGET,
        met: Some(false),
    }
}
