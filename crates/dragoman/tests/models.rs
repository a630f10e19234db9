//! `dragoman models` as a user runs it, against a local stand-in for the Hugging Face hub that
//! serves the real Whisper tiny.en (CTranslate2) files: the hub's revision and paginated tree
//! APIs, `resolve` URLs, and the redirect to a CDN that the real hub answers for LFS files.
//! Translation models are pulled the same way from repositories that serve the small CTranslate2
//! models the test suite builds (NLLB-200, M2M100 and OPUS-MT layouts), then loaded by the MT
//! worker's loader.
//!
//! Needs tiny.en in `$DRAGOMAN_MODEL_DIR/whisper/tiny.en-ct2` and the translation models in
//! `$DRAGOMAN_MODEL_DIR/mt-test/` (`scripts/fetch-test-models.sh` installs both).

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha1::Sha1;
use sha2::{Digest, Sha256};

const REPO: &str = "Systran/faster-whisper-tiny.en";
const COMMIT: &str = "d90ca5fe260221311c53c58e660288d3deb8d356";
/// The files of the real repository that the ct2 engine needs, all of which `pull` must take.
const MODEL_FILES: [&str; 4] = ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"];
/// Served as LFS (redirected to the CDN), as the hub stores large files.
const LFS_FILES: [&str; 1] = ["model.bin"];
const TOKEN: &str = "hf_test_token_never_printed";
/// Tree entries per page, small so the listing takes two pages.
const TREE_PAGE: usize = 3;

// --- the real model ---------------------------------------------------------------------------

fn fixture_root() -> PathBuf {
    std::env::var_os("DRAGOMAN_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME or DRAGOMAN_MODEL_DIR")).join(".cache/dragoman/models")
    })
}

fn fixture_dir() -> PathBuf {
    let dir = fixture_root().join("whisper/tiny.en-ct2");
    assert!(
        dir.join("model.bin").is_file(),
        "Whisper tiny.en is not in {}: run scripts/fetch-test-models.sh",
        dir.display()
    );
    dir
}

#[derive(Debug)]
struct RealFile {
    name: &'static str,
    bytes: Bytes,
    sha256: String,
    git_oid: String,
}

/// The real files, read and hashed once per test process.
fn real_files() -> &'static [RealFile] {
    static FILES: OnceLock<Vec<RealFile>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = fixture_dir();
        MODEL_FILES
            .iter()
            .map(|&name| {
                let bytes = Bytes::from(std::fs::read(dir.join(name)).expect("read the model file"));
                RealFile { name, sha256: sha256(&bytes), git_oid: git_oid(&bytes), bytes }
            })
            .collect()
    })
}

fn real(name: &str) -> &'static RealFile {
    real_files().iter().find(|file| file.name == name).expect("a model file")
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// git's blob id, which the hub gives as `oid`.
fn git_oid(bytes: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(bytes);
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The same bytes with the one in the middle inverted.
fn corrupted(bytes: &[u8]) -> Bytes {
    let mut copy = bytes.to_vec();
    let middle = copy.len() / 2;
    copy[middle] ^= 0xff;
    Bytes::from(copy)
}

// --- a local hub --------------------------------------------------------------------------------

struct HubFile {
    path: String,
    bytes: Bytes,
    lfs: bool,
    sha256: String,
}

impl HubFile {
    fn new(path: &str, bytes: Bytes, lfs: bool) -> HubFile {
        HubFile { path: path.into(), sha256: sha256(&bytes), bytes, lfs }
    }
}

/// One repository of the hub, at one commit.
struct HubRepo {
    id: String,
    commit: String,
    files: Vec<HubFile>,
}

impl HubRepo {
    /// tiny.en as `Systran/faster-whisper-tiny.en`, with the files the real repository has
    /// besides the model's.
    fn tiny_en() -> HubRepo {
        let mut files = vec![
            HubFile::new(".gitattributes", Bytes::from_static(b"*.bin filter=lfs diff=lfs merge=lfs -text\n"), false),
            HubFile::new("README.md", Bytes::from_static(b"---\nlicense: mit\n---\n"), false),
        ];
        for file in real_files() {
            files.push(HubFile::new(file.name, file.bytes.clone(), LFS_FILES.contains(&file.name)));
        }
        HubRepo { id: REPO.into(), commit: COMMIT.into(), files }
    }
}

struct HubState {
    base: String,
    repos: Vec<HubRepo>,
    /// Served in place of the named file's bytes (the listing still has the real checksums).
    corrupt: Option<(String, Bytes)>,
    seen: Mutex<Vec<Seen>>,
}

#[derive(Debug, Clone)]
struct Seen {
    path_and_query: String,
    authorization: Option<String>,
}

struct FakeHub {
    url: String,
    state: Arc<HubState>,
}

impl FakeHub {
    /// Serves tiny.en as `Systran/faster-whisper-tiny.en`, with `corrupt` (if any) served
    /// with one byte changed.
    fn start(corrupt: Option<&str>) -> FakeHub {
        let corrupt = corrupt.map(|name| (name.to_owned(), corrupted(&real(name).bytes)));
        FakeHub::serve(vec![HubRepo::tiny_en()], corrupt)
    }

    fn serve(repos: Vec<HubRepo>, corrupt: Option<(String, Bytes)>) -> FakeHub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the hub");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr: SocketAddr = listener.local_addr().expect("hub address");
        let base = format!("http://{addr}");
        let state = Arc::new(HubState { base: base.clone(), repos, corrupt, seen: Mutex::new(Vec::new()) });
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("hub runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("hub listener");
                axum::serve(listener, app).await.expect("serve the hub");
            });
        });
        FakeHub { url: base, state }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("request log").clone()
    }
}

