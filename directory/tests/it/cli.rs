//! The `directory` binary's account, identity and key commands, run for
//! real against an SQLite file in a temporary folder.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use auth::ticket::{TicketPublicKey, TicketSigner};

fn directory(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_directory"))
        .args(args)
        .env_remove("THINLINE_STORE")
        .env_remove("THINLINE_TICKET_KEY")
        .env_remove("THINLINE_TICKET_KEY_FILE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn users_are_added_listed_reset_disabled_and_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("store.db").display());
    let store = store.as_str();

    let short = directory(&["user", "add", "ada", "--store", store], "short\n");
    assert!(!short.status.success());
    assert!(
        text(&short.stderr).contains("the password is too short: use at least 8 characters"),
        "{}",
        text(&short.stderr)
    );
    let bad_name = directory(&["user", "add", "-x", "--store", store], "long enough\n");
    assert!(!bad_name.status.success());

    let added = directory(&["user", "add", "ada", "--store", store], "long enough\n");
    assert!(added.status.success(), "{}", text(&added.stderr));
    let twice = directory(&["user", "add", "ada", "--store", store], "long enough\n");
    assert!(!twice.status.success());
    assert!(text(&twice.stderr).contains("directory user reset ada"));

    let listed = directory(&["user", "list", "--store", store], "");
    assert!(listed.status.success());
    let line = text(&listed.stdout);
    assert!(line.starts_with("ada\tenabled\t"), "{line}");
    assert_eq!(line.lines().count(), 1);

    for action in ["reset", "disable", "enable"] {
        let done = directory(&["user", action, "ada", "--store", store], "another one\n");
        assert!(done.status.success(), "{action}: {}", text(&done.stderr));
        let missing = directory(&["user", action, "bob", "--store", store], "another one\n");
        assert!(!missing.status.success(), "{action}");
        assert!(text(&missing.stderr).contains("no user bob"), "{action}");
    }
    let disabled = directory(&["user", "disable", "ada", "--store", store], "");
    assert!(disabled.status.success());
    assert!(
        text(&directory(&["user", "list", "--store", store], "").stdout).contains("ada\tdisabled")
    );
}

#[test]
fn identities_are_mapped_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("store.db").display());
    let store = store.as_str();

    let none = directory(&["user", "ids", "--store", store], "");
    assert!(none.status.success(), "{}", text(&none.stderr));
    assert_eq!(text(&none.stdout), "");

    // No account is needed: hosts may serve users who have none.
    let mapped = directory(
        &["user", "map", "ada", "--uid", "1500", "--store", store],
        "",
    );
    assert!(mapped.status.success(), "{}", text(&mapped.stderr));
    assert!(
        text(&mapped.stderr).contains("mapped ada to uid 1500 gid 1500"),
        "{}",
        text(&mapped.stderr)
    );
    let remapped = directory(
        &[
            "user", "map", "ada", "--uid", "1501", "--gid", "100", "--store", store,
        ],
        "",
    );
    assert!(remapped.status.success(), "{}", text(&remapped.stderr));
    assert!(
        text(&remapped.stderr).contains("ada had uid 1500 gid 1500 before"),
        "{}",
        text(&remapped.stderr)
    );

    for (args, expected) in [
        (&["--uid", "0"][..], "never run as root"),
        (&["--uid", "1502", "--gid", "0"][..], "never run as root"),
        (&["--system-user", "root"][..], "never run as root"),
        (
            &["--system-user", "no-such-user-here"][..],
            "no user no-such-user-here in /etc/passwd",
        ),
        (&["--uid", "4294967295"][..], "(uid_t) -1"),
        (&["--uid", "4294967296"][..], "invalid value"),
        (&[][..], "--uid"),
        (
            &["--uid", "1502", "--system-user", "root"][..],
            "cannot be used with",
        ),
        (
            &["--system-user", "root", "--gid", "5"][..],
            "cannot be used with",
        ),
        (&["--gid", "5"][..], "--uid"),
    ] {
        let refused = directory(
            &[&["user", "map", "bob"][..], args, &["--store", store][..]].concat(),
            "",
        );
        assert!(!refused.status.success(), "{args:?}");
        assert!(
            text(&refused.stderr).contains(expected),
            "{args:?}: {}",
            text(&refused.stderr)
        );
    }
    let taken = directory(
        &["user", "map", "bob", "--uid", "1501", "--store", store],
        "",
    );
    assert!(!taken.status.success());
    assert!(
        text(&taken.stderr).contains("uid 1501 is already the identity of ada"),
        "{}",
        text(&taken.stderr)
    );
    let bad_name = directory(
        &["user", "map", "Bob", "--uid", "1502", "--store", store],
        "",
    );
    assert!(!bad_name.status.success());
    assert!(text(&bad_name.stderr).contains("invalid user name"));

    // A system user from this machine's own passwd file, whichever it is.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let (system_user, uid, gid) = passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let uid: u32 = fields.get(2)?.parse().ok()?;
            let gid: u32 = fields.get(3)?.parse().ok()?;
            (uid != 0 && gid != 0 && uid != 1501 && uid < u32::MAX).then(|| (fields[0], uid, gid))
        })
        .next()
        .expect("a system user other than root in /etc/passwd");
    let by_name = directory(
        &[
            "user",
            "map",
            "cy",
            "--system-user",
            system_user,
            "--store",
            store,
        ],
        "",
    );
    assert!(by_name.status.success(), "{}", text(&by_name.stderr));

    let listed = directory(&["user", "ids", "--store", store], "");
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert_eq!(
        text(&listed.stdout),
        format!("ada\t1501\t100\tmapped\ncy\t{uid}\t{gid}\tmapped\n")
    );
}

