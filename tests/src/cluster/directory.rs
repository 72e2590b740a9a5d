//! Talking to the cluster's directories as a browser and as the shipping
//! client do: signing in and out, asking a question as the signed-in user,
//! and opening [`NativePage`]s on the first directory's page.
//!
//! Where a test must read the directory's JSON itself (a decision it
//! checks), it builds requests from `directory_api`'s types with
//! [`request_body`] and reads answers into them with [`read_answer`], so no
//! test spells a field name of the directory's; the page reads every answer
//! with the shipping client's own reader.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use directory_api::Placement;
use protocol::Size;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use testkit::http::{Request, Response, form_encode};
use testkit::wait_until;
use web_terminal::directory::websocket_url;

use super::Cluster;
use crate::client::Client;
use crate::page::{NativePage, PageOptions};
use crate::tickets::{self, TEST_USER};

/// How long the cluster waits for something it started.
const STARTUP: Duration = Duration::from_secs(30);

impl Cluster {
    /// Signs in at the first directory's `/login` form, as a browser
    /// does; returns the `thinline_login=...` cookie pair.
    pub async fn sign_in(&self, user: &str, password: &str) -> Result<String> {
        let response = self.post_login(user, password).await?;
        ensure!(
            response.status == 303,
            "signing in as {user} answered {}: {}",
            response.status,
            response.body
        );
        response
            .cookie(auth::login::COOKIE_NAME)
            .context("signing in set no cookie")
    }

    /// Signs out at the first directory's `/logout`, as the page's button
    /// does, with the `thinline_login=...` cookie pair `sign_in` returned.
    pub async fn sign_out(&self, cookie: &str) -> Result<()> {
        let answer = Request::local("POST", self.directories[0].port, "/logout")
            .header("cookie", cookie)
            .header("origin", &self.page_origin())
            .send()
            .await?;
        ensure!(
            answer.status == 303,
            "/logout answered {}: {}",
            answer.status,
            answer.body
        );
        Ok(())
    }

    /// `POST /login` with the page's Origin; the raw answer.
    pub async fn post_login(&self, user: &str, password: &str) -> Result<Response> {
        let form = format!(
            "user={}&password={}",
            form_encode(user),
            form_encode(password)
        );
        Request::local("POST", self.directories[0].port, "/login")
            .header("origin", &self.page_origin())
            .form(&form)
            .send()
            .await
    }

    /// The url of directory `i` (the page and the API).
    pub fn directory_url(&self, i: usize) -> String {
        self.directory_urls.get(i).cloned().unwrap_or_default()
    }

    /// The Origin of a page served by the first directory; every host
    /// allows it.
    pub fn page_origin(&self) -> String {
        self.directory_url(0)
    }

    /// Waits until every running host holds a live lease and no host that
    /// has exited still appears live (its lease ran out), by the store's
    /// clock: what every directory reads.
    pub async fn wait_hosts_live(&mut self) -> Result<()> {
        let mut want = Vec::new();
        for host in &mut self.hosts {
            if host.server.is_running() {
                want.push(host.id.clone());
            }
        }
        want.sort();
        let store = self.store.clone();
        wait_until(STARTUP, "every host to hold a lease", || {
            let (store, want) = (store.clone(), want.clone());
            async move {
                let now = store.now().await?;
                let hosts = store.list_hosts().await?;
                let mut live: Vec<String> = hosts
                    .iter()
                    .filter(|h| h.is_live(now))
                    .map(|h| h.id.clone())
                    .collect();
                live.sort();
                Ok(if live == want {
                    Ok(())
                } else {
                    Err(format!(
                        "want live {want:?}, the store has {hosts:?} at {now}"
                    ))
                })
            }
        })
        .await
    }