fn not_found(message: &str) -> Response {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// The hub's URL scheme, routed by hand (the repository id has a slash in it).
async fn handle(State(state): State<Arc<HubState>>, uri: Uri, headers: HeaderMap) -> Response {
    let path_and_query = uri.path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_default();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    state.seen.lock().expect("request log").push(Seen { path_and_query, authorization });

    let path = uri.path();
    let repo = |owner: &str, name: &str| state.repos.iter().find(|repo| repo.id == format!("{owner}/{name}"));
    let revision_ok = |repo: &HubRepo, revision: &str| revision == "main" || revision == repo.commit;
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        let [owner, name, kind, revision] = parts[..] else { return not_found("Not found") };
        let Some(repo) = repo(owner, name) else { return not_found("Repository not found") };
        if !revision_ok(repo, revision) {
            return not_found(&format!("Invalid rev id: {revision}"));
        }
        return match kind {
            "revision" => {
                axum::Json(serde_json::json!({ "id": repo.id, "sha": repo.commit, "private": false })).into_response()
            }
            "tree" => tree_page(&state, repo, revision, uri.query()),
            _ => not_found("Not found"),
        };
    }
    if let Some(sha) = path.strip_prefix("/cdn/") {
        let found = state
            .repos
            .iter()
            .find_map(|repo| repo.files.iter().find(|file| file.lfs && file.sha256 == sha).map(|file| (repo, file)));
        let Some((repo, file)) = found else { return not_found("no such object") };
        return serve(&state, repo, file);
    }
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    if let [owner, name, "resolve", revision, file] = parts[..] {
        let Some(repo) = repo(owner, name) else { return not_found("Repository not found") };
        if !revision_ok(repo, revision) {
            return not_found(&format!("Invalid rev id: {revision}"));
        }
        let Some(file) = repo.files.iter().find(|f| f.path == file) else { return not_found("Entry not found") };
        if file.lfs {
            // Like the real hub: LFS content lives on a CDN.
            let location = format!("{}/cdn/{}", state.base, file.sha256);
            return (
                StatusCode::FOUND,
                [(header::LOCATION, location), (header::HeaderName::from_static("x-repo-commit"), repo.commit.clone())],
            )
                .into_response();
        }
        return serve(&state, repo, file);
    }
    not_found("Not found")
}

fn serve(state: &HubState, repo: &HubRepo, file: &HubFile) -> Response {
    let bytes = match &state.corrupt {
        Some((name, bytes)) if *name == file.path => bytes.clone(),
        _ => file.bytes.clone(),
    };
    Response::builder()
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("x-repo-commit", &repo.commit)
        .body(Body::from(bytes))
        .expect("a response")
}

/// One page of `GET /api/models/{repo}/tree/{revision}`, in the hub's shape: git files have
/// their blob id as `oid`; LFS files have the pointer's blob id there and the content's SHA-256
/// in `lfs.oid`.
fn tree_page(state: &HubState, repo: &HubRepo, revision: &str, query: Option<&str>) -> Response {
    let start: usize = query.and_then(|q| q.strip_prefix("cursor=")).and_then(|c| c.parse().ok()).unwrap_or(0);
    let entries: Vec<serde_json::Value> = repo
        .files
        .iter()
        .skip(start)
        .take(TREE_PAGE)
        .map(|file| {
            let size = file.bytes.len();
            if file.lfs {
                let sha = &file.sha256;
                let pointer = format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n");
                serde_json::json!({
                    "type": "file", "oid": git_oid(pointer.as_bytes()), "size": size, "path": file.path,
                    "lfs": { "oid": sha, "size": size, "pointerSize": pointer.len() },
                })
            } else {
                serde_json::json!({ "type": "file", "oid": git_oid(&file.bytes), "size": size, "path": file.path })
            }
        })
        .collect();
    let mut response = axum::Json(entries).into_response();
    if start + TREE_PAGE < repo.files.len() {
        let next = format!(
            "<{}/api/models/{}/tree/{revision}?cursor={}>; rel=\"next\"",
            state.base,
            repo.id,
            start + TREE_PAGE
        );
        response.headers_mut().insert(header::LINK, next.parse().expect("a Link header"));
    }
    response
}

