//! The Hugging Face hub over HTTP: a revision's commit, a repository's file list with sizes and
//! checksums, and files streamed to disk, hashed as they arrive, checked and renamed into place.
//!
//! The endpoints are the ones `huggingface_hub` itself uses:
//! `GET /api/models/{repo}/revision/{revision}` (the commit: `sha`),
//! `GET /api/models/{repo}/tree/{revision}` (files: `path`, `size`, `oid` = git blob id, and
//! `lfs.oid` = SHA-256 for LFS files; paginated through `Link: <…>; rel="next"`) and
//! `GET /{repo}/resolve/{revision}/{file}` (the bytes; LFS files redirect to a CDN).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use dragoman_runtime::Secret;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use super::manifest::{Hasher, Hashes};

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The hub's own variable for a mirror or a private hub (as `huggingface_hub` reads it).
pub const ENDPOINT_ENV: &str = "HF_ENDPOINT";
/// The hub's own variable for an access token, sent as a bearer token when set.
pub const TOKEN_ENV: &str = "HF_TOKEN";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// No byte for this long fails the download rather than hanging it.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// A tree listing longer than this many pages is not a model repository.
const MAX_TREE_PAGES: usize = 100;

/// A client for one hub endpoint.
#[derive(Debug, Clone)]
pub struct Hub {
    client: reqwest::Client,
    endpoint: String,
    token: Option<Secret>,
}

/// A file of a repository, as the tree listing describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub path: String,
    pub size: u64,
    pub checksum: Checksum,
}

/// What the hub says a file's bytes hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// LFS files: the SHA-256 of the content (`lfs.oid`).
    Sha256(String),
    /// Files kept in git itself: the blob id (`oid`), SHA-1 of `blob <size>\0` + content.
    GitBlobSha1(String),
}

