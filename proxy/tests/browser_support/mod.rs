//! A real browser for the tests: Debian's headless Chromium, driven over WebDriver
//! through `chromedriver`, which the test starts itself on a free port and stops when the
//! [`Browser`] is dropped, even when the test fails.
//!
//! Three decisions worth knowing:
//! - One browser at a time per test binary ([`TURN`]): the page polls every second and
//!   the tests give it 3 s to show a change, which two cores and a dozen Chromiums
//!   starting at once could not promise.
//! - Every page gets a watcher before its own scripts run ([`WATCH`], through the
//!   DevTools command chromedriver passes on): it records every value ever assigned to
//!   `document.title` and every element `#pwned` ever added. The page sets its own title
//!   every second, so reading the title at the end could miss a `PWNED` set in between.
//! - Without Chromium the tests print a banner and pass, so a laptop without it can
//!   still run `cargo test`; `KV_REQUIRE_BROWSER=1` (CI sets it) makes that a failure.
//!
//! [`page`] holds what the tests do to a /state page and read off it.

// Each browser test file compiles its own copy of this module and uses only some of it.
#![allow(dead_code)]

pub mod page;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tokio::sync::{Mutex, MutexGuard};

/// Held by the one test whose browser is open; see the module doc. A tokio mutex: each
/// test has its own runtime, and the turn is held across awaits.
static TURN: Mutex<()> = Mutex::const_new(());

/// How long chromedriver and Chromium get to start before the test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs in every document before the page's own scripts: see the module doc.
const WATCH: &str = r##"(() => {
  const titles = [], pwned = [];
  Object.defineProperty(window, "__kvWatch", { value: { titles, pwned } });
  const title = Object.getOwnPropertyDescriptor(Document.prototype, "title");
  Object.defineProperty(document, "title", {
    configurable: true,
    get() { return title.get.call(this); },
    set(v) { titles.push(String(v)); title.set.call(this, v); },
  });
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (n.nodeType === 1 && (n.id === "pwned" || n.querySelector("#pwned"))) {
        pwned.push(n.outerHTML.slice(0, 300));
      }
    }
  }).observe(document, { childList: true, subtree: true });
})();"##;

/// A headless Chromium with a window of a given size, and the chromedriver behind it.
pub struct Browser {
    pub client: Client,
    /// Stops chromedriver and Chromium and removes the profile when dropped.
    _driver: Driver,
    /// Released last, once the browser is gone.
    _turn: MutexGuard<'static, ()>,
}

