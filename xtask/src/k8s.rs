//! The Kubernetes manifests under `infra/k8s`, checked for real: validated
//! against the API's schemas, and their pod shapes played with
//! `podman kube play`.
//!
//! `check.py` (run by `test.rs`) holds them to the security floor; this
//! module holds them to what a cluster accepts and runs, so a manifest
//! that has never been applied still cannot drift into one no cluster
//! would take.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

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
