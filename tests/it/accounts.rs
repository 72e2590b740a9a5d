//! Accounts, sign-in and tickets across real processes: a directory and
//! hosts over one store, the `directory user` CLI, and the native client
//! presenting the tickets the directory signed (issue 5; DESIGN.md's
//! security floor).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use directory_api::{Me, Placement, PlacementRequest, UnreachableRequest};
use protocol::{CloseCode, SessionId};
use serde_json::{Value, json};
use tests::client::{Client, upgrade_status};
use tests::cluster::{
    Cluster, ClusterOptions, directory_binary, read_answer, request_as, request_body,
};
use tests::http::{self, Request};
use tests::screen_text::ScreenText;
use tests::tickets::{self, TEST_PASSWORD, TEST_USER};
use web_terminal::directory::websocket_url;

use crate::{SIZE, assert_echoes};

const CLOSE_WAIT: Duration = Duration::from_secs(15);

async fn cluster(hosts: usize) -> Result<Cluster> {
    Cluster::start(ClusterOptions {
        hosts,
        ..ClusterOptions::default()
    })
    .await
}

/// Runs `directory user ARGS --store STORE`, feeding `stdin`; returns
/// (success, stdout + stderr).
fn user_cli(cluster: &Cluster, args: &[&str], stdin: &str) -> Result<(bool, String)> {
    let mut child = Command::new(directory_binary()?)
        .arg("user")
        .args(args)
        .args(["--store", &cluster.store_spec])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running `directory user`")?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(stdin.as_bytes())?;
    let output = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

/// A JSON call to the first directory as the holder of `cookie`.
async fn call(
    cluster: &Cluster,
    method: &str,
    path: &str,
    body: Option<&Value>,
    cookie: &str,
) -> Result<(u16, Value)> {
    request_as(
        cluster.directories[0].port,
        method,
        path,
        body,
        cookie,
        &cluster.page_origin(),
    )
    .await
}

/// A new session for the holder of `cookie`: (session, host, url, epoch, ticket).
async fn place_new(
    cluster: &Cluster,
    cookie: &str,
) -> Result<(SessionId, String, String, u64, String)> {
    let new = PlacementRequest {
        new: true,
        ..PlacementRequest::default()
    };
    let (status, answer) = call(
        cluster,
        "POST",
        "/v1/placement",
        Some(&request_body(&new)?),
        cookie,
    )
    .await?;
    let placed: Placement = read_answer(status, &answer)?;
    Ok((
        placed.session,
        placed.host,
        placed.url,
        placed.epoch,
        placed.ticket,
    ))
}

/// Opens a socket to `url` with the page's Origin and sends a hello.
async fn hello(cluster: &Cluster, url: &str, ticket: &str, session: SessionId) -> Result<Client> {
    let ws = websocket_url(url).with_context(|| format!("{url} is not a host's url"))?;
    let mut client = Client::connect_with_origin(&ws, &cluster.page_origin()).await?;
    client.send_hello(ticket, session, SIZE).await?;
    Ok(client)
}

/// Attaches with `ticket`, retrying (as the page does) while the host
/// answers 1001, "try again shortly": a busy store can make it say so.
async fn attach(cluster: &Cluster, url: &str, ticket: &str, session: SessionId) -> Result<Client> {
    let mut last = String::new();
    for _ in 0..5 {
        let mut client = hello(cluster, url, ticket, session).await?;
        match client.handshake_rest(Duration::from_secs(15)).await {
            Ok(_) => return Ok(client),
            Err(e) if format!("{e:#}").contains("1001") => {
                last = format!("{e:#}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return Err(e),
        }
    }
    anyhow::bail!("the host kept saying 1001: {last}")
}

async fn expect_unauthorized(mut client: Client, what: &str) -> Result<()> {
    let (code, reason) = client.expect_close(CLOSE_WAIT).await?;
    ensure!(
        code == CloseCode::Unauthorized.code() && client.welcome.is_none(),
        "{what}: closed with {code} {reason}"
    );
    Ok(())
}

#[tokio::test]
async fn sign_in_wrong_password_disabled_user_and_the_cli() -> Result<()> {
    let cluster = cluster(1).await?;
    // The CLI adds a user (password on stdin) who can then sign in.
    let (ok, said) = user_cli(&cluster, &["add", "bob"], "short\n")?;
    ensure!(
        !ok && said.contains("8"),
        "a short password was accepted: {said}"
    );
    let (ok, said) = user_cli(&cluster, &["add", "bob"], "bob's long password\n")?;
    ensure!(ok, "user add failed: {said}");
    let (ok, said) = user_cli(&cluster, &["add", "bob"], "bob's long password\n")?;
    ensure!(!ok, "adding bob twice succeeded: {said}");
    // Sign-ins are limited to a few per user a minute: this test makes
    // four as bob and two as alice.
    let answer = cluster.post_login("bob", "bob's long password").await?;
    ensure!(
        answer.status == 303,
        "bob's sign-in: {} {}",
        answer.status,
        answer.body
    );
    let bob = answer
        .cookie("thinline_login")
        .context("bob got no cookie")?;
    let (status, me) = call(&cluster, "GET", "/v1/me", None, &bob).await?;
    let me: Me = read_answer(status, &me)?;
    ensure!(me.user == "bob", "/v1/me says {me:?}");

    // The cookie's flags.
    let set_cookie = answer
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("thinline_login="))
        .map(|(_, v)| v.clone())
        .context("no cookie")?;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        ensure!(
            set_cookie.contains(flag),
            "cookie without {flag}: {set_cookie}"
        );
    }

    // A wrong password and an unknown user get the same answer.
    let wrong = cluster.post_login(TEST_USER, "not her password").await?;
    let unknown = cluster.post_login("nobody", "whatever password").await?;
    ensure!(
        wrong.status == 401 && unknown.status == 401,
        "{} {}",
        wrong.status,
        unknown.status
    );
    ensure!(
        wrong.body.contains("wrong user or password"),
        "{}",
        wrong.body
    );
    ensure!(wrong.body == unknown.body, "the two failures differ");
    ensure!(
        wrong.cookie("thinline_login").is_none(),
        "a failure set a cookie"
    );

    // Disabling ends bob's sign-in at once and refuses new ones alike.
    let (ok, said) = user_cli(&cluster, &["disable", "bob"], "")?;
    ensure!(ok, "disable failed: {said}");
    let (status, _) = call(&cluster, "GET", "/v1/me", None, &bob).await?;
    ensure!(
        status == 401,
        "a disabled user's cookie still works: {status}"
    );
    let disabled = cluster.post_login("bob", "bob's long password").await?;
    ensure!(
        disabled.status == 401 && disabled.body == wrong.body,
        "disabled: {}",
        disabled.status
    );

    // Enable and reset: the old password stops working, the new one works.
    ensure!(
        user_cli(&cluster, &["enable", "bob"], "")?.0,
        "enable failed"
    );
    ensure!(
        user_cli(&cluster, &["reset", "bob"], "a brand new password\n")?.0,
        "reset failed"
    );
    ensure!(
        cluster
            .post_login("bob", "bob's long password")
            .await?
            .status
            == 401,
        "old password"
    );
    cluster.sign_in("bob", "a brand new password").await?;
    let (ok, listed) = user_cli(&cluster, &["list"], "")?;
    ensure!(
        ok && listed.contains("bob") && listed.contains(TEST_USER),
        "list: {listed}"
    );
    Ok(())
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited() -> Result<()> {
    let cluster = cluster(0).await?;
    let mut limited = None;
    for attempt in 0..30 {
        let answer = cluster.post_login(TEST_USER, "a wrong password").await?;
        if answer.status == 429 {
            limited = Some((attempt, answer));
            break;
        }
        ensure!(answer.status == 401, "attempt {attempt}: {}", answer.status);
    }
    let (attempt, answer) = limited.context("30 wrong passwords were never rate limited")?;
    ensure!(attempt >= 3, "limited after only {attempt} attempts");
    ensure!(
        answer.body.contains("too many") && answer.body.contains("seconds"),
        "the refusal should say when to retry: {}",
        answer.body
    );
    // While limited even the right password is refused: guessing stops.
    let right = cluster.post_login(TEST_USER, TEST_PASSWORD).await?;
    ensure!(
        right.status == 429,
        "the right password passed the limit: {}",
        right.status
    );
    Ok(())
}

#[tokio::test]
async fn logout_ends_the_sign_in_and_its_tickets() -> Result<()> {
    let cluster = cluster(1).await?;
    let cookie = cluster.sign_in(TEST_USER, TEST_PASSWORD).await?;
    let (session, _, url, _, ticket) = place_new(&cluster, &cookie).await?;
    let mut client = attach(&cluster, &url, &ticket, session).await?;
    assert_echoes(&mut client).await?;
    client.close().await;

    let origin = cluster.page_origin();
    let out = Request::local("POST", cluster.directories[0].port, "/logout")
        .headers(&[("Cookie", cookie.as_str()), ("Origin", origin.as_str())])
        .form("")
        .send()
        .await?;
    ensure!(
        out.status == 303,
        "logout answered {}: {}",
        out.status,
        out.body
    );
    let (status, _) = call(&cluster, "GET", "/v1/me", None, &cookie).await?;
    ensure!(
        status == 401,
        "the cookie still works after logout: {status}"
    );
    // The ticket is still within its minute and correctly signed, but its
    // sign-in is over: replaying it is refused.
    expect_unauthorized(
        hello(&cluster, &url, &ticket, session).await?,
        "a ticket replayed after logout",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn tickets_bind_user_session_host_and_epoch() -> Result<()> {
    let cluster = cluster(2).await?;
    let alice = cluster.cookie.clone();
    tickets::ensure_account(cluster.store.as_ref(), "bob", "bob's long password").await?;
    let bob = cluster.sign_in("bob", "bob's long password").await?;

    let (session, host, url, epoch, ticket) = place_new(&cluster, &alice).await?;
    ensure!(epoch == 1, "a new session starts at epoch 1, got {epoch}");
    let mut owner = attach(&cluster, &url, &ticket, session).await?;

    // Bob knows the id but the directory will not place him there...
    let id = session.to_string();
    let hers = PlacementRequest {
        session: Some(session),
        new: false,
    };
    let report = UnreachableRequest {
        host: host.clone(),
        epoch,
    };
    for (method, path, body) in [
        ("POST", "/v1/placement".to_string(), request_body(&hers)?),
        (
            "POST",
            format!("/v1/sessions/{id}/unreachable"),
            request_body(&report)?,
        ),
        ("POST", format!("/v1/sessions/{id}/end"), json!({})),
    ] {
        let (status, answer) = call(&cluster, method, &path, Some(&body), &bob).await?;
        ensure!(status == 404, "bob's {path}: {status} {answer}");
    }
    let (_, listed) = call(&cluster, "GET", "/v1/sessions", None, &bob).await?;
    ensure!(
        !listed.to_string().contains(&id),
        "bob sees alice's session: {listed}"
    );
    // ...and his own ticket, for his own session, does not open hers.
    let (bobs, _, bobs_url, _, bobs_ticket) = place_new(&cluster, &bob).await?;
    ensure!(bobs != session, "bob was given alice's session");
    expect_unauthorized(
        hello(&cluster, &url, &bobs_ticket, session).await?,
        "bob's ticket on alice's session",
    )
    .await?;
    let _ = bobs_url;

    // Alice's real ticket, on the other host: wrong host.
    let other = cluster
        .hosts
        .iter()
        .find(|h| h.id != host)
        .context("a second host")?;
    expect_unauthorized(
        hello(&cluster, &other.public_url, &ticket, session).await?,
        "a ticket for another host",
    )
    .await?;

    // After a move the epoch rises: the old ticket names the old epoch.
    let (status, answer) = call(
        &cluster,
        "POST",
        &format!("/v1/sessions/{id}/end"),
        Some(&json!({})),
        &alice,
    )
    .await?;
    ensure!(status == 200 || status == 204, "ending: {status} {answer}");
    let (code, reason) = owner.expect_close(CLOSE_WAIT).await?;
    ensure!(
        code == CloseCode::SessionEnded.code(),
        "the ended session's client got {code} {reason}"
    );
    let mut late = hello(&cluster, &url, &ticket, session).await?;
    let (code, reason) = late.expect_close(CLOSE_WAIT).await?;
    ensure!(
        late.welcome.is_none()
            && [
                CloseCode::Unauthorized.code(),
                CloseCode::SessionEnded.code()
            ]
            .contains(&code),
        "a ticket for the ended session's old epoch: {code} {reason}"
    );
    let (status, _) = call(
        &cluster,
        "POST",
        "/v1/placement",
        Some(&request_body(&hers)?),
        &alice,
    )
    .await?;
    ensure!(status == 409, "an ended session was placed again: {status}");
    Ok(())
}

#[tokio::test]
async fn cross_origin_sockets_and_forms_are_refused() -> Result<()> {
    let cluster = cluster(1).await?;
    let host = &cluster.hosts[0];
    let url = websocket_url(&host.public_url).context("the host's url")?;
    for origin in ["http://evil.example", "null", "https://127.0.0.1", ""] {
        let status = upgrade_status(&url, origin).await.unwrap_or(0);
        ensure!(status == 403, "a socket from {origin:?} got {status}");
    }
    ensure!(
        upgrade_status(&url, &cluster.page_origin()).await? == 101,
        "the page's own origin"
    );

    // A sign-in form posted from another site is refused before any check.
    let form = format!(
        "user={TEST_USER}&password={}",
        http::form_encode(TEST_PASSWORD)
    );
    for origin in ["http://evil.example", "null"] {
        let answer = Request::local("POST", cluster.directories[0].port, "/login")
            .header("Origin", origin)
            .form(&form)
            .send()
            .await?;
        ensure!(
            answer.status == 403,
            "a sign-in from {origin}: {}",
            answer.status
        );
        ensure!(
            answer.cookie("thinline_login").is_none(),
            "{origin} got a cookie"
        );
    }

    // Neither server speaks HTTP/2, so no WebSocket can arrive over it
    // (RFC 8441) around the Origin check: a prior-knowledge h2 preface gets
    // no HTTP/2 SETTINGS frame back.
    for port in [cluster.directories[0].port, host.server.port] {
        let answer = raw_exchange(port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
        ensure!(
            !answer.starts_with(&[0, 0]) || answer.len() < 9 || answer[3] != 4,
            "port {port} answered an HTTP/2 preface with a SETTINGS frame"
        );
    }
    Ok(())
}

/// Writes `request` raw and reads whatever comes back within 5 s.
async fn raw_exchange(port: u16, request: &[u8]) -> Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    Ok(answer)
}

#[tokio::test]
async fn the_sessions_page_lists_and_ends_a_users_sessions() -> Result<()> {
    let cluster = cluster(1).await?;
    let cookie = cluster.cookie.clone();
    let (session, host, url, _, ticket) = place_new(&cluster, &cookie).await?;
    let mut client = attach(&cluster, &url, &ticket, session).await?;
    client
        .wait_for(crate::PATIENCE, "the prompt", |s| s.at_prompt())
        .await?;
    client.type_str("sleep 300\r").await?;
    let id = session.to_string();
    let page = tests::wait_until(
        crate::PATIENCE,
        "the sessions page to show `sleep 300`",
        || async {
            let page = Request::local("GET", cluster.directories[0].port, "/sessions")
                .header("Cookie", &cookie)
                .send()
                .await?;
            Ok(if page.status == 200 && page.body.contains("sleep 300") {
                Ok(page)
            } else {
                Err(format!("{} {}", page.status, page.body))
            })
        },
    )
    .await?;
    ensure!(
        page.body.contains(&id) && page.body.contains(&host),
        "{}",
        page.body
    );
    let csp = page.header("content-security-policy").unwrap_or_default();
    ensure!(
        csp.contains("frame-ancestors 'none'"),
        "sessions page CSP: {csp}"
    );

    // Without a sign-in the page sends the browser to /login.
    let anonymous = http::get(cluster.directories[0].port, "/sessions").await?;
    ensure!(
        anonymous.status == 303 && anonymous.header("location") == Some("/login"),
        "anonymous /sessions: {}",
        anonymous.status
    );

    // End it with the page's form: the program is hung up at once.
    let origin = cluster.page_origin();
    let ended = Request::local(
        "POST",
        cluster.directories[0].port,
        &format!("/sessions/{id}/end"),
    )
    .headers(&[("Cookie", cookie.as_str()), ("Origin", origin.as_str())])
    .form("")
    .send()
    .await?;
    ensure!(
        ended.status == 303,
        "ending answered {}: {}",
        ended.status,
        ended.body
    );
    let (code, reason) = client.expect_close(CLOSE_WAIT).await?;
    ensure!(
        code == CloseCode::SessionEnded.code(),
        "closed with {code} {reason}"
    );
    let record = cluster.session(&id).await?;
    ensure!(
        record.state == store::SessionState::Ended,
        "the store says {record:?}"
    );
    Ok(())
}

#[tokio::test]
async fn sessions_per_user_are_capped() -> Result<()> {
    let cluster = cluster(1).await?;
    let cookie = cluster.cookie.clone();
    let mut clients = Vec::new();
    let mut refused = None;
    for n in 0..12 {
        let new = PlacementRequest {
            new: true,
            ..PlacementRequest::default()
        };
        let (status, answer) = call(
            &cluster,
            "POST",
            "/v1/placement",
            Some(&request_body(&new)?),
            &cookie,
        )
        .await?;
        if status == 429 {
            refused = Some((n, answer));
            break;
        }
        let placed: Placement =
            read_answer(status, &answer).with_context(|| format!("placement {n}"))?;
        let session = placed.session;
        let client = attach(&cluster, &placed.url, &placed.ticket, session).await?;
        // The directory counts the sessions in the store; wait for this one.
        let id = session.to_string();
        tests::wait_until(crate::PATIENCE, "the session's record", || async {
            Ok(match cluster.store.get_session(&id).await? {
                Some(_) => Ok(()),
                None => Err("not yet".to_string()),
            })
        })
        .await?;
        clients.push(client);
    }
    let (n, answer) = refused.context("12 sessions and no cap")?;
    ensure!(n == 10, "capped after {n} sessions, not the default 10");
    ensure!(
        answer.to_string().contains("/sessions"),
        "the refusal should say where to end one: {answer}"
    );
    Ok(())
}
