//! The operator console in headless Chromium, driven over the Chrome DevTools Protocol, against
//! an API on port 0 fed with a call's events as the pipeline would publish them: the call list,
//! a partial replaced in place by its final with the translation beneath, both WebSockets resuming
//! after a dropped connection (through a proxy that cuts them) with nothing missed or doubled,
//! language changes (and their errors) reaching the gateway, a transcript download, hang-up, a
//! wrong token, and a screenshot (`console.png` under Cargo's test temp dir, path printed).
//!
//! Needs Debian's `chromium` (`.ci/run` installs it), or `CHROME_BIN` naming a binary.

#![allow(clippy::unwrap_used)] // A panic is a test failure.

mod common;
mod harness;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ended, joined, started, transcript, utterance_id};
use dragoman_bus::Event;
use dragoman_bus::events::{Stage, TranslationProduced};
use dragoman_test_support::within;
use futures::{SinkExt as _, StreamExt as _};
use harness::{TOKEN, fake_gateway, start};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long a condition on the page may take to become true.
const PAGE_DEADLINE: Duration = Duration::from_secs(20);
const VIEWPORT: (u32, u32) = (1440, 900);

// ---- A minimal Chrome DevTools Protocol client ----------------------------------------------

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// One DevTools connection (the browser's); pages are addressed by their session id.
struct Cdp {
    outgoing: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: AtomicU64,
    /// The pages' console messages, exceptions and log entries, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
}

impl Cdp {
    async fn connect(url: &str) -> Self {
        let (socket, _) = within(20, tokio_tungstenite::connect_async(url)).await.unwrap();
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<String>();
        let pending = Pending::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (replies, entries) = (pending.clone(), log.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(text) = queue.recv() => {
                        if sink.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                    message = stream.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            let message: Value = serde_json::from_str(&text).unwrap();
                            if let Some(id) = message["id"].as_u64() {
                                if let Some(reply) = replies.lock().unwrap().remove(&id) {
                                    let _ = reply.send(message);
                                }
                            } else if let Some(line) = log_line(&message) {
                                entries.lock().unwrap().push(line);
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return,
                    },
                }
            }
        });
        Self { outgoing, pending, next_id: AtomicU64::new(1), log }
    }

    /// Sends a command (to a page when `session` is given) and returns its result.
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let (reply, answer) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, reply);
        self.outgoing.send(message.to_string()).unwrap();
        let answer = within(30, answer).await.unwrap_or_else(|_| panic!("{method}: the browser went away"));
        if let Some(error) = answer.get("error") {
            panic!("{method}: {error}");
        }
        answer["result"].clone()
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// What a page said on its console, threw, or logged.
fn log_line(message: &Value) -> Option<String> {
    let params = &message["params"];
    match message["method"].as_str()? {
        "Runtime.consoleAPICalled" => {
            let args: Vec<String> = params["args"]
                .as_array()?
                .iter()
                .map(|arg| arg["value"].as_str().map_or_else(|| arg["description"].to_string(), str::to_owned))
                .collect();
            Some(format!("console.{}: {}", params["type"].as_str()?, args.join(" ")))
        }
        "Runtime.exceptionThrown" => Some(format!("exception: {}", params["exceptionDetails"])),
        "Log.entryAdded" => {
            let entry = &params["entry"];
            Some(format!("log {} {}: {}", entry["source"], entry["level"], entry["text"]))
        }
        _ => None,
    }
}

// ---- Headless Chromium ----------------------------------------------------------------------

/// `CHROME_BIN`, else `chromium` or `chromium-browser` on `PATH`.
fn chromium_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROME_BIN") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        if let Some(found) = std::env::split_paths(&path).map(|dir| dir.join(name)).find(|c| c.is_file()) {
            return found;
        }
    }
    panic!(
        "the console test drives headless Chromium, and neither `chromium` nor `chromium-browser` is on PATH: \
         install Debian's `chromium` (`apt-get install chromium`, as .ci/run does) or set CHROME_BIN"
    );
}

struct Chromium {
    child: tokio::process::Child,
    cdp: Cdp,
    /// Profile, downloads and the browser's own log.
    work: PathBuf,
}