impl RemoteFile {
    /// Checks downloaded or local bytes against the listing: size first, then the checksum.
    pub fn check(&self, hashes: &Hashes) -> Result<(), String> {
        if hashes.len != self.size {
            return Err(format!("{}: expected {} bytes, got {} bytes", self.path, self.size, hashes.len));
        }
        match &self.checksum {
            Checksum::Sha256(expected) if *expected != hashes.sha256 => {
                Err(format!("{}: sha256 mismatch: expected {expected}, got {}", self.path, hashes.sha256))
            }
            Checksum::GitBlobSha1(expected) if *expected != hashes.git_blob_sha1 => Err(format!(
                "{}: git blob sha1 mismatch: expected {expected}, got {} (sha256 {})",
                self.path, hashes.git_blob_sha1, hashes.sha256
            )),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    lfs: Option<LfsInfo>,
}

#[derive(Debug, Deserialize)]
struct LfsInfo {
    oid: String,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct RevisionInfo {
    #[serde(default)]
    sha: Option<String>,
}

/// The hub's error body: `{"error": "Repository not found"}`.
#[derive(Debug, Deserialize)]
struct HubErrorBody {
    error: String,
}

impl Hub {
    /// A client for `endpoint`, else `$HF_ENDPOINT`, else the public hub; `$HF_TOKEN` is sent
    /// as a bearer token when it is set and not empty.
    pub fn from_env(endpoint: Option<String>) -> anyhow::Result<Self> {
        let endpoint = endpoint
            .or_else(|| std::env::var(ENDPOINT_ENV).ok().filter(|value| !value.is_empty()))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            bail!("the hub endpoint {endpoint:?} is not an http(s) URL");
        }
        let token = std::env::var(TOKEN_ENV).ok().filter(|value| !value.is_empty()).map(Secret::new);
        // reqwest follows up to 10 redirects (the hub sends LFS files to a CDN) and drops the
        // Authorization header when a redirect leaves the endpoint's host.
        let client = reqwest::Client::builder()
            .user_agent(concat!("dragoman/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .context("build the HTTP client")?;
        Ok(Self { client, endpoint, token })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// GETs `url`; any status but success is an error naming the URL, the status and the hub's
    /// message.
    async fn get(&self, url: &str) -> anyhow::Result<reqwest::Response> {
        let mut request = self.client.get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<HubErrorBody>(&body)
            .map(|body| body.error)
            .unwrap_or_else(|_| body.chars().take(200).collect::<String>().trim().to_owned());
        let hint = match status.as_u16() {
            401 | 403 => format!(" (a private or gated repository needs {TOKEN_ENV})"),
            _ => String::new(),
        };
        if message.is_empty() {
            bail!("GET {url}: HTTP {status}{hint}");
        }
        bail!("GET {url}: HTTP {status}: {message}{hint}");
    }

    /// The commit `revision` (a branch, tag or commit) of `repo` points at, when the hub says.
    pub async fn commit(&self, repo: &str, revision: &str) -> anyhow::Result<Option<String>> {
        let url = format!("{}/api/models/{}/revision/{}", self.endpoint, repo_path(repo)?, encode(revision));
        let info: RevisionInfo = self.get(&url).await?.json().await.with_context(|| format!("parse GET {url}"))?;
        Ok(info.sha.filter(|sha| !sha.is_empty()))
    }

    /// The files at the root of `repo` at `revision`.
    pub async fn files(&self, repo: &str, revision: &str) -> anyhow::Result<Vec<RemoteFile>> {
        let mut url = format!("{}/api/models/{}/tree/{}", self.endpoint, repo_path(repo)?, encode(revision));
        let mut files = Vec::new();
        for _ in 0..MAX_TREE_PAGES {
            let response = self.get(&url).await?;
            let next = next_link(response.headers());
            let entries: Vec<TreeEntry> = response.json().await.with_context(|| format!("parse GET {url}"))?;
            for entry in entries.into_iter().filter(|entry| entry.kind == "file") {
                let checksum = match (entry.lfs, entry.oid) {
                    (Some(lfs), _) => {
                        if lfs.size.is_some_and(|size| size != entry.size) {
                            bail!("GET {url}: {} has two sizes", entry.path);
                        }
                        Checksum::Sha256(lfs.oid.to_ascii_lowercase())
                    }
                    (None, Some(oid)) => Checksum::GitBlobSha1(oid.to_ascii_lowercase()),
                    (None, None) => bail!("GET {url}: the hub gives no checksum for {}", entry.path),
                };
                files.push(RemoteFile { path: entry.path, size: entry.size, checksum });
            }
            match next {
                Some(next) => url = next,
                None => return Ok(files),
            }
        }
        bail!("GET {url}: more than {MAX_TREE_PAGES} pages of files; not a model repository")
    }

    /// Downloads `file` of `repo` at `revision` into `dir`: streamed to a temporary file there,
    /// hashed on the way, checked against the listing and renamed into place. On any failure
    /// the temporary file is deleted and nothing is left at the destination.
    pub async fn download(&self, repo: &str, revision: &str, file: &RemoteFile, dir: &Path) -> anyhow::Result<Hashes> {
        let url = format!(
            "{}/{}/resolve/{}/{}",
            self.endpoint,
            repo_path(repo)?,
            encode(revision),
            file.path.split('/').map(encode).collect::<Vec<_>>().join("/")
        );
        let destination = dir.join(&file.path);
        let mut partial =
            TempFile { path: dir.join(format!(".{}.{}.partial", file.path, std::process::id())), keep: false };
        let bar = progress_bar(file);
        let streamed = self.stream_to(&url, repo, file, &partial.path, &bar).await;
        bar.finish_and_clear();
        let hashes = streamed?;
        if let Err(mismatch) = file.check(&hashes) {
            bail!("{mismatch} (downloaded from {url}); the partial download was deleted");
        }
        std::fs::rename(&partial.path, &destination)
            .with_context(|| format!("rename {} to {}", partial.path.display(), destination.display()))?;
        partial.keep = true;
        Ok(hashes)
    }

    /// Streams `url` into `path`, hashing as it goes; stops at the first byte past the listed
    /// size, so a misbehaving server cannot fill the disk.
    async fn stream_to(
        &self,
        url: &str,
        repo: &str,
        file: &RemoteFile,
        path: &Path,
        bar: &ProgressBar,
    ) -> anyhow::Result<Hashes> {
        let mut response = self.get(url).await?;
        let mut out = tokio::fs::File::create(path).await.with_context(|| format!("create {}", path.display()))?;
        let mut hasher = Hasher::new(file.size);
        while let Some(chunk) = response.chunk().await.with_context(|| format!("download {url}"))? {
            hasher.update(&chunk);
            if hasher.bytes_seen() > file.size {
                bail!(
                    "{} from {repo}: the server sent more than the {} bytes the hub lists; the partial download was deleted",
                    file.path,
                    file.size
                );
            }
            out.write_all(&chunk).await.with_context(|| format!("write {}", path.display()))?;
            bar.inc(chunk.len() as u64);
        }
        out.sync_all().await.with_context(|| format!("write {}", path.display()))?;
        Ok(hasher.finish())
    }
}

/// A temporary file removed on drop unless kept: an error, a cancelled future (Ctrl-C) or a
/// panic all leave no partial download behind.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            // It may not exist yet (the request failed first); nothing else to report then.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
fn progress_bar(file: &RemoteFile) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(file.size), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(file.path.clone());
    bar
}

/// `owner/name`, checked so it cannot reach outside the repository's URLs.
fn repo_path(repo: &str) -> anyhow::Result<String> {
    let valid = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if valid(owner) && valid(name) => Ok(format!("{owner}/{name}")),
        _ => bail!("{repo:?} is not a hub repository (owner/name)"),
    }
}

/// Percent-encodes one URL path segment (everything but RFC 3986's unreserved characters), as
/// `huggingface_hub` quotes revisions (`refs/pr/1` → `refs%2Fpr%2F1`).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The `rel="next"` target of a `Link` header, as the hub paginates tree listings.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers.get_all(reqwest::header::LINK).iter().filter_map(|value| value.to_str().ok()).find_map(|value| {
        value.split(',').find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            params.split(';').any(|param| param.trim() == "rel=\"next\"").then(|| target.to_owned())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_and_files_are_quoted_like_huggingface_hub() {
        assert_eq!(encode("main"), "main");
        assert_eq!(encode("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(encode("ggml-tiny.en.bin"), "ggml-tiny.en.bin");
        assert_eq!(encode("a b"), "a%20b");
    }

    #[test]
    fn repositories_must_be_owner_slash_name() {
        assert_eq!(
            repo_path("Systran/faster-whisper-tiny.en").expect("a repository"),
            "Systran/faster-whisper-tiny.en"
        );
        for bad in ["Systran", "a/b/c", "../x", "a/..", "a/b?c", "/b"] {
            assert!(repo_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            "<https://hub/api/models/a/b/tree/main?cursor=xyz>; rel=\"next\"".parse().expect("a header value"),
        );
        assert_eq!(next_link(&headers).as_deref(), Some("https://hub/api/models/a/b/tree/main?cursor=xyz"));
        assert_eq!(next_link(&reqwest::header::HeaderMap::new()), None);
    }

    #[test]
    fn a_download_is_checked_by_size_then_by_the_hubs_checksum() {
        let mut hasher = Hasher::new(6);
        hasher.update(b"hello\n");
        let hashes = hasher.finish();
        let lfs = RemoteFile {
            path: "model.bin".into(),
            size: 6,
            checksum: Checksum::Sha256("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03".into()),
        };
        assert_eq!(lfs.check(&hashes), Ok(()));
        let git = RemoteFile {
            path: "config.json".into(),
            size: 6,
            checksum: Checksum::GitBlobSha1("ce013625030ba8dba906f756967f9e9ca394464a".into()),
        };
        assert_eq!(git.check(&hashes), Ok(()));
        let wrong = RemoteFile { checksum: Checksum::Sha256("00".into()), ..lfs.clone() };
        let err = wrong.check(&hashes).expect_err("wrong checksum");
        assert!(err.contains("model.bin") && err.contains("expected 00") && err.contains("got 5891b5b5"), "{err}");
        let short = RemoteFile { size: 7, ..lfs };
        assert!(short.check(&hashes).expect_err("wrong size").contains("expected 7 bytes, got 6 bytes"));
    }
}
