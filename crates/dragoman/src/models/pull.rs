//! `dragoman models pull`: a catalogue model from the hub into the model directory, every file
//! checked, then a manifest for `verify`. Whisper and translation models are pulled alike; only
//! the files taken and where they go differ (see [`super::catalogue`]).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::Utc;
use dragoman_runtime::config::SttEngineKind;

use super::catalogue::{Entry, ModelKind};
use super::hub::{Hub, RemoteFile};
use super::manifest::{Manifest, ManifestFile, hash_file};
use super::{human_bytes, short_commit};

/// Pulls `entry` at `revision` from `hub` into `model_dir`; returns where it was installed.
pub async fn pull(hub: &Hub, entry: &Entry, revision: &str, model_dir: &Path) -> anyhow::Result<PathBuf> {
    let commit = hub.commit(entry.repo, revision).await?;
    // Every file comes from the one commit the revision named at the start, even if the branch
    // moves during the download.
    let at = commit.as_deref().unwrap_or(revision);
    let files: Vec<RemoteFile> =
        hub.files(entry.repo, at).await?.into_iter().filter(|file| entry.wants(&file.path)).collect();
    let listed = |name: &str| files.iter().any(|file| file.path == name);
    if let Some(file) = entry.file.filter(|file| !listed(file)) {
        bail!("{} at {revision} has no {file}; it is not the model the catalogue says", entry.repo);
    }
    if let Some(requirement) = entry.kind.missing(listed).first() {
        bail!("{} at {revision} has no {requirement}; it is not the model the catalogue says", entry.repo);
    }

    let install_path = entry.install_path(model_dir);
    let dir = if entry.kind.is_file() {
        install_path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        install_path.clone()
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;

    let total: u64 = files.iter().map(|file| file.size).sum();
    eprintln!(
        "{} at {revision}{} from {}: {} file(s), {}",
        entry.repo,
        commit.as_deref().map(|c| format!(" (commit {})", short_commit(c))).unwrap_or_default(),
        hub.endpoint(),
        files.len(),
        human_bytes(total)
    );

    let mut recorded = Vec::with_capacity(files.len());
    for file in &files {
        let local = dir.join(&file.path);
        let sha256 = match present_and_intact(&local, file).await? {
            Some(sha256) => {
                eprintln!("  {}: already present, checksum ok", file.path);
                sha256
            }
            None => {
                let hashes = hub.download(entry.repo, at, file, &dir).await?;
                eprintln!("  {}: downloaded {}, checksum ok", file.path, human_bytes(hashes.len));
                hashes.sha256
            }
        };
        recorded.push(ManifestFile { path: file.path.clone(), size: file.size, sha256 });
    }

    if entry.kind == ModelKind::Speech(SttEngineKind::Ctranslate2) {
        // The ct2 engine reads the feature extractor's settings from it; conversions made
        // without `--copy_files preprocessor_config.json` lack it.
        dragoman_stt_worker::ct2::ensure_preprocessor_config(&dir)
            .with_context(|| format!("write the preprocessor config in {}", dir.display()))?;
    }
    let manifest = Manifest {
        name: entry.name.to_owned(),
        engine: entry.kind.engine(),
        family: entry.kind.family(),
        licence: Some(entry.licence.to_owned()),
        repo: Some(entry.repo.to_owned()),
        revision: Some(revision.to_owned()),
        commit,
        endpoint: Some(hub.endpoint().to_owned()),
        pulled_at: Some(Utc::now()),
        converted_from: None,
        converted_at: None,
        verified_at: None,
        files: recorded,
    };
    manifest.write(&install_path)?;
    Ok(install_path)
}

/// The SHA-256 of the file at `local` when it is already what the hub lists; `None` when it is
/// missing or different (and must be downloaded).
async fn present_and_intact(local: &Path, file: &RemoteFile) -> anyhow::Result<Option<String>> {
    match std::fs::metadata(local) {
        Ok(meta) if meta.is_file() && meta.len() == file.size => {}
        _ => return Ok(None),
    }
    let path = local.to_path_buf();
    // Hashing a model takes seconds: off the async runtime.
    let hashes = tokio::task::spawn_blocking(move || hash_file(&path))
        .await
        .context("hash task")?
        .with_context(|| format!("read {}", local.display()))?;
    match file.check(&hashes) {
        Ok(()) => Ok(Some(hashes.sha256)),
        Err(mismatch) => {
            eprintln!("  {mismatch}; downloading it again");
            Ok(None)
        }
    }
}