impl Chromium {
    async fn launch() -> Self {
        let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("console-chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let profile = work.join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let log = std::fs::File::create(work.join("chromium.log")).unwrap();
        let (width, height) = VIEWPORT;
        let mut child = tokio::process::Command::new(chromium_binary())
            .args([
                "--headless=new",
                // Tests run as root in containers, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--mute-audio",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                &format!("--window-size={width},{height}"),
                &format!("--user-data-dir={}", profile.display()),
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", chromium_binary().display()));
        let url = devtools_url(&mut child, &work).await;
        Self { child, cdp: Cdp::connect(&url).await, work }
    }

    fn downloads(&self) -> PathBuf {
        self.work.join("downloads")
    }

    /// A new tab, sized like an operator's screen, downloading into [`Self::downloads`].
    async fn page(&self) -> Page<'_> {
        let target = self.cdp.call(None, "Target.createTarget", json!({ "url": "about:blank" })).await;
        let attached = self
            .cdp
            .call(None, "Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true }))
            .await;
        let page = Page { cdp: &self.cdp, session: attached["sessionId"].as_str().unwrap().to_owned() };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            page.call(domain, json!({})).await;
        }
        let (width, height) = VIEWPORT;
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
        std::fs::create_dir_all(self.downloads()).unwrap();
        self.cdp
            .call(
                None,
                "Browser.setDownloadBehavior",
                json!({ "behavior": "allow", "downloadPath": self.downloads(), "eventsEnabled": true }),
            )
            .await;
        page
    }

    async fn close(mut self) {
        // The browser closes without answering; waiting for the process is the answer.
        self.cdp.outgoing.send(json!({ "id": 0, "method": "Browser.close" }).to_string()).unwrap();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            self.child.kill().await.unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// The browser's DevTools address, from the `DevToolsActivePort` file it writes in its profile
/// once it listens (port, then path).
async fn devtools_url(child: &mut tokio::process::Child, work: &Path) -> String {
    let file = work.join("profile").join("DevToolsActivePort");
    let browser_log = || std::fs::read_to_string(work.join("chromium.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Some((port, path)) = text.trim().split_once('\n')
        {
            return format!("ws://127.0.0.1:{}{}", port.trim(), path.trim());
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("chromium exited ({status}) before listening:\n{}", browser_log());
        }
        assert!(Instant::now() < deadline, "chromium did not listen within 30 s:\n{}", browser_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One tab.
struct Page<'a> {
    cdp: &'a Cdp,
    session: String,
}

impl Page<'_> {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.cdp.call(Some(&self.session), method, params).await
    }

    async fn navigate(&self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
    }

    /// Evaluates `expression` in the page; its value, or what it threw.
    async fn try_eval(&self, expression: &str) -> Result<Value, String> {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }))
            .await;
        match result.get("exceptionDetails") {
            Some(details) => Err(details.to_string()),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    async fn eval(&self, expression: &str) -> Value {
        self.try_eval(expression).await.unwrap_or_else(|err| panic!("{expression}: {err}"))
    }

    /// Polls `expression` until it is truthy, and returns it; fails after [`PAGE_DEADLINE`] with
    /// what the page shows and logged.
    async fn wait_for(&self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            let last = match self.try_eval(expression).await {
                Ok(value) if !matches!(value, Value::Null | Value::Bool(false)) => return value,
                Ok(value) => value.to_string(),
                Err(err) => err,
            };
            if Instant::now() > deadline {
                let text = self.try_eval("document.body?.innerText").await.unwrap_or_default();
                panic!(
                    "timed out after {PAGE_DEADLINE:?} waiting for {what} (last: {last})\n--- page text:\n{}\n--- log:\n{}",
                    text.as_str().unwrap_or_default(),
                    self.cdp.log().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the middle of the element as a user would (a real mouse event at a point where
    /// the element is visible, enabled and on top).
    async fn click(&self, selector: &str) {
        let probe = format!(
            r#"(() => {{
                const el = document.querySelector({selector});
                if (!el || el.disabled) return null;
                el.scrollIntoView({{ block: 'center', inline: 'center' }});
                const box = el.getBoundingClientRect();
                if (box.width === 0 || box.height === 0) return null;
                const x = box.left + box.width / 2, y = box.top + box.height / 2;
                const hit = document.elementFromPoint(x, y);
                return hit && (hit === el || el.contains(hit)) ? {{ x, y }} : null;
            }})()"#,
            selector = json!(selector)
        );
        let point = self.wait_for(&format!("{selector} to be clickable"), &probe).await;
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            let event = json!({ "type": kind, "x": point["x"], "y": point["y"], "button": "left", "clickCount": 1 });
            self.call("Input.dispatchMouseEvent", event).await;
        }
    }

    /// Focuses the field and types `text` into it.
    async fn type_into(&self, selector: &str, text: &str) {
        self.eval(&format!("document.querySelector({}).focus()", json!(selector))).await;
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    async fn screenshot(&self, path: &Path) -> Vec<u8> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" })).await;
        let png = base64_decode(shot["data"].as_str().unwrap());
        std::fs::write(path, &png).unwrap();
        png
    }
}

/// Standard base64 (RFC 4648, with padding), as CDP sends binary data.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", c as char),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let bits = chunk.iter().enumerate().fold(0u32, |acc, (i, &c)| acc | value(c) << (18 - 6 * i));
        let [_, a, b, c] = bits.to_be_bytes();
        out.extend_from_slice(&[a, b, c][..chunk.len() - 1]);
    }
    out
}

// ---- A network that can fail ----------------------------------------------------------------

/// A TCP proxy in front of the API that can cut every open connection, as a network blip would,
/// and remembers the first request line of each connection.
struct Proxy {
    address: std::net::SocketAddr,
    cut: broadcast::Sender<()>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, _) = broadcast::channel(4);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (cuts, seen) = (cut.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (mut cut, seen) = (cuts.subscribe(), seen.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
                    let mut head = [0; 2048];
                    if let Ok(read) = client.peek(&mut head).await {
                        let text = String::from_utf8_lossy(&head[..read]);
                        seen.lock().unwrap().push(text.lines().next().unwrap_or_default().to_owned());
                    }
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.recv() => {}
                    }
                });
            }
        });
        Self { address, cut, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Drops every connection open now; later ones go through.
    fn cut(&self) {
        self.cut.send(()).unwrap();
    }

    /// The `after` of every connection to a live route starting with `path`.
    fn resumed_after(&self, path: &str) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter_map(|line| line.split(' ').nth(1)?.strip_prefix(path)?.split_once('?'))
            .map(|(_, query)| {
                query.split('&').find_map(|pair| pair.strip_prefix("after=")).unwrap_or_default().to_owned()
            })
            .collect()
    }
}