    /// Asks the directories in turn, like a client would, signed in as
    /// the test user: the status and the JSON answer (`null` if not JSON).
    pub async fn ask_directory(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut last = None;
        for directory in &self.directories {
            let origin = self.page_origin();
            match request_as(directory.port, method, path, body, &self.cookie, &origin).await {
                Ok(answer) => return Ok(answer),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no directory")))
    }

    /// What a page on the first directory, signed in with `cookie`, starts
    /// with: whatever the user runs.
    pub fn page_options(&self, cookie: &str, size: Size) -> PageOptions {
        PageOptions::new(&self.page_origin(), cookie, size)
    }

    /// A page of the test user's on a new session, where the directory
    /// places it.
    pub fn open_page(&self, size: Size) -> NativePage {
        self.open_page_as(&self.cookie, size)
    }

    /// A page signed in with `cookie`, on a new session where the
    /// directory places it.
    pub fn open_page_as(&self, cookie: &str, size: Size) -> NativePage {
        NativePage::open(self.page_options(cookie, size).new_session())
    }

    /// A page of the test user's on a new session of the host whose
    /// registered url is `url` (a proxy in front of one host, say).
    ///
    /// The directory places new sessions on the least loaded host, so the
    /// session is started there first, with a ticket the harness signs for
    /// the test user's sign-in as the directory would; then the page opens
    /// it by name (`/?session=ID`) and the directory sends it to its owner.
    pub async fn open_page_on(&self, url: &str, size: Size) -> Result<NativePage> {
        let host = self
            .hosts
            .iter()
            .find(|h| h.public_url.trim_end_matches('/') == url.trim_end_matches('/'))
            .with_context(|| format!("no host of the cluster registered {url}"))?;
        let grant = tickets::Grant {
            user: TEST_USER.into(),
            session: tickets::new_session_id(),
            host: host.id.clone(),
            epoch: 1,
            login: self.login_id()?,
        };
        let ws = websocket_url(url).with_context(|| format!("{url} is not a host's url"))?;
        let mut starter = Client::connect_with_origin(&ws, &self.page_origin()).await?;
        starter
            .handshake(&grant.ticket(), grant.session, size)
            .await?;
        starter.close().await;
        let page = NativePage::open(self.page_options(&self.cookie, size).session(grant.session));
        page.wait_live(STARTUP).await?;
        Ok(page)
    }
}

impl Cluster {
    /// A raw client presenting the ticket of a placement to the host it
    /// names, welcomed with a first frame; fails with the host's close code
    /// if it refuses. For tests of tickets themselves (taken now, used
    /// later, used all at once), where the page would not do.
    pub async fn attach_with_answer(&self, placed: &Placement, size: Size) -> Result<Client> {
        let url = &placed.url;
        let ws = websocket_url(url).with_context(|| format!("{url} is not a host's url"))?;
        let mut client = Client::connect_with_origin(&ws, &self.page_origin()).await?;
        client
            .handshake(&placed.ticket, placed.session, size)
            .await?;
        Ok(client)
    }
}

/// The JSON body of a request to the directory, from its `directory_api`
/// type.
pub fn request_body(request: &impl Serialize) -> Result<Value> {
    serde_json::to_value(request).context("a directory request that is not JSON")
}

/// A directory's answer read as its `directory_api` type. Only a 200 is an
/// answer; any other status, or a body of another shape, is an error that
/// quotes what the directory said.
pub fn read_answer<T: DeserializeOwned>(status: u16, body: &Value) -> Result<T> {
    ensure!(status == 200, "the directory answered {status}: {body}");
    T::deserialize(body).with_context(|| {
        format!(
            "the directory's answer is not a {}: {body}",
            std::any::type_name::<T>()
        )
    })
}

/// One JSON exchange as a signed-in browser page would make it: with the
/// sign-in cookie and the page's Origin. The status and the JSON answer
/// (`null` when it is not JSON).
pub async fn request_as(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    cookie: &str,
    origin: &str,
) -> Result<(u16, Value)> {
    let mut request = Request::local(method, port, path)
        .header("cookie", cookie)
        .header("origin", origin);
    if let Some(body) = body {
        request = request.json(body);
    }
    let answer = request.send().await?;
    Ok((answer.status, answer.json()))
}
