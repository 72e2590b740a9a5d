//! The Kubernetes manifests under `infra/k8s`, checked for real: validated
//! against the API's schemas, and their pod shapes played with
//! `podman kube play`.
//!
//! `check.py` (run by `test.rs`) holds them to the security floor; this
//! module holds them to what a cluster accepts and runs, so a manifest
//! that has never been applied still cannot drift into one no cluster
//! would take.

mod play;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use self::play::{
    Play, PlayPlan, container_log_tail, make_dir, podman_plain, run_pre_stop, wait_for_health,
    write_secret_file,
};
use crate::{cmd, tools};

/// kubernetes-validate from PyPI, pinned: its bundled schemas are what the
/// manifests are held to, so a new release changes the check only when
/// this line does. Which Kubernetes release they are validated against is
/// `KUBERNETES_VERSION` in `infra/k8s/validate.py`, with the reason.
const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";

/// Every manifest under `infra/k8s` validated offline against the
/// Kubernetes schemas with unknown fields refused (custom resources and
/// the patches under `variants/` as `validate.py` says), then the
/// validator's own self-test, which proves it still refuses a typo.
pub fn validate_manifests() -> Result<()> {
    let tool = tools::ensure_python_package("kubernetes-validate", KUBERNETES_VALIDATE_VERSION)?;
    let script = cmd::workspace_root().join("infra/k8s/validate.py");
    cmd::step(
        "validating the Kubernetes manifests against the API's schemas: infra/k8s/validate.py",
    );
    let started = Instant::now();
    cmd::run(Command::new(tool.python()).arg(&script)).context(
        "a manifest under infra/k8s is not what the Kubernetes API accepts: fix the fields named above",
    )?;
    cmd::run(Command::new(tool.python()).arg(&script).arg("--self-test")).context(
        "infra/k8s/validate.py no longer refuses the broken manifests its self-test makes",
    )?;
    cmd::step(&format!(
        "  manifests valid ({:.1}s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Open-file and process limits for every container, no higher than this
/// machine's (podman's defaults ask for more and fail: CAP_SYS_RESOURCE is
/// absent). `kube play` takes no `--ulimit`, so they come from a
/// containers.conf of the play's own (`CONTAINERS_CONF`).
const CONTAINERS_CONF: &str =
    "[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n";

/// Where the play's store lives inside every pod (`playable.py`).
const PLAY_STORE_URL: &str = "sqlite:/var/lib/thinline/store.db";

/// Longest a pod may take to answer its /healthz after `kube play`.
const HEALTH_PATIENCE: Duration = Duration::from_secs(90);

/// Every pod shape under `infra/k8s` (the directory's, the hosts', the
/// shared-uid variant's) played for real with `podman kube play` from
/// `image`: the Pod `infra/k8s/playable.py` derives from each template
/// (what podman 4.3 cannot honour is adapted there, each with its reason),
/// fed throwaway keys, a host token and enrolments made for this run. It
/// waits until every pod's /healthz says it serves (a host: its lease
/// live, its sandbox working), runs each host's preStop hook as the
/// kubelet would, sees it drain, then takes everything down, on failure
/// too.
pub fn play_pod_shapes(image: &str) -> Result<()> {
    let started = Instant::now();
    if !cmd::exists("podman") {
        bail!("podman is not installed: `apt-get install podman runc` (Debian), then run again");
    }
    let exists = podman_plain().args(["image", "exists", image]).status();
    if !exists.is_ok_and(|status| status.success()) {
        bail!(
            "no image {image} in podman's store: build it with `cargo xtask image`, or name another as `cargo xtask k8s-play IMAGE`"
        );
    }
    let tool = tools::ensure_python_package("kubernetes-validate", KUBERNETES_VALIDATE_VERSION)?;
    let mut play = Play::new()?;
    cmd::step(&format!(
        "deriving playable pods from infra/k8s into {}",
        play.work.display()
    ));
    let out = cmd::output(
        Command::new(tool.python())
            .arg(cmd::workspace_root().join("infra/k8s/playable.py"))
            .args(["--image", image, "--prefix", &play.prefix, "--work"])
            .arg(&play.work),
    )?;
    if !out.status.success() {
        bail!(
            "infra/k8s/playable.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let plan = PlayPlan::parse(&String::from_utf8_lossy(&out.stdout))?;
    for dir in &plan.dirs {
        make_dir(dir)?;
    }
    let values = play.credentials(image, &plan)?;
    for secret in &plan.secrets {
        play.create_secret(secret, &values)?;
    }
    for file in &plan.files {
        write_secret_file(file, &values)?;
    }
    cmd::step(&format!(
        "  {} pods, {} secrets, {} secret files ready ({:.1}s)",
        plan.pods.len(),
        plan.secrets.len(),
        plan.files.len(),
        started.elapsed().as_secs_f64()
    ));
    for pod in &plan.pods {
        cmd::run(play.podman().args(["kube", "play"]).arg(&pod.file))
            .with_context(|| format!("podman could not play {}", pod.file.display()))?;
        play.played.push(pod.file.clone());
    }
    for pod in &plan.pods {
        let health = wait_for_health(pod, HEALTH_PATIENCE).map_err(|error| {
            anyhow::anyhow!("{error:#}\n{}", container_log_tail(&pod.container))
        })?;
        cmd::step(&format!(
            "  {} answers /healthz: {health} ({:.1}s)",
            pod.name,
            started.elapsed().as_secs_f64()
        ));
    }
    for pod in plan.pods.iter().filter(|pod| !pod.pre_stop.is_empty()) {
        run_pre_stop(pod)?;
    }
    play.down()?;
    cmd::step(&format!(
        "every pod shape played, answered and came down ({:.1}s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