// --- running dragoman ---------------------------------------------------------------------------

/// `dragoman` in a clean environment whose model directory is `model_dir`.
fn dragoman(model_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dragoman"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", model_dir)
        .env("DRAGOMAN_MODEL_DIR", model_dir)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs it to the end (at most two minutes); returns (exit code, stdout, stderr).
fn run(command: &mut Command) -> (i32, String, String) {
    let mut child = command.spawn().expect("start dragoman");
    // Read both pipes on their own threads so a full pipe never stalls the child.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).expect("read stdout");
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).expect("read stderr");
        text
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for dragoman") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dragoman did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code().unwrap_or(-1), out.join().expect("stdout reader"), err.join().expect("stderr reader"))
}

fn pull(model_dir: &Path, hub: &FakeHub) -> (i32, String, String) {
    run(dragoman(model_dir).args(["models", "pull", "tiny.en-ct2", "--endpoint", &hub.url]))
}

/// Every file name under `dir`, recursively, relative to it.
fn listing(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).expect("read a folder") {
            let path = entry.expect("read a folder").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                names.push(path.strip_prefix(dir).expect("a path under the folder").display().to_string());
            }
        }
    }
    names.sort();
    names
}

fn flip_middle_byte(path: &Path) {
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open the file to change");
    let middle = file.metadata().expect("file size").len() / 2;
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(middle)).expect("seek");
    file.read_exact(&mut byte).expect("read the byte");
    file.seek(SeekFrom::Start(middle)).expect("seek");
    file.write_all(&[byte[0] ^ 0xff]).expect("write the byte");
}

fn copy_model(to: &Path, files: &[&str]) {
    std::fs::create_dir_all(to).expect("create the model folder");
    for name in files {
        std::fs::write(to.join(name), &real(name).bytes).expect("copy a model file");
    }
}

fn manifest(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the manifest")).expect("a JSON manifest")
}

/// The line of `text` that starts with `prefix` followed by a space.
fn line_starting<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|line| line.starts_with(&format!("{prefix} ")))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
}

// --- the tests ----------------------------------------------------------------------------------

#[test]
fn pull_installs_the_real_files_checked_and_skips_them_the_second_time() {
    let hub = FakeHub::start(None);
    let model_dir = tempfile::tempdir().expect("a scratch model directory");
    let (code, stdout, stderr) = run(dragoman(model_dir.path())
        .args(["models", "pull", "tiny.en-ct2", "--endpoint", &hub.url])
        .env("HF_TOKEN", TOKEN));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let installed = model_dir.path().join("whisper/tiny.en-ct2");
    assert!(stdout.contains(&format!("tiny.en-ct2 pulled into {}", installed.display())), "{stdout}");
    for name in MODEL_FILES {
        assert!(stderr.contains(&format!("{name}: downloaded")), "{stderr}");
        assert!(
            std::fs::read(installed.join(name)).expect("an installed file") == real(name).bytes,
            "{name} differs from the hub's"
        );
    }
    assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));
    // Only what the engine loads, the manifest, and the preprocessor config the engine needs.
    assert_eq!(
        listing(&installed),
        [
            "config.json",
            "dragoman-model.json",
            "model.bin",
            "preprocessor_config.json",
            "tokenizer.json",
            "vocabulary.txt"
        ]
    );

    let manifest = manifest(&installed.join("dragoman-model.json"));
    assert_eq!(manifest["name"], "tiny.en-ct2");
    assert_eq!(manifest["engine"], "ctranslate2");
    assert_eq!(manifest["repo"], REPO);
    assert_eq!(manifest["revision"], "main");
    assert_eq!(manifest["commit"], COMMIT);
    assert_eq!(manifest["licence"], "MIT");
    assert!(manifest["pulled_at"].as_str().is_some_and(|at| at.starts_with("20")), "{manifest}");
    let files = manifest["files"].as_array().expect("files in the manifest");
    assert_eq!(files.len(), MODEL_FILES.len(), "{manifest}");
    for file in files {
        let real = real(file["path"].as_str().expect("a file path"));
        assert_eq!(file["sha256"], real.sha256.as_str());
        assert_eq!(file["size"], real.bytes.len());
    }

    // Every request carried the token; the files came from the commit `main` named, model.bin
    // through the CDN redirect; the tree listing was read to its second page.
    let seen = hub.seen();
    assert!(seen.iter().all(|s| s.authorization.as_deref() == Some(&*format!("Bearer {TOKEN}"))), "{seen:?}");
    let requested = |needle: &str| seen.iter().filter(|s| s.path_and_query.contains(needle)).count();
    assert_eq!(requested(&format!("/api/models/{REPO}/revision/main")), 1, "{seen:?}");
    assert_eq!(requested(&format!("/resolve/{COMMIT}/")), MODEL_FILES.len(), "{seen:?}");
    assert_eq!(requested("/cdn/"), 1, "{seen:?}");
    assert_eq!(requested(&format!("tree/{COMMIT}?cursor={TREE_PAGE}")), 1, "{seen:?}");
    assert_eq!(requested("README.md") + requested(".gitattributes"), 0, "{seen:?}");

    // Again, with the endpoint from HF_ENDPOINT: everything is there and intact.
    let before = seen.len();
    let (code, stdout, stderr) = run(dragoman(model_dir.path())
        .args(["models", "pull", "tiny.en-ct2"])
        .env("HF_ENDPOINT", format!("{}/", hub.url)));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for name in MODEL_FILES {
        assert!(stderr.contains(&format!("{name}: already present, checksum ok")), "{stderr}");
    }
    let again = &hub.seen()[before..];
    assert!(again.iter().all(|s| s.path_and_query.starts_with("/api/")), "downloaded again: {again:?}");
    assert!(again.iter().all(|s| s.authorization.is_none()), "no HF_TOKEN, no Authorization: {again:?}");
}

