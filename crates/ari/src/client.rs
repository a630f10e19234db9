//! [`AriClient`]: the REST half of ARI over one pooled reqwest client.
//!
//! The client is an `Arc` inside: clone it freely. Requests share reqwest's connection pool,
//! so concurrent calls run in parallel on as many connections as they need; nothing
//! serialises them. The operations themselves live in [`crate::channels`],
//! [`crate::bridges`] and [`crate::resources`].

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::AriError;

/// How requests prove who they are; Asterisk accepts either (`res_ari.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// An HTTP Basic `Authorization` header.
    #[default]
    Basic,
    /// An `api_key=user:password` query parameter (kept out of logs and errors).
    ApiKey,
}

/// Where ARI is and how to talk to it.
#[derive(Debug, Clone)]
pub struct AriConfig {
    /// Asterisk's HTTP server: `http://127.0.0.1:8088` or `https://pbx.example:8089`. With a
    /// `prefix` in http.conf, include it: `http://pbx:8088/asterisk`. `/ari` is added (a URL
    /// that already ends in `/ari` is taken as meaning the same).
    pub url: String,
    /// An ari.conf user.
    pub username: String,
    pub password: SecretString,
    pub auth: AuthMode,
    /// Longest a REST request may take, answer included.
    pub request_timeout: Duration,
    /// Longest a TCP (and TLS) connect may take.
    pub connect_timeout: Duration,
    /// Idle pooled connections are closed after this. Keep it below Asterisk's http.conf
    /// `session_keep_alive` (15 s by default) so a request never goes out on a connection
    /// Asterisk is closing.
    pub pool_idle_timeout: Duration,
}

impl AriConfig {
    /// Basic auth, 10 s requests, 3 s connects, idle connections kept 10 s.
    pub fn new(url: impl Into<String>, username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            username: username.into(),
            password: SecretString::from(password.into()),
            auth: AuthMode::Basic,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            pool_idle_timeout: Duration::from_secs(10),
        }
    }

    /// Sends credentials as `api_key` instead of a Basic header.
    pub fn api_key_auth(mut self) -> Self {
        self.auth = AuthMode::ApiKey;
        self
    }

    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }
}

/// A client for ARI's REST interface. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct AriClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Computed once: `Basic …` for [`AuthMode::Basic`].
    authorization: Option<HeaderValue>,
    /// The server URL with any prefix, path ending without `/`; `ari` is pushed per request.
    base: Url,
    config: AriConfig,
}

impl fmt::Debug for AriClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AriClient")
            .field("url", &self.inner.base.as_str())
            .field("username", &self.inner.config.username)
            .field("auth", &self.inner.config.auth)
            .finish_non_exhaustive()
    }
}

impl AriClient {
    /// Builds a client; nothing is sent until the first request.
    pub fn new(config: AriConfig) -> Result<Self, AriError> {
        let invalid = |reason: &str| AriError::InvalidUrl { url: config.url.clone(), reason: reason.to_owned() };
        let mut base = Url::parse(&config.url).map_err(|err| invalid(&err.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("scheme must be http or https"));
        }
        if base.cannot_be_a_base() || base.host_str().is_none() {
            return Err(invalid("no host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("query and fragment are not allowed"));
        }
        base.path_segments_mut().map_err(|()| invalid("no path"))?.pop_if_empty();
        if base.path_segments().and_then(|mut segments| segments.next_back()) == Some("ari") {
            base.path_segments_mut().map_err(|()| invalid("no path"))?.pop();
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(config.pool_idle_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|err| invalid(&err.to_string()))?;
        let authorization = match config.auth {
            AuthMode::Basic => Some(basic_header(&http, &base, &config)?),
            AuthMode::ApiKey => None,
        };
        Ok(Self { inner: Arc::new(Inner { http, authorization, base, config }) })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &AriConfig {
        &self.inner.config
    }

    /// `<base>/ari/<segments…>`, each segment percent-encoded.
    pub(crate) fn ari_url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.push("ari").extend(segments);
        }
        url
    }

    /// Adds `api_key` when that is the auth mode.
    pub(crate) fn add_api_key(&self, query: &mut Query) {
        if self.inner.config.auth == AuthMode::ApiKey {
            let config = &self.inner.config;
            query.push("api_key", format!("{}:{}", config.username, config.password.expose_secret()));
        }
    }

    /// The `Authorization` header value for Basic auth, when that is the auth mode.
    pub(crate) fn basic_authorization(&self) -> Option<HeaderValue> {
        self.inner.authorization.clone()
    }

    /// Sends one request and returns the body of a 2xx answer.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        mut query: Query,
        body: Option<Value>,
    ) -> Result<Bytes, AriError> {
        let mut url = self.ari_url(segments);
        let path = url.path().to_owned();
        let method_name = method.as_str().to_owned();
        self.add_api_key(&mut query);
        if !query.is_empty() {
            url.set_query(Some(&query.encode()));
        }
        let mut request = self.inner.http.request(method, url);
        if let Some(header) = self.basic_authorization() {
            request = request.header(AUTHORIZATION, header);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let started = Instant::now();
        let transport = |source: reqwest::Error| {
            if source.is_timeout() {
                AriError::Timeout {
                    method: method_name.clone(),
                    path: path.clone(),
                    timeout: self.inner.config.request_timeout,
                }
            } else {
                AriError::transport(&method_name, &path, source)
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        tracing::debug!(
            method = %method_name,
            path = %path,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ari request"
        );
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(AriError::from_status(&method_name, &path, status.as_u16(), &bytes))
        }
    }

    /// Sends a request and decodes its JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: Query,
        body: Option<Value>,
    ) -> Result<T, AriError> {
        let method_name = method.as_str().to_owned();
        let bytes = self.send(method, segments, query, body).await?;
        serde_json::from_slice(&bytes).map_err(|source| AriError::Decode {
            method: method_name,
            path: self.ari_url(segments).path().to_owned(),
            source,
        })
    }

    /// Sends a request whose answer has no body worth reading (`void` in the spec, HTTP 204).
    pub(crate) async fn empty(
        &self,
        method: Method,
        segments: &[&str],
        query: Query,
        body: Option<Value>,
    ) -> Result<(), AriError> {
        self.send(method, segments, query, body).await.map(drop)
    }
}

/// `Basic base64(user:password)`, marked sensitive so it stays out of debug output. reqwest
/// does the encoding; borrowing its header avoids hand-rolling base64.
fn basic_header(http: &reqwest::Client, base: &Url, config: &AriConfig) -> Result<HeaderValue, AriError> {
    let request = http
        .get(base.clone())
        .basic_auth(&config.username, Some(config.password.expose_secret()))
        .build()
        .map_err(|err| AriError::InvalidUrl { url: config.url.clone(), reason: err.to_string() })?;
    let mut header = request
        .headers()
        .get(AUTHORIZATION)
        .cloned()
        .ok_or_else(|| AriError::InvalidUrl { url: config.url.clone(), reason: "no basic auth header".to_owned() })?;
    header.set_sensitive(true);
    Ok(header)
}

/// Query parameters of one request, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pairs: Vec<(&'static str, String)>,
}

impl Query {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&mut self, name: &'static str, value: impl fmt::Display) -> &mut Self {
        self.pairs.push((name, value.to_string()));
        self
    }