// ---- Events ---------------------------------------------------------------------------------

fn said(call_id: &str, leg: &str, n: u64, stage: Stage, text: &str) -> Event {
    let Event::TranscriptProduced(mut event) = transcript(call_id, leg, n, stage) else { unreachable!() };
    event.text = text.to_owned();
    if leg == "callee" {
        event.language = "en".into();
        event.targets = vec!["es".into()];
    }
    Event::TranscriptProduced(event)
}

fn translated(call_id: &str, leg: &str, n: u64, source: &str, target: &str, text: &str) -> Event {
    let Event::TranscriptProduced(original) = said(call_id, leg, n, Stage::Final, source) else { unreachable!() };
    Event::TranslationProduced(TranslationProduced {
        meta: dragoman_bus::events::EventMeta { event_id: uuid::Uuid::now_v7(), ..original.meta },
        leg: original.leg,
        utterance_id: original.utterance_id,
        sequence: original.sequence,
        stage: Stage::Final,
        source_language: original.language,
        source_text: original.text,
        target_language: target.into(),
        text: text.into(),
        start_ms: original.start_ms,
        end_ms: original.end_ms,
        engine: "nllb-200".into(),
        model: "nllb-200-distilled-600M".into(),
        elapsed_ms: 40,
    })
}

/// A JavaScript string literal.
fn js(text: &str) -> String {
    json!(text).to_string()
}