#[test]
fn pull_refuses_corrupted_bytes_and_leaves_nothing_half_written() {
    // An LFS file (checked by SHA-256) corrupted on the CDN.
    let hub = FakeHub::start(Some("model.bin"));
    let model_dir = tempfile::tempdir().expect("a scratch model directory");
    let (code, stdout, stderr) = pull(model_dir.path(), &hub);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let expected = &real("model.bin").sha256;
    let actual = sha256(&corrupted(&real("model.bin").bytes));
    assert!(stderr.contains(&format!("model.bin: sha256 mismatch: expected {expected}, got {actual}")), "{stderr}");
    assert!(stderr.contains("the partial download was deleted"), "{stderr}");
    let installed = model_dir.path().join("whisper/tiny.en-ct2");
    // The files before it were right and stay; model.bin, its temporary file and the manifest
    // are not there.
    assert_eq!(listing(&installed), ["config.json"]);

    // A git file (checked by its blob id) corrupted.
    let hub = FakeHub::start(Some("tokenizer.json"));
    let (code, stdout, stderr) = pull(model_dir.path(), &hub);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let expected = &real("tokenizer.json").git_oid;
    assert!(stderr.contains(&format!("tokenizer.json: git blob sha1 mismatch: expected {expected}")), "{stderr}");
    assert!(stderr.contains("config.json: already present, checksum ok"), "{stderr}");
    assert!(stderr.contains("model.bin: downloaded"), "{stderr}");
    assert_eq!(listing(&installed), ["config.json", "model.bin"]);
    // What a failed pull left is no model, and verify says why.
    let (code, stdout, _) = run(dragoman(model_dir.path()).args(["models", "verify"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAILED  tiny.en-ct2"), "{stdout}");
    assert!(stdout.contains(&format!("{}: missing", installed.join("tokenizer.json").display())), "{stdout}");

    // A name that is a size, not a model; a repository the hub does not have.
    let (code, _, stderr) = run(dragoman(model_dir.path()).args(["models", "pull", "tiny.en"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("did you mean tiny.en-ct2 or ggml-tiny.en"), "{stderr}");
    let (code, _, stderr) =
        run(dragoman(model_dir.path()).args(["models", "pull", "base.en-ct2", "--endpoint", &hub.url]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Systran/faster-whisper-base.en") && stderr.contains("404"), "{stderr}");
    assert!(stderr.contains("Repository not found"), "{stderr}");
}

#[test]
fn verify_loads_a_pulled_model_and_names_a_tampered_file() {
    let hub = FakeHub::start(None);
    let model_dir = tempfile::tempdir().expect("a scratch model directory");
    let (code, stdout, stderr) = pull(model_dir.path(), &hub);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let installed = model_dir.path().join("whisper/tiny.en-ct2");

    let (code, stdout, stderr) = run(dragoman(model_dir.path()).args(["models", "verify"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("OK      tiny.en-ct2 ({})", installed.display())), "{stdout}");
    assert!(stdout.contains("4 file(s) match dragoman-model.json"), "{stdout}");
    assert!(stdout.contains("CTranslate2 loads it (English only)"), "{stdout}");
    assert!(manifest(&installed.join("dragoman-model.json"))["verified_at"].is_string());
    let (code, list, _) = run(dragoman(model_dir.path()).args(["models", "list"]));
    assert_eq!(code, 0);
    let row = line_starting(&list, "tiny.en-ct2");
    assert!(row.contains("MB, pulled ") && row.contains(", verified "), "{row}");

    // One byte changed in a file: verify names it, with both checksums, and does not load it.
    flip_middle_byte(&installed.join("tokenizer.json"));
    let (code, stdout, stderr) = run(dragoman(model_dir.path()).args(["models", "verify", "tiny.en-ct2"]));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let damaged = installed.join("tokenizer.json");
    let actual = {
        let bytes = std::fs::read(&damaged).expect("read the changed file");
        sha256(&bytes)
    };
    assert!(stdout.contains("FAILED  tiny.en-ct2"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}: sha256 is {actual}, the manifest says {}",
            damaged.display(),
            real("tokenizer.json").sha256
        )),
        "{stdout}"
    );
    assert!(stdout.contains("not loaded"), "{stdout}");
    assert!(stderr.contains("1 of 1 model(s) failed verification"), "{stderr}");

    // A folder without a manifest (as scripts/fetch-test-models.sh installs one) that lacks a
    // file the engine needs; and a name that is nothing.
    let custom = model_dir.path().join("whisper/custom-ct2");
    copy_model(&custom, &["config.json", "model.bin", "vocabulary.txt"]);
    let (code, stdout, _) =
        run(dragoman(model_dir.path()).args(["models", "verify", custom.to_str().expect("a UTF-8 path")]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&format!("FAILED  custom-ct2 ({})", custom.display())), "{stdout}");
    assert!(stdout.contains(&format!("{}: missing", custom.join("tokenizer.json").display())), "{stdout}");
    let (code, _, stderr) = run(dragoman(model_dir.path()).args(["models", "verify", "nothing-here"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("no model \"nothing-here\""), "{stderr}");
}

#[test]
fn convert_makes_a_ggml_file_that_loads_and_list_shows_what_is_installed() {
    let model_dir = tempfile::tempdir().expect("a scratch model directory");
    // The way scripts/fetch-test-models.sh installs tiny.en: the files, no manifest.
    copy_model(&model_dir.path().join("whisper/tiny.en-ct2"), &MODEL_FILES);

    let (code, stdout, stderr) = run(dragoman(model_dir.path()).args(["models", "convert", "tiny.en-ct2"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let ggml = model_dir.path().join("whisper/ggml-tiny.en.bin");
    assert!(stdout.contains(&format!("OK      {}", ggml.display())), "{stdout}");
    assert!(stderr.contains("whisper.cpp loads it (English only)"), "{stderr}");
    let bytes = std::fs::read(&ggml).expect("read the ggml file");
    assert_eq!(&bytes[..4], b"lmgg", "ggml magic");
    let sidecar = manifest(&model_dir.path().join("whisper/ggml-tiny.en.bin.dragoman-model.json"));
    assert_eq!(sidecar["engine"], "whisper_cpp");
    assert_eq!(sidecar["files"][0]["path"], "ggml-tiny.en.bin");
    assert_eq!(sidecar["files"][0]["sha256"], sha256(&bytes).as_str());
    assert_eq!(sidecar["files"][0]["size"], bytes.len());
    assert!(sidecar["converted_from"].as_str().is_some_and(|from| from.ends_with("whisper/tiny.en-ct2")));

    let (code, stdout, stderr) = run(dragoman(model_dir.path()).args(["models", "verify", "ggml-tiny.en"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("1 file(s) match ggml-tiny.en.bin.dragoman-model.json"), "{stdout}");
    assert!(stdout.contains("whisper.cpp loads it (English only)"), "{stdout}");

    // A CTranslate2 model is not a ggml source twice over: converting the ggml file is refused.
    let (code, _, stderr) =
        run(dragoman(model_dir.path()).args(["models", "convert", ggml.to_str().expect("a UTF-8 path")]));
    assert_eq!(code, 1);
    assert!(stderr.contains("is a whisper.cpp model already"), "{stderr}");

    // Things the catalogue does not know.
    std::fs::create_dir_all(model_dir.path().join("silero-vad")).expect("create silero-vad");
    std::fs::write(model_dir.path().join("silero-vad/silero_vad_openvino_16k.onnx"), [0u8; 1_500])
        .expect("write a file");
    copy_model(&model_dir.path().join("whisper/custom-ct2"), &["model.bin", "config.json", "tokenizer.json"]);
    let (code, list, stderr) = run(dragoman(model_dir.path()).args(["models", "list"]));
    assert_eq!(code, 0, "{list}\n{stderr}");
    assert!(list.contains(&format!("Model directory: {} (from DRAGOMAN_MODEL_DIR)", model_dir.path().display())));
    assert!(list.contains(&format!(
        "The STT worker loads {} with CTranslate2",
        model_dir.path().join("whisper/tiny.en-ct2").display()
    )));
    let row = line_starting(&list, "tiny.en-ct2");
    assert!(row.contains("Systran/faster-whisper-tiny.en") && row.contains("MIT"), "{row}");
    assert!(row.contains("78.1 MB, no manifest"), "{row}");
    let row = line_starting(&list, "ggml-tiny.en");
    assert!(row.contains("ggerganov/whisper.cpp:ggml-tiny.en.bin"), "{row}");
    assert!(row.contains(", converted ") && row.contains(", verified "), "{row}");
    assert!(line_starting(&list, "tiny-ct2").trim_end().ends_with(" -"), "not installed");
    assert!(line_starting(&list, "large-v3-turbo-ct2").contains("mobiuslabsgmbh/faster-whisper-large-v3-turbo"));
    let others = list.split("not in the catalogue:").nth(1).unwrap_or_else(|| panic!("{list}"));
    assert!(line_starting(others, "whisper/custom-ct2").contains("CTranslate2 model"), "{others}");
    let row: Vec<&str> = line_starting(others, "silero-vad").split_whitespace().collect();
    assert_eq!(row, ["silero-vad", "folder", "1.5", "kB", "-"], "{others}");
}

// --- translation models -------------------------------------------------------------------------

/// One of the CTranslate2 translation models `scripts/build_test_mt_models.py` builds.
fn mt_fixture(name: &str) -> PathBuf {
    let dir = fixture_root().join("mt-test").join(name);
    assert!(
        dir.join("model.bin").is_file(),
        "the test translation model {name} is not in {}: run scripts/fetch-test-models.sh",
        dir.display()
    );
    dir
}

/// A hub repository serving the files of a fixture model, LFS for the large ones as on the real
/// hub, beside files the real repositories also have and the MT worker does not read.
fn mt_repo(id: &str, commit: &str, fixture: &str) -> HubRepo {
    let dir = mt_fixture(fixture);
    let mut files = vec![
        HubFile::new(".gitattributes", Bytes::from_static(b"*.bin filter=lfs diff=lfs merge=lfs -text\n"), false),
        HubFile::new("README.md", Bytes::from_static(b"---\nlicense: other\n---\n"), false),
        HubFile::new("tokenizer.json", Bytes::from_static(b"{\"version\": \"1.0\"}"), true),
        HubFile::new("generation_config.json", Bytes::from_static(b"{}"), false),
    ];
    for name in listing(&dir) {
        let bytes = Bytes::from(std::fs::read(dir.join(&name)).expect("read a fixture file"));
        let lfs = name == "model.bin" || name.ends_with(".spm") || name.ends_with(".model");
        files.push(HubFile::new(&name, bytes, lfs));
    }
    HubRepo { id: id.into(), commit: commit.into(), files }
}

const NLLB_600M_REPO: &str = "JustFrederik/nllb-200-distilled-600M-ct2-int8";
const NLLB_600M_COMMIT: &str = "f84941bd43259bdf2e6e56ab779bc30b481df5a0";

/// The hub as far as these tests need it: the NLLB-200, M2M100 and OPUS-MT repositories of the
/// catalogue, serving the fixtures of their families; and the NLLB-200 1.3B repository serving
/// an M2M100 model, as a repository that is not what its name says would.
fn translation_hub() -> FakeHub {
    FakeHub::serve(
        vec![
            mt_repo(NLLB_600M_REPO, NLLB_600M_COMMIT, "nllb-echo"),
            mt_repo("jncraton/m2m100_418M-ct2-int8", "7c1b2620a4e58dacecbd8bf89cfd6da7eb9eb7b0", "m2m100-echo"),
            mt_repo(
                "gaudi/opus-mt-en-es-ctranslate2",
                "e705cd3cb5836fcae1d0697565c172f0251e8569",
                "opus-mt-en-es-echo",
            ),
            mt_repo(
                "JustFrederik/nllb-200-distilled-1.3B-ct2-int8",
                "934060f3dbc3517707faf26e11fda79350f99b14",
                "m2m100-echo",
            ),
        ],
        None,
    )
}

#[test]
fn translation_models_are_pulled_into_mt_and_loaded_by_the_mt_worker() {
    let hub = translation_hub();
    let model_dir = tempfile::tempdir().expect("a scratch model directory");
    let pull_mt = |name: &str| run(dragoman(model_dir.path()).args(["models", "pull", name, "--endpoint", &hub.url]));

    let (code, stdout, stderr) = pull_mt("nllb-200-distilled-600M-int8");
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let nllb = model_dir.path().join("mt/nllb-200-distilled-600M-int8");
    assert!(stdout.contains(&format!("nllb-200-distilled-600M-int8 pulled into {}", nllb.display())), "{stdout}");
    assert!(stdout.contains("to use it: mt.models = [\"nllb-200-distilled-600M-int8\"]"), "{stdout}");
    assert!(stdout.contains("licence: CC-BY-NC-4.0, NON-COMMERCIAL use only"), "{stdout}");
    // What the MT worker loads, and the manifest; not the HF tokenizer, README or configs.
    let fixture = mt_fixture("nllb-echo");
    let model_files = listing(&fixture);
    assert_eq!(model_files, ["config.json", "model.bin", "sentencepiece.bpe.model", "shared_vocabulary.json"]);
    let mut expected = model_files.clone();
    expected.push("dragoman-model.json".into());
    expected.sort();
    assert_eq!(listing(&nllb), expected);
    for name in &model_files {
        assert!(stderr.contains(&format!("{name}: downloaded")), "{stderr}");
        assert!(
            std::fs::read(nllb.join(name)).expect("an installed file")
                == std::fs::read(fixture.join(name)).expect("a fixture file"),
            "{name} differs from the hub's"
        );
    }
    let seen = hub.seen();
    assert!(seen.iter().all(|s| !s.path_and_query.ends_with("/tokenizer.json")), "{seen:?}");
    assert!(seen.iter().any(
        |s| s.path_and_query == format!("/api/models/{NLLB_600M_REPO}/tree/{NLLB_600M_COMMIT}?cursor={TREE_PAGE}")
    ));
    let recorded = manifest(&nllb.join("dragoman-model.json"));
    assert_eq!(recorded["name"], "nllb-200-distilled-600M-int8");
    assert_eq!(recorded["engine"], "ctranslate2");
    assert_eq!(recorded["family"], "nllb");
    assert_eq!(recorded["licence"], "CC-BY-NC-4.0");
    assert_eq!(recorded["repo"], NLLB_600M_REPO);
    assert_eq!(recorded["commit"], NLLB_600M_COMMIT);
    assert_eq!(recorded["files"].as_array().map(Vec::len), Some(model_files.len()), "{recorded}");

    for name in ["opus-mt-en-es", "m2m100-418M-int8"] {
        let (code, stdout, stderr) = pull_mt(name);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
    }
    let opus = model_dir.path().join("mt/opus-mt-en-es");
    assert_eq!(
        listing(&opus),
        [
            "config.json",
            "dragoman-model.json",
            "model.bin",
            "source.spm",
            "source_vocabulary.json",
            "target.spm",
            "target_vocabulary.json"
        ]
    );
    assert_eq!(manifest(&opus.join("dragoman-model.json"))["licence"], "CC-BY-4.0");

    // Every installed model through the MT worker's own loader: family and languages.
    let (code, stdout, stderr) = run(dragoman(model_dir.path()).args(["models", "verify"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("OK      nllb-200-distilled-600M-int8 ({})", nllb.display())), "{stdout}");
    assert!(stdout.contains("4 file(s) match dragoman-model.json"), "{stdout}");
    assert!(
        stdout.contains("CTranslate2 loads it (NLLB-200, any pair of 7 languages: de, en, es, fr, pt, ru, zh)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("CTranslate2 loads it (M2M100, any pair of 7 languages: de, en, es, fr, pt, ru, zh)"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("OK      opus-mt-en-es ({})", opus.display())), "{stdout}");
    assert!(stdout.contains("CTranslate2 loads it (OPUS-MT, en → es)"), "{stdout}");
    assert!(manifest(&opus.join("dragoman-model.json"))["verified_at"].is_string());

    // list: the translation catalogue with what is installed; the MT worker's configured models.
    let (code, list, stderr) = run(dragoman(model_dir.path())
        .args(["models", "list"])
        .env("DRAGOMAN_MT__MODELS", "nllb-200-distilled-600M-int8,opus-mt-de-en"));
    assert_eq!(code, 0, "{list}\n{stderr}");
    assert!(
        list.contains("The MT worker loads (mt.models): nllb-200-distilled-600M-int8, opus-mt-de-en: NOT INSTALLED"),
        "{list}"
    );
    let row = line_starting(&list, "nllb-200-distilled-600M-int8");
    for part in ["NLLB-200", "CC-BY-NC-4.0", NLLB_600M_REPO, ", pulled ", ", verified "] {
        assert!(row.contains(part), "{part} not in {row}");
    }
    assert!(line_starting(&list, "opus-mt-en-es").contains("gaudi/opus-mt-en-es-ctranslate2"));
    assert!(line_starting(&list, "opus-mt-fr-en").trim_end().ends_with(" -"), "not installed");
    assert!(list.contains("NON-COMMERCIAL use only"), "{list}");
    assert!(line_starting(&list, "tiny.en-ct2").contains("Systran/faster-whisper-tiny.en"), "Whisper is listed still");

    // verify with that config: a model the MT worker would not find fails it.
    let (code, stdout, _) = run(dragoman(model_dir.path())
        .args(["models", "verify"])
        .env("DRAGOMAN_MT__MODELS", "nllb-200-distilled-600M-int8,opus-mt-de-en"));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAILED  opus-mt-de-en"), "{stdout}");
    assert!(stdout.contains("named in mt.models but not installed; `dragoman models pull opus-mt-de-en`"), "{stdout}");

    // A repository whose files are another family than its catalogue entry: pulled (the files
    // are all there), then refused by verify.
    let (code, stdout, stderr) = pull_mt("nllb-200-distilled-1.3B-int8");
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let (code, stdout, _) = run(dragoman(model_dir.path()).args(["models", "verify", "nllb-200-distilled-1.3B-int8"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAILED  nllb-200-distilled-1.3B-int8"), "{stdout}");
    assert!(stdout.contains("CTranslate2 loads it as M2M100, but it should be NLLB-200"), "{stdout}");
}

#[test]
fn translation_models_of_ones_own_are_listed_and_verified_and_broken_ones_say_why() {
    let model_dir = tempfile::tempdir().expect("a scratch model directory");
    let mt = model_dir.path().join("mt");
    let copy_fixture = |fixture: &str, to: &str| {
        let from = mt_fixture(fixture);
        std::fs::create_dir_all(mt.join(to)).expect("create a model folder");
        for name in listing(&from) {
            std::fs::copy(from.join(&name), mt.join(to).join(&name)).expect("copy a model file");
        }
    };
    // A user's own conversions (no manifest), one of them OPUS-MT named after its pair.
    copy_fixture("m2m100-echo", "my-m2m100");
    copy_fixture("opus-mt-en-es-echo", "opus-mt-en-es-echo");
    // A folder that lost its SentencePiece model and vocabulary.
    copy_fixture("nllb-echo", "broken");
    for name in ["sentencepiece.bpe.model", "shared_vocabulary.json"] {
        std::fs::remove_file(mt.join("broken").join(name)).expect("remove a file");
    }

    let (code, list, stderr) = run(dragoman(model_dir.path()).args(["models", "list"]));
    assert_eq!(code, 0, "{list}\n{stderr}");
    assert!(list.contains("The MT worker loads no CTranslate2 model (mt.models is empty)"), "{list}");
    let others = list.split("not in the catalogue:").nth(1).unwrap_or_else(|| panic!("{list}"));
    let row = line_starting(others, "mt/my-m2m100");
    assert!(row.contains("M2M100 translation model") && row.contains("no manifest"), "{row}");
    assert!(line_starting(others, "mt/opus-mt-en-es-echo").contains("OPUS-MT translation model"), "{others}");
    let row = line_starting(others, "mt/broken");
    assert!(row.contains(" folder ") && row.contains("not a translation model: no SentencePiece model"), "{row}");

    let (code, stdout, stderr) = run(dragoman(model_dir.path()).args(["models", "verify"]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("OK      my-m2m100 ({})", mt.join("my-m2m100").display())), "{stdout}");
    assert!(stdout.contains("no dragoman-model.json, so no checksums; the files it needs are there"), "{stdout}");
    assert!(stdout.contains("CTranslate2 loads it (M2M100, any pair of 7 languages"), "{stdout}");
    assert!(stdout.contains("CTranslate2 loads it (OPUS-MT, en → es)"), "{stdout}");
    assert!(!stdout.contains("broken"), "not a model, so not verified: {stdout}");

    // Named, the broken folder says what it lacks; an OPUS-MT folder not named after its pair
    // is refused by the loader, which reads the pair from the name.
    let (code, _, stderr) = run(dragoman(model_dir.path()).args(["models", "verify", "broken"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("is not a translation model the MT worker can load: no SentencePiece model"), "{stderr}");
    std::fs::rename(mt.join("opus-mt-en-es-echo"), mt.join("my-opus")).expect("rename a model folder");
    let (code, stdout, _) = run(dragoman(model_dir.path()).args(["models", "verify", "my-opus"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAILED  my-opus"), "{stdout}");
    assert!(stdout.contains("an OPUS-MT folder is named after its pair"), "{stdout}");

    // An OPUS-MT pair the catalogue does not have: how to convert it.
    let (code, _, stderr) = run(dragoman(model_dir.path()).args(["models", "pull", "opus-mt-en-it"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("ct2-transformers-converter --model Helsinki-NLP/opus-mt-SRC-TGT"), "{stderr}");
}