    pub(crate) fn opt(&mut self, name: &'static str, value: Option<impl fmt::Display>) -> &mut Self {
        if let Some(value) = value {
            self.push(name, value);
        }
        self
    }

    /// An `allowMultiple` parameter: values joined with commas; left out when empty.
    pub(crate) fn list<S: AsRef<str>>(&mut self, name: &'static str, values: &[S]) -> &mut Self {
        if !values.is_empty() {
            let joined: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
            self.push(name, joined.join(","));
        }
        self
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `name=value&…` with everything but RFC 3986 unreserved characters percent-encoded
    /// (spaces as `%20`, never `+`).
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        for (index, (name, value)) in self.pairs.iter().enumerate() {
            if index > 0 {
                out.push('&');
            }
            percent_encode(name, &mut out);
            out.push('=');
            percent_encode(value, &mut out);
        }
        out
    }
}

fn percent_encode(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A panic is a test failure.
mod tests {
    use super::*;

    fn client(url: &str) -> Result<AriClient, AriError> {
        AriClient::new(AriConfig::new(url, "dragoman", "s3cret"))
    }

    #[test]
    fn query_is_percent_encoded_without_plus() {
        let mut query = Query::new();
        query
            .push("variable", "TALK_DETECT(set)")
            .push("value", "")
            .list("media", &["sound:hello world", "tone:ring;tonezone=fr"])
            .opt("lang", None::<&str>)
            .opt("skipms", Some(3000));
        assert_eq!(
            query.encode(),
            "variable=TALK_DETECT%28set%29&value=&media=sound%3Ahello%20world%2Ctone%3Aring%3Btonezone%3Dfr&skipms=3000"
        );
        assert_eq!(Query::new().list::<&str>("channel", &[]).encode(), "");
    }

    #[test]
    fn path_segments_are_encoded_and_prefix_kept() {
        let plain = client("http://127.0.0.1:8088").unwrap();
        assert_eq!(plain.ari_url(&["channels", "a/b c?"]).as_str(), "http://127.0.0.1:8088/ari/channels/a%2Fb%20c%3F");
        let prefixed = client("https://pbx.example:8089/asterisk/").unwrap();
        assert_eq!(
            prefixed.ari_url(&["asterisk", "ping"]).as_str(),
            "https://pbx.example:8089/asterisk/ari/asterisk/ping"
        );
        for url in ["http://pbx:8088/ari", "http://pbx:8088/ari/"] {
            assert_eq!(
                client(url).unwrap().ari_url(&["asterisk", "ping"]).as_str(),
                "http://pbx:8088/ari/asterisk/ping"
            );
        }
    }

    #[test]
    fn rejects_unusable_urls() {
        for url in ["ftp://pbx", "not a url", "http://pbx:8088/?x=1", "mailto:ops@example.com"] {
            let err = client(url).unwrap_err();
            assert!(matches!(err, AriError::InvalidUrl { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let client = client("http://127.0.0.1:8088").unwrap();
        let debug = format!("{client:?} {:?}", client.config());
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn auth_mode_picks_header_or_query() {
        let basic = client("http://127.0.0.1:8088").unwrap();
        let header = basic.basic_authorization().unwrap();
        // base64("dragoman:s3cret")
        assert_eq!(header.to_str().unwrap(), "Basic ZHJhZ29tYW46czNjcmV0");
        let mut query = Query::new();
        basic.add_api_key(&mut query);
        assert!(query.is_empty());

        let keyed = AriClient::new(AriConfig::new("http://127.0.0.1:8088", "u", "p w").api_key_auth()).unwrap();
        assert!(keyed.basic_authorization().is_none());
        let mut query = Query::new();
        keyed.add_api_key(&mut query);
        assert_eq!(query.encode(), "api_key=u%3Ap%20w");
    }
}