#[test]
fn keygen_prints_a_matching_pair_and_serve_needs_one() {
    let made = directory(&["keygen"], "");
    assert!(made.status.success());
    let out = text(&made.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let seed = lines[0].strip_prefix("THINLINE_TICKET_KEY=").unwrap();
    let public = lines[1]
        .strip_prefix("THINLINE_TICKET_PUBLIC_KEY=")
        .unwrap();
    let signer = TicketSigner::from_base64(seed).unwrap();
    assert!(signer.public_key() == TicketPublicKey::from_base64(public).unwrap());

    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("store.db").display());
    let refused = directory(&["serve", "--store", &store, "--listen", "127.0.0.1:0"], "");
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("run `directory keygen`"),
        "{}",
        text(&refused.stderr)
    );
    let key_file = dir.path().join("ticket.key");
    std::fs::write(&key_file, "not a key\n").unwrap();
    let bad_key = directory(
        &[
            "serve",
            "--store",
            &store,
            "--listen",
            "127.0.0.1:0",
            "--ticket-key-file",
            key_file.to_str().unwrap(),
        ],
        "",
    );
    assert!(!bad_key.status.success());
    assert!(text(&bad_key.stderr).contains("no usable ticket key"));
}

#[test]
fn hosts_are_enrolled_listed_re_enrolled_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("store.db").display());
    let store = store.as_str();
    let add =
        |id: &str, url: &str| directory(&["host", "add", id, "--url", url, "--store", store], "");
    let secret_of = |output: &Output| {
        let printed = text(&output.stdout);
        let secret = printed
            .trim()
            .strip_prefix("THINLINE_HOST_SECRET=")
            .unwrap_or_else(|| panic!("no secret printed: {printed}"))
            .to_owned();
        assert_eq!(secret.len(), 64, "{secret}");
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");
        secret
    };

    for (id, url) in [
        ("h 1", "https://h1.example"),
        ("h1", "h1.example"),
        ("h1", "https://"),
    ] {
        let refused = add(id, url);
        assert!(!refused.status.success(), "{id} {url}");
        assert!(
            text(&refused.stderr).contains("invalid"),
            "{}",
            text(&refused.stderr)
        );
    }
    let first = add("h1", "https://h1.example");
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stderr).contains("never a flag"),
        "{}",
        text(&first.stderr)
    );
    let old = secret_of(&first);
    let again = add("h1", "https://h1.example");
    let new = secret_of(&again);
    assert_ne!(old, new, "every enrolment draws a new secret");
    assert!(add("h2", "https://h2.example").status.success());

    let listed = text(&directory(&["host", "enrolled", "--store", store], "").stdout);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("h1\thttps://h1.example\t"), "{listed}");
    assert!(lines[1].starts_with("h2\thttps://h2.example\t"), "{listed}");
    // The list never shows a secret.
    assert!(!listed.contains(&new) && !listed.contains(&old));

    let removed = directory(&["host", "remove", "h1", "--store", store], "");
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let missing = directory(&["host", "remove", "h1", "--store", store], "");
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no host h1 is enrolled"));
    let listed = text(&directory(&["host", "enrolled", "--store", store], "").stdout);
    assert!(
        listed.starts_with("h2\t") && listed.lines().count() == 1,
        "{listed}"
    );
}

#[test]
fn recording_is_configured_within_bounds() {
    let help = directory(&["serve", "--help"], "");
    assert!(help.status.success());
    let help = text(&help.stdout);
    for shown in [
        "--recording <RECORDING>",
        "off:",
        "opt-in:",
        "always:",
        "[default: opt-in]",
        "--recording-max-mb <RECORDING_MAX_MB>",
        "[default: 64]",
        "--recording-retention-days <RECORDING_RETENTION_DAYS>",
        "[default: 30]",
        "THINLINE_RECORDING=",
    ] {
        assert!(help.contains(shown), "{shown} in {help}");
    }
    // Refused before anything is opened: no store is named.
    for (flag, value) in [
        ("--recording", "sometimes"),
        ("--recording-max-mb", "0"),
        ("--recording-max-mb", "4097"),
        ("--recording-retention-days", "0"),
        ("--recording-retention-days", "3651"),
    ] {
        let refused = directory(
            &["serve", "--store", "sqlite:/nonexistent/x.db", flag, value],
            "",
        );
        assert!(!refused.status.success(), "{flag} {value}");
        let stderr = text(&refused.stderr);
        assert!(
            stderr.contains(&format!("invalid value '{value}' for '{flag}")),
            "{flag} {value}: {stderr}"
        );
    }
}
