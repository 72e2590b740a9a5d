//! `cargo xtask <verb>`: every piece of Thinline's automation in one place.
//!
//! A person and CI run the same verbs (`.ci/run` is just `cargo xtask test`),
//! so "works on my machine" and "green in CI" mean the same thing. The crate
//! keeps to `anyhow` and the standard library so that it builds in seconds
//! before anything else does.

mod build;
mod cmd;
mod demo;
mod image;
mod k8s;
mod modules;
mod page;
mod profile;
mod purity;
mod rings;
mod test;
mod tools;

use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <verb>

verbs:
  build                         build the page (wasm client, hashed and precompressed assets) into
                                static/dist, and the release host-server and directory
  demo [--port N]               build, then run a directory (page on port N, default 8080)
                                and three hosts on the ports after it, over one SQLite store
  image                         build the container images with no registry (podman or docker):
                                localhost/thinline (hosts and directories) and thinline-postgres
  cluster up|down|status        the containerised cluster: PostgreSQL, two directories, three hosts
                                and a shared home volume on a private network (`up` builds the images)
  test                          everything CI checks: fmt, clippy, protocol and session-core purity,
                                the API fuzz, unit, e2e and browser tests
  fuzz                          build the debug directory and host, then fuzz the directory's API
                                from its OpenAPI document as `test` does (tests/fuzz/run.py)
  k8s-check                     the checks CI runs on infra/k8s: check.py's security floor and
                                validate.py's API schemas (kubernetes-validate, offline), with
                                their self-tests
  k8s-play [IMAGE]              play every pod shape of infra/k8s with `podman kube play` from
                                IMAGE (default localhost/thinline:latest): /healthz of each,
                                the hosts' preStop drain, then everything down again
  bench [latency|start|throughput|size|page|persist|failover|capacity|memory|auth|soak|all]
                                build, then measure against the targets of DESIGN.md (default all;
                                failover, capacity, memory and soak, which take minutes, and page,
                                which needs Chromium, only when named; soak loads for
                                THINLINE_SOAK_MINUTES, default 30)
  bench failover --containers   the failover figures, then the same on the containerised cluster
  bench flood-profile [--callgrind] [-- ARGS]
                                a session core fed a 20 MB flood without a PTY, then our emulator
                                and alacritty alone: MB/s, or with --callgrind the top functions
                                (ARGS go to host-server's flood_profile example, `-- --help`)
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(verb) = args.next() else {
        eprint!("{USAGE}");
        bail!("no verb given");
    };
    let rest: Vec<String> = args.collect();
    match verb.as_str() {
        "build" => {
            no_extra_args(&rest)?;
            build::build_all()
        }
        "demo" => demo::demo(&rest),
        "test" => {
            no_extra_args(&rest)?;
            test::test_all()
        }
        "fuzz" => {
            no_extra_args(&rest)?;
            cmd::step("building the debug directory and host-server");
            cmd::run(cmd::cargo().args([
                "build",
                "--package",
                "directory",
                "--package",
                "host-server",
            ]))?;
            let debug = cmd::target_dir().join("debug");
            test::fuzz_directory_api(&debug.join("directory"), &debug.join("host-server"))
        }
        "k8s-check" => {
            no_extra_args(&rest)?;
            test::check_deployment_manifests()
        }
        "k8s-play" => match rest.as_slice() {
            [] => k8s::play_pod_shapes(image::IMAGE),
            [image] => k8s::play_pod_shapes(image),
            _ => bail!("k8s-play takes at most one argument, the image"),
        },
        "bench" => bench(&rest),
        "image" => {
            no_extra_args(&rest)?;
            image::build_images()
        }
        "cluster" => cluster(&rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown verb `{other}`")
        }
    }
}

/// `cargo xtask cluster up|down|status`: the images (for `up`), then the
/// cluster driver in the tests crate, which the containerised tests and
/// `bench failover --containers` share.
fn cluster(rest: &[String]) -> Result<()> {
    let verb = match rest {
        [one] if ["up", "down", "status"].contains(&one.as_str()) => one.as_str(),
        _ => bail!("cluster takes one of: up, down, status"),
    };
    if verb == "up" {
        image::build_images()?;
    } else {
        image::ensure_container_tools()?;
    }
    let mut command = cmd::cargo();
    command
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "tests",
            "--bin",
            "cluster",
            "--",
        ])
        .arg(verb)
        .env("THINLINE_CONTAINER_ENGINE", image::engine()?.join(" "));
    cmd::run(&mut command)
}

fn no_extra_args(rest: &[String]) -> Result<()> {
    if let Some(arg) = rest.first() {
        bail!("unexpected argument `{arg}`");
    }
    Ok(())
}

/// What `cargo xtask bench` measures; `failover`, `capacity`, `memory`,
/// `soak`, `page`, `files` and `echo` run only when named.
const BENCH_VERBS: [&str; 16] = [
    "latency",
    "viewers",
    "start",
    "throughput",
    "size",
    "page",
    "files",
    "echo",
    "persist",
    "recording",
    "failover",
    "capacity",
    "memory",
    "auth",
    "soak",
    "all",
];

fn bench(rest: &[String]) -> Result<()> {
    if rest.first().is_some_and(|verb| verb == "flood-profile") {
        return profile::flood_profile(&rest[1..]);
    }
    let which = match rest {
        [] => "all",
        [failover, containers] if failover == "failover" && containers == "--containers" => {
            "failover-containers"
        }
        [one] if BENCH_VERBS.contains(&one.as_str()) => one.as_str(),
        _ => {
            bail!(
                "bench takes one of: latency, viewers, start, throughput, size, page, files, echo, persist, recording, failover, capacity, memory, auth, soak, all"
            )
        }
    };
    if which == "failover-containers" {
        image::build_images()?;
    } else {
        build::build_all()?;
        // The benchmarks' hosts sandbox their sessions, as users' hosts do:
        // a figure measured without bwrap would describe another product.
        tools::ensure_sandbox_tools(false)?;
    }
    if matches!(which, "page" | "files" | "echo") {
        tools::ensure_chromium()?;
    }
    cmd::step(&format!("running the benchmark driver ({which})"));
    let mut command = cmd::cargo();
    command
        .args([
            "run",
            "--release",
            "--package",
            "tests",
            "--bin",
            "bench",
            "--",
        ])
        .arg(which)
        .env("THINLINE_HOST_BIN", build::host_binary())
        .env("THINLINE_DIRECTORY_BIN", build::directory_binary())
        .env("THINLINE_STATIC_DIR", build::page_dir())
        // `bench persist` measures PostgreSQL in a fresh database there.
        .env("DATABASE_URL", test::DATABASE_URL)
        .env("CHROMIUM", tools::CHROMIUM)
        .env("CHROMEDRIVER", tools::CHROMEDRIVER);
    if which == "failover-containers" {
        command.env("THINLINE_CONTAINER_ENGINE", image::engine()?.join(" "));
    }
    cmd::run(&mut command)
}