/// The chromedriver process (leader of its own process group, so Chromium, its child,
/// goes with it) and the fresh profile folder Chromium was given.
struct Driver {
    child: Child,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it started. The id
        // is the one `spawn` gave us; nothing else is in that group.
        if let Ok(group) = i32::try_from(self.child.id()) {
            // A negative pid is the whole process group.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Browser {
    /// Starts chromedriver and a Chromium showing pages at `width`×`height`, or returns
    /// `None` (after a banner) when either is not installed and the browser is optional.
    pub async fn open(width: u32, height: u32) -> Option<Browser> {
        let (chromium, chromedriver) = match (find("chromium"), find("chromedriver")) {
            (Some(c), Some(d)) => (c, d),
            _ => {
                let why = "browser tests need chromium and chromium-driver: \
                           apt-get install chromium chromium-driver";
                if std::env::var("KV_REQUIRE_BROWSER").as_deref() == Ok("1") {
                    panic!("KV_REQUIRE_BROWSER=1 but {why}");
                }
                skipped_banner(why);
                return None;
            }
        };
        let turn = TURN.lock().await;
        let profile = fresh_dir("chromium-profile");
        let port = free_port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let driver = Driver { child, profile };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let client = connect(addr, &chromium, &driver.profile, width, height).await;
        let browser = Browser {
            client,
            _driver: driver,
            _turn: turn,
        };
        browser.watch_every_page().await;
        browser.fit_page_to(width, height).await;
        Some(browser)
    }

    /// Resizes the window so the page itself is `width`×`height`: `--window-size` sizes
    /// the whole window, and headless Chromium still keeps room for toolbars inside it.
    async fn fit_page_to(&self, width: u32, height: u32) {
        let page = self
            .js("return [window.innerWidth, window.innerHeight]")
            .await;
        let page = |i: usize| page[i].as_u64().expect("the page's size") as u32;
        let (outer_w, outer_h) = self
            .client
            .get_window_size()
            .await
            .expect("the window's size");
        let (w, h) = (
            outer_w as u32 + width - page(0),
            outer_h as u32 + height - page(1),
        );
        self.client
            .set_window_size(w, h)
            .await
            .unwrap_or_else(|e| panic!("resize the window to {w}×{h}: {e}"));
    }

    /// Installs [`WATCH`] for every document loaded from now on.
    async fn watch_every_page(&self) {
        let params = json!({"source": WATCH});
        let command = DevTools {
            method: "Page.addScriptToEvaluateOnNewDocument",
            params,
        };
        self.client
            .issue_cmd(command)
            .await
            .unwrap_or_else(|e| panic!("installing the page watcher failed: {e}"));
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs `body` as a function in the page and returns what it returns.
    pub async fn js(&self, body: &str) -> Value {
        self.client
            .execute(body, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("the script failed ({e}):\n{body}"))
    }

    /// Runs `body` in the page until it returns something truthy (not `null`, `false`,
    /// `0` or `""`) and returns that, or fails after `within` saying what was awaited and
    /// what the page had last.
    pub async fn wait_for(&self, what: &str, within: Duration, body: &str) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.js(body).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() >= deadline {
                let page = self.js("return document.body.innerText").await;
                panic!(
                    "waited {within:?} for {what}; the page shows:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text the element `css` shows (its `innerText`), or "" when there is none.
    pub async fn text(&self, css: &str) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.innerText : ''",
            json!(css)
        );
        self.js(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Types `text` into the input `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// The text of the element `css` inside the page's `index`th frame, or `None` when
    /// there is no such frame or element (yet). Back in the page itself afterwards.
    pub async fn text_in_frame(&self, index: u16, css: &str) -> Option<String> {
        self.client.enter_frame(index).await.ok()?;
        let text = match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.ok(),
            Err(_) => None,
        };
        self.client
            .enter_parent_frame()
            .await
            .expect("back to the page from its frame");
        text
    }

    /// Every value this page assigned to `document.title`, and every `#pwned` element
    /// added to it, as [`WATCH`] recorded them.
    pub async fn watched(&self) -> (Vec<String>, Vec<String>) {
        let seen = self.js("return window.__kvWatch || null").await;
        assert!(!seen.is_null(), "the page watcher did not run in this page");
        let list = |name: &str| -> Vec<String> {
            seen[name]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        (list("titles"), list("pwned"))
    }

    /// A PNG of what the window shows.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("a screenshot")
    }

    /// Ends the WebDriver session politely; dropping the browser then stops the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// A Chrome DevTools command, sent through chromedriver's own pass-through endpoint
/// (`POST /session/{id}/goog/cdp/execute`), which plain WebDriver has no word for.
#[derive(Debug)]
struct DevTools {
    method: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (hyper::Method, Option<String>) {
        let body = json!({"cmd": self.method, "params": self.params});
        (hyper::Method::POST, Some(body.to_string()))
    }
}

/// Connects to the chromedriver at `addr` (retrying while it starts) and opens Chromium.
async fn connect(
    addr: SocketAddr,
    chromium: &Path,
    profile: &Path,
    width: u32,
    height: u32,
) -> Client {
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {addr} within {START_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        format!("--window-size={width},{height}"),
        format!("--user-data-dir={}", profile.display()),
    ];
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": args},
    });
    let caps = match caps {
        Value::Object(map) => map,
        _ => unreachable!(),
    };
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(caps);
    let url = format!("http://{addr}");
    tokio::time::timeout(START_TIMEOUT, builder.connect(&url))
        .await
        .unwrap_or_else(|_| panic!("Chromium did not start within {START_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("chromedriver could not start {}: {e}", chromium.display()))
}

/// Says loudly, once per test binary, that the browser tests did not run. Written to
/// the process's stderr itself: `eprintln!` in a passing test is swallowed by the test
/// harness unless `--nocapture` is given, and a silent skip looks like a pass.
fn skipped_banner(why: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bar = "=".repeat(78);
        let _ = writeln!(std::io::stderr(), "\n{bar}\nSKIPPED: {why}\n{bar}\n");
    });
}

/// The first `name` on `PATH`.
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A port nothing listens on right now (bound, then let go, for chromedriver to take).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("the bound address").port()
}

/// A new empty folder in the system's temp folder.
fn fresh_dir(label: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("proxy-browser-{}-{n}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}
