//! `dragoman models list`: the catalogue (Whisper, then translation models), what of it is
//! installed and in what state, and what else the model directory holds.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use dragoman_runtime::Config;
use dragoman_runtime::config::MODEL_DIR_ENV;

use super::catalogue::{CATALOGUE, CT2_FILE_PATTERNS, Entry, MT_FILE_PATTERNS, ModelKind};
use super::human_bytes;
use super::local::{LocalModel, Scan, disk_bytes, scan};
use super::manifest::Manifest;

/// The report `list` prints.
pub fn list(model_dir: &Path, config: &Config) -> anyhow::Result<String> {
    let stt = &config.stt;
    let scan = scan(model_dir).with_context(|| format!("read the model directory {}", model_dir.display()))?;
    let mut out = String::new();
    let dir_source = if std::env::var_os(MODEL_DIR_ENV).is_some() {
        format!("from {MODEL_DIR_ENV}")
    } else {
        format!("the default; {MODEL_DIR_ENV} moves it")
    };
    let _ = writeln!(out, "Model directory: {} ({dir_source})", model_dir.display());
    if !model_dir.exists() {
        let _ = writeln!(out, "It does not exist yet; `dragoman models pull` creates it.");
    }
    let worker_path =
        stt.model_path.clone().unwrap_or_else(|| dragoman_stt_worker::service::default_model_path(stt.engine));
    let _ = writeln!(
        out,
        "The STT worker loads {} with {} ({}){}",
        worker_path.display(),
        ModelKind::Speech(stt.engine).label(),
        if stt.model_path.is_some() { "stt.model_path" } else { "the default for stt.engine" },
        if worker_path.exists() { "" } else { ": NOT INSTALLED" }
    );

    let mt_paths = config.mt.model_paths();
    if mt_paths.is_empty() {
        let _ = writeln!(out, "The MT worker loads no CTranslate2 model (mt.models is empty)");
    } else {
        let models: Vec<String> = mt_paths
            .iter()
            .map(|path| {
                let shown = path.strip_prefix(model_dir.join(super::catalogue::MT_SUBDIR)).unwrap_or(path);
                let missing = if path.exists() { "" } else { ": NOT INSTALLED" };
                format!("{}{missing}", shown.display())
            })
            .collect();
        let _ = writeln!(out, "The MT worker loads (mt.models): {}", models.join(", "));
    }

    let _ = writeln!(out, "\nCatalogue (Hugging Face hub; `dragoman models pull NAME`):");
    let mut rows = vec![["NAME", "ENGINE", "SIZE", "LICENCE", "REPOSITORY", "INSTALLED"].map(String::from)];
    for entry in CATALOGUE.iter().filter(|entry| matches!(entry.kind, ModelKind::Speech(_))) {
        let repo = match entry.file {
            Some(file) => format!("{}:{file}", entry.repo),
            None => entry.repo.to_owned(),
        };
        rows.push([
            entry.name.to_owned(),
            entry.kind.label().to_owned(),
            approx_bytes(entry.approx_bytes),
            entry.licence.to_owned(),
            repo,
            installed(&scan, entry),
        ]);
    }
    table(&mut out, &rows);
    let _ = writeln!(
        out,
        "CTranslate2 models take {} from their repository; ggml models take the one file named.\n\
         Licences: the Whisper weights are OpenAI's, released under MIT; the conversions keep it.",
        CT2_FILE_PATTERNS.join(", ")
    );

    let _ =
        writeln!(out, "\nTranslation models (CTranslate2, for the MT worker: pull NAME, then add NAME to mt.models):");
    let mut rows = vec![["NAME", "FAMILY", "SIZE", "LICENCE", "REPOSITORY", "INSTALLED"].map(String::from)];
    for entry in CATALOGUE.iter().filter(|entry| matches!(entry.kind, ModelKind::Translation(_))) {
        rows.push([
            entry.name.to_owned(),
            entry.kind.label().to_owned(),
            approx_bytes(entry.approx_bytes),
            entry.licence.to_owned(),
            entry.repo.to_owned(),
            installed(&scan, entry),
        ]);
    }
    table(&mut out, &rows);
    let _ = writeln!(
        out,
        "They take {} from their repository.\n\
         Licences: NLLB-200 weights are CC-BY-NC-4.0, NON-COMMERCIAL use only; M2M100 is MIT; OPUS-MT is\n\
         CC-BY-4.0 (credit Helsinki-NLP). docs/TRANSLATION.md says which to pick, and how to convert others.",
        MT_FILE_PATTERNS.join(", ")
    );

    let unknown: Vec<&LocalModel> = scan.models.iter().filter(|model| model.entry.is_none()).collect();
    if unknown.is_empty() && scan.others.is_empty() {
        let _ = writeln!(out, "\nNothing else in the model directory.");
        return Ok(out);
    }
    let _ = writeln!(out, "\nIn the model directory, not in the catalogue:");
    let mut rows = vec![["PATH", "KIND", "SIZE", "STATE"].map(String::from)];
    for model in unknown {
        rows.push([
            model.path.strip_prefix(model_dir).unwrap_or(&model.path).display().to_string(),
            match model.kind {
                ModelKind::Speech(_) => format!("{} model", model.kind.label()),
                ModelKind::Translation(_) => format!("{} translation model", model.kind.label()),
            },
            human_bytes(disk_bytes(&model.path)),
            installed_state(model),
        ]);
    }
    for other in &scan.others {
        let state = other.problem.clone().unwrap_or_else(|| "-".into());
        rows.push([other.path.display().to_string(), other.kind.clone(), human_bytes(other.bytes), state]);
    }
    table(&mut out, &rows);
    Ok(out)
}