// ---- Tests ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_open_with_a_strict_policy_and_its_data_needs_the_token() {
    let api = start(|_| {}).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for from in ["/", "/console"] {
        let answer = http.get(api.url(from)).send().await.unwrap();
        assert!(answer.status().is_redirection(), "{from}: {}", answer.status());
        assert_eq!(answer.headers()["location"], "/console/", "{from}");
    }
    for (path, content_type, needle) in [
        ("/console/", "text/html; charset=utf-8", "<script type=\"module\" src=\"console.js\">"),
        ("/console/index.html", "text/html; charset=utf-8", "id=\"call-list\""),
        ("/console/console.js", "text/javascript; charset=utf-8", "class LiveSocket"),
        ("/console/console.css", "text/css; charset=utf-8", ".utterance.partial"),
        ("/console/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let answer = http.get(api.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let headers = answer.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["content-security-policy"], dragoman_api::console::CONTENT_SECURITY_POLICY, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(answer.text().await.unwrap().contains(needle), "{path} should contain {needle}");
    }
    let policy = dragoman_api::console::CONTENT_SECURITY_POLICY;
    for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{policy} lacks {directive}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    harness::assert_problem(http.get(api.url("/console/secrets.txt")).send().await.unwrap(), 404, "no console file")
        .await;

    // What the console asks for first: the languages, behind the token.
    harness::assert_problem(http.get(api.url("/v1/languages")).send().await.unwrap(), 401, "missing bearer token")
        .await;
    let languages: Value = api.get("/v1/languages").send().await.unwrap().json().await.unwrap();
    let languages = languages["languages"].as_array().unwrap();
    assert!(languages.iter().any(|l| l["code"] == "es" && l["name"] == "Spanish"), "{languages:?}");
    let codes: Vec<&str> = languages.iter().map(|l| l["code"].as_str().unwrap()).collect();
    assert!(codes.is_sorted() && codes.len() > 20, "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_follows_a_call_live_changes_a_language_downloads_the_transcript_and_hangs_up() {
    let api = start(|_| {}).await;
    api.publish(&common::whole_call("earlier", 2)).await;
    api.wait_stored("earlier", 8).await;
    // The browser reaches the API through a proxy that can drop its connections.
    let proxy = Proxy::start(api.address).await;
    let browser = Chromium::launch().await;
    let page = browser.page().await;

    // A wrong token: refused with the API's reason, and no call is shown.
    page.navigate(&proxy.url("/console/#token=not-a-token")).await;
    page.wait_for(
        "the wrong token to be refused",
        "(() => { const e = document.getElementById('sign-in-error'); \
          return e && !e.hidden && e.textContent.includes('not one of api.tokens'); })()",
    )
    .await;
    assert_eq!(page.eval("document.getElementById('workspace').hidden").await, true);
    assert_eq!(page.eval("document.querySelectorAll('#call-list li').length").await, 0);
    assert_eq!(page.eval("location.hash").await, "", "the token is taken out of the address bar");

    // The right token, pasted into the form: the earlier call is listed, and the feed is live.
    page.type_into("#token-input", TOKEN).await;
    page.click("#token-submit").await;
    page.wait_for(
        "the earlier call to be listed as ended",
        "document.querySelector('#call-list [data-call=\"earlier\"] .badge')?.textContent === 'Ended'",
    )
    .await;
    page.wait_for("the feed to be live", "document.getElementById('connection').dataset.state === 'live'").await;

    // A new call arrives over /v1/live (the list was read before it started), active first.
    let call = "desk-0042";
    api.publish(&[started(call, 0), joined(call, "caller", "es", "en", 1), joined(call, "callee", "en", "es", 2)])
        .await;
    page.wait_for(
        "the new call at the top of the list with its legs",
        &format!(
            "(() => {{ const first = document.querySelector('#call-list li'); \
               return first?.dataset.call === {call} && first.querySelector('.badge').textContent === 'Active' \
                 && first.textContent.includes('Ana (+34600000000) → Desk (200)') \
                 && first.textContent.includes('caller: es → en · callee: en → es') \
                 && document.title === '(1) Dragoman console'; }})()",
            call = js(call)
        ),
    )
    .await;

    // Selected: one column per leg, side by side, with the party and language.
    page.click(&format!("#call-list [data-call={}] button", js(call))).await;
    page.wait_for(
        "the two legs side by side",
        "(() => { const legs = [...document.querySelectorAll('#legs .leg')]; \
           if (legs.length !== 2) return false; \
           const [a, b] = legs.map(l => l.getBoundingClientRect()); \
           return legs.map(l => l.dataset.leg + '=' + l.querySelector('.leg-language').textContent).join() \
               === 'caller=Spanish (es),callee=English (en)' \
             && legs[0].querySelector('.party').textContent === 'Ana (+34600000000)' \
             && a.right <= b.left && Math.abs(a.top - b.top) < 1; })()",
    )
    .await;

    // A partial: shown at once, styled as provisional.
    let utterance = utterance_id(call, "caller", 0).to_string();
    let selector = js(&format!("[data-utterance=\"{utterance}\"]"));
    api.publish(&[said(call, "caller", 0, Stage::Partial, "Hola, llamo por mi")]).await;
    page.wait_for(
        "the partial, provisional, in the caller's column",
        &format!(
            "(() => {{ const u = document.querySelector({selector}); \
               if (!u || !u.classList.contains('partial') || u.closest('.leg').dataset.leg !== 'caller') return false; \
               const text = u.querySelector('.original .text'); \
               u.dataset.probe = 'first'; \
               return text.textContent === 'Hola, llamo por mi' && getComputedStyle(text).fontStyle === 'italic'; }})()"
        ),
    )
    .await;

    // Its final replaces it in place, with the translation beneath.
    let final_text = "Hola, llamo por mi factura de mayo.";
    let translation = "Hello, I am calling about my May invoice.";
    api.publish(&[
        said(call, "caller", 0, Stage::Final, final_text),
        translated(call, "caller", 0, final_text, "en", translation),
    ])
    .await;
    page.wait_for(
        "the final in place of the partial, and its translation",
        &format!(
            "(() => {{ const u = document.querySelector({selector}); \
               if (!u || u.dataset.probe !== 'first' || !u.classList.contains('final')) return false; \
               const text = u.querySelector('.original .text'); \
               return text.textContent === {final_text} && getComputedStyle(text).fontStyle === 'normal' \
                 && u.querySelector('.translation[data-language=\"en\"] .text')?.textContent === {translation} \
                 && document.querySelectorAll('#legs .utterance').length === 1 \
                 && document.querySelectorAll('#legs .partial').length === 0; }})()",
            final_text = js(final_text),
            translation = js(translation)
        ),
    )
    .await;

    // The network drops; the other side answers meanwhile (markup in what is said stays text).
    // Both sockets come back after what they saw: the answer shows once, nothing shows twice.
    proxy.cut();
    let answer = "Let me check <em>that</em> for you.";
    api.publish(&[
        said(call, "callee", 1, Stage::Final, answer),
        translated(call, "callee", 1, answer, "es", "Déjeme comprobar <em>eso</em>."),
    ])
    .await;
    page.wait_for(
        "the callee's answer as text, after the reconnect",
        &format!(
            "(() => {{ const leg = document.querySelector('#legs .leg[data-leg=\"callee\"]'); \
               return leg?.querySelector('.utterance.final .original .text')?.textContent === {answer} \
                 && leg.querySelector('.translation[data-language=\"es\"]') !== null \
                 && document.querySelectorAll('#legs em').length === 0 \
                 && document.querySelectorAll('#legs .utterance').length === 2 \
                 && document.querySelectorAll('#legs .translation').length === 2 \
                 && document.querySelector({selector}).dataset.probe === 'first' \
                 && document.querySelectorAll('#call-list li').length === 2; }})()",
            answer = js(answer)
        ),
    )
    .await;
    page.wait_for("the feed live again", "document.getElementById('connection').dataset.state === 'live'").await;
    let call_after = proxy.resumed_after(&format!("/v1/calls/{call}/live"));
    assert!(call_after.len() >= 2 && call_after[0] == "0", "the call's socket: {call_after:?}");
    assert!(call_after[1..].iter().all(|after| after.parse::<u64>().unwrap() >= 5), "resumed: {call_after:?}");
    let feed_after = proxy.resumed_after("/v1/live");
    assert!(feed_after.len() >= 2 && feed_after[0].is_empty(), "the feed: {feed_after:?}");
    assert!(feed_after[1..].iter().all(|after| !after.is_empty()), "the feed resumed after a cursor: {feed_after:?}");

    // A language button with no gateway to take the change: the API's problem detail is shown.
    let french = "#legs .leg[data-leg=\"callee\"] button.lang-button[data-language=\"fr\"]";
    page.click(french).await;
    page.wait_for(
        "the refused change's reason in the callee's column",
        "(() => { const e = document.querySelector('#legs .leg[data-leg=\"callee\"] .error'); \
           return e && !e.hidden && e.textContent.includes('call control is unavailable'); })()",
    )
    .await;

    // With the gateway up, the same button reaches it: the callee now speaks French.
    let asked = fake_gateway(&api.bus).await;
    page.click(french).await;
    within(20, async {
        while asked.lock().unwrap().set_language.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let changed = asked.lock().unwrap().set_language.clone();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(
        (changed[0].call_id.as_str(), changed[0].leg.as_str(), changed[0].language.as_str()),
        (call, "callee", "fr")
    );
    assert_eq!(changed[0].targets, ["es"], "the leg keeps its translation targets");
    page.wait_for(
        "the change confirmed and the error cleared",
        "(() => { const leg = document.querySelector('#legs .leg[data-leg=\"callee\"]'); \
           return leg.querySelector('.error').hidden && leg.querySelector('.status').textContent.includes('Applied'); })()",
    )
    .await;

    // The transcript download carries the token: the file is saved with both sides in it.
    page.click("#call-view button[data-format=\"txt\"]").await;
    let file = browser.downloads().join(format!("dragoman-{call}.txt"));
    let saved = within(20, async {
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && text.contains(translation)
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(saved.contains(&format!("caller: {final_text}")), "{saved}");
    assert!(saved.contains(&format!("[en] {translation}")), "{saved}");
    assert!(saved.contains(&format!("callee: {answer}")), "{saved}");
    page.wait_for(
        "the download reported",
        &format!(
            "document.getElementById('call-status').textContent.startsWith({})",
            js(&format!("Saved dragoman-{call}.txt"))
        ),
    )
    .await;

    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    let png = page.screenshot(&path).await;
    println!("console screenshot: {}", path.display());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (width, height) = VIEWPORT;
    assert_eq!(&png[12..16], b"IHDR");
    assert_eq!((&png[16..20], &png[20..24]), (&width.to_be_bytes()[..], &height.to_be_bytes()[..]));
    assert!(png.len() > 20_000, "a {} byte screenshot is too small to show the console", png.len());

    // Hang-up takes a second click; then the call ends and the console says so.
    page.click("#hangup").await;
    page.wait_for("the hang-up confirmation", "document.getElementById('hangup').dataset.confirm === 'yes'").await;
    assert!(asked.lock().unwrap().hangup.is_empty(), "one click does not hang up");
    page.click("#hangup").await;
    within(20, async {
        while asked.lock().unwrap().hangup.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(asked.lock().unwrap().hangup[0].call_id, call);
    api.publish(&[ended(call, 60)]).await;
    page.wait_for(
        "the call shown as ended, its controls off",
        &format!(
            "document.getElementById('hangup').disabled \
             && document.getElementById('call-meta').textContent.includes('ended (hangup)') \
             && document.querySelector({french}).disabled \
             && document.querySelector('#call-list [data-call={call}] .badge').textContent === 'Ended'",
            french = js(french),
            call = js(call)
        ),
    )
    .await;

    let log = browser.cdp.log();
    // The log is read: it holds the refused token's 401 (and the 503 of the first language change).
    assert!(log.iter().any(|line| line.contains("status of 401")), "no 401 logged:\n{}", log.join("\n"));
    assert!(!log.iter().any(|line| line.starts_with("exception")), "the page threw:\n{}", log.join("\n"));
    assert!(
        !log.iter().any(|line| line.contains("Content Security Policy")),
        "the policy blocked something the console needs (e.g. its WebSocket):\n{}",
        log.join("\n")
    );
    drop(page);
    browser.close().await;
}