/// The INSTALLED column of a catalogue entry.
fn installed(scan: &Scan, entry: &Entry) -> String {
    scan.models.iter().find(|model| model.entry == Some(entry)).map(installed_state).unwrap_or_else(|| "-".into())
}

/// Size on disk, and whether the model is known to be intact: verified (checksums and a load)
/// and unchanged since, pulled but never verified, changed since, or without a manifest.
fn installed_state(model: &LocalModel) -> String {
    let size = human_bytes(disk_bytes(&model.path));
    let manifest = match Manifest::read(&model.path, model.kind) {
        Ok(Some(manifest)) => manifest,
        Ok(None) => return format!("{size}, no manifest (verify loads it)"),
        Err(err) => return format!("{size}, unreadable manifest: {err:#}"),
    };
    if !manifest.sizes_match(&model.path) {
        return format!("{size}, CHANGED since it was installed (run verify)");
    }
    let origin = match (manifest.pulled_at, manifest.converted_at) {
        (_, Some(at)) => format!("converted {}", at.format("%Y-%m-%d")),
        (Some(at), None) => format!("pulled {}", at.format("%Y-%m-%d")),
        (None, None) => "installed".into(),
    };
    match manifest.verified_at {
        Some(at) => format!("{size}, {origin}, verified {}", at.format("%Y-%m-%d %H:%M UTC")),
        None => format!("{size}, {origin}, not verified yet"),
    }
}

/// A catalogue size: two significant digits are all it has (`~75 MB`, `~1.5 GB`).
fn approx_bytes(bytes: u64) -> String {
    let (value, unit) = if bytes >= 1_000_000_000 { (bytes as f64 / 1e9, "GB") } else { (bytes as f64 / 1e6, "MB") };
    if value < 10.0 { format!("~{value:.1} {unit}") } else { format!("~{value:.0} {unit}") }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table<const N: usize>(out: &mut String, rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_sizes_are_rounded() {
        assert_eq!(approx_bytes(75_000_000), "~75 MB");
        assert_eq!(approx_bytes(547 << 20), "~574 MB");
        assert_eq!(approx_bytes(1_530_000_000), "~1.5 GB");
    }

    #[test]
    fn columns_line_up_and_the_last_is_not_padded() {
        let mut out = String::new();
        table(&mut out, &[["a", "bb", "c"].map(String::from), ["ccc", "d", ""].map(String::from)]);
        assert_eq!(out, "a    bb  c\nccc  d\n");
    }
}
