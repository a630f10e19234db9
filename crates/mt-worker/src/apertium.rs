//! Apertium, the rule-based translator: Debian's `apertium` plus one package per language pair
//! (`apertium-eng-spa`, `apertium-spa-cat`, …). It is CPU-cheap (no model, no GPU) and
//! predictable, and covers mostly European pairs. Apertium's engine is GPL-2.0+ and its pair
//! data GPL (most pairs GPL-2.0+, some GPL-3.0): Dragoman runs it as separate processes and
//! ships none of it.
//!
//! # How a pair runs
//!
//! Each installed direction has a mode file, `/usr/share/apertium/modes/eng-spa.mode`: a shell
//! pipeline of a dozen programs (morphological analyser, tagger, transfer stages, generator,
//! post-generator). The `apertium` script starts that pipeline once per call, which costs more
//! than the translation of a sentence. Instead, [`Apertium`] starts each pair's pipeline once,
//! itself (no shell), with every stage in null-flush mode (`-z`, as `apertium -z` does): a
//! sentence followed by `\0` goes in, its translation followed by `\0` comes out, and the
//! processes stay up for the next one. Because the deformatter (`apertium-destxt`) does not
//! support null flushing, the pipeline starts at the analyser, and this module does the text
//! format's job: it escapes the stream format's reserved characters on the way in and removes
//! the escapes on the way out. The generator runs with `-n` (Apertium's `-u`), so unknown words
//! carry no `*`, `#` or `@` mark; any mark left is stripped.
//!
//! One pipeline per pair; its requests are serialised by a mutex, and several sentences of one
//! request are in the pipeline at once (at most [`WINDOW`]). A pipeline that has exited is
//! started again before the next request; one that exits or hangs during a request fails that
//! request with an error naming the stage that exited and the pipeline's last stderr lines, and
//! is restarted for the next.

use std::collections::VecDeque;
use std::io::{self, BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dragoman_bus::Language;
use dragoman_bus::language::Engine;

use crate::engine::{TranslateError, TranslationEngine};
use crate::text;

/// The engine's name in `TranslationProduced.engine`.
pub const ENGINE: &str = "apertium";
/// Where Debian's Apertium pairs install their mode files.
pub const DEFAULT_MODES_DIR: &str = "/usr/share/apertium/modes";
/// Sentences of one request in a pipeline at once. Small enough that what is written ahead
/// (at most `WINDOW` escaped pieces of [`text::MAX_PIECE_CHARS`]) fits in a pipe buffer, so a
/// write never blocks on a hung pipeline: the read timeout catches it instead.
pub const WINDOW: usize = 8;
/// Stderr lines kept per pipeline for error messages.
const STDERR_LINES: usize = 20;

/// How the Apertium engine runs.
#[derive(Debug, Clone)]
pub struct ApertiumConfig {
    /// The directory of installed mode files (`*.mode`), one per translation direction.
    pub modes_dir: PathBuf,
    /// How long one sentence may take before its pipeline is taken as hung and restarted.
    pub timeout: Duration,
    /// The longest piece sent at once, in characters; longer sentences are split.
    pub max_piece_chars: usize,
}

impl Default for ApertiumConfig {
    fn default() -> Self {
        Self {
            modes_dir: PathBuf::from(DEFAULT_MODES_DIR),
            timeout: Duration::from_secs(10),
            max_piece_chars: text::MAX_PIECE_CHARS,
        }
    }
}

/// The Apertium engine could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ApertiumError {
    #[error("cannot read apertium modes in {}: {source}", dir.display())]
    ModesDir { dir: PathBuf, source: io::Error },
    #[error("no apertium language pair installed in {} (install one, e.g. `apt-get install apertium-eng-spa`)", dir.display())]
    NoPairs { dir: PathBuf },
    #[error("apertium mode {}: {reason}", path.display())]
    Mode { path: PathBuf, reason: String },
}

/// One installed translation direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApertiumPair {
    pub source: &'static Language,
    pub target: &'static Language,
    /// The mode name (`eng-spa`, or `en-es` for older pairs).
    pub mode: String,
    pub path: PathBuf,
}

/// The directions installed in `modes_dir`: every `<source>-<target>.mode` whose codes are in
/// the language table (ISO 639-3 as in `eng-spa`, or ISO 639-1 as older pairs name themselves).
/// Variant modes (`spa-eng_US`) and debugging modes are skipped. When two modes translate the
/// same direction, the three-letter one (the newer pair) is used. Sorted by mode name.
pub fn discover_pairs(modes_dir: &Path) -> Result<Vec<ApertiumPair>, ApertiumError> {
    let entries =
        std::fs::read_dir(modes_dir).map_err(|source| ApertiumError::ModesDir { dir: modes_dir.to_owned(), source })?;
    let mut pairs: Vec<ApertiumPair> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(mode) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".mode")) else {
            continue;
        };
        let Some((source, target)) = mode.split_once('-') else { continue };
        let lookup = |code: &str| Language::from_engine_code(Engine::Apertium, code).ok();
        let (Some(source), Some(target)) = (lookup(source), lookup(target)) else {
            tracing::debug!(mode, "apertium mode skipped: not a plain pair of languages in the language table");
            continue;
        };
        if source == target {
            continue;
        }
        let pair = ApertiumPair { source, target, mode: mode.to_owned(), path };
        match pairs.iter_mut().find(|p| p.source == source && p.target == target) {
            Some(existing) if existing.mode.len() < pair.mode.len() => *existing = pair,
            Some(_) => {}
            None => pairs.push(pair),
        }
    }
    pairs.sort_by(|a, b| a.mode.cmp(&b.mode));
    Ok(pairs)
}

/// One program of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub program: String,
    pub args: Vec<String>,
}

/// Parses a mode file's pipeline (`lt-proc 'a.bin' | apertium-tagger -g $2 'b.prob' | …`) into
/// stages ready to run long-lived: each gets `-z` (null flush) first, `$1` (the generator's
/// option) becomes `-n` (no unknown-word marks) and `$2` (the tagger's) nothing. Single and
/// double quotes and backslash escapes are understood; anything else a shell would do
/// (redirections, `;`, `&`, subshells, other variables) is refused rather than run wrongly.
pub fn parse_mode(pipeline: &str) -> Result<Vec<Stage>, String> {
    let mut stages = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = pipeline.chars().peekable();

    fn end_word(words: &mut Vec<String>, word: &mut String, quoted: &mut bool) {
        if !word.is_empty() || *quoted {
            words.push(std::mem::take(word));
        }
        *quoted = false;
    }
    fn end_stage(stages: &mut Vec<Stage>, words: &mut Vec<String>) -> Result<(), String> {
        let mut stage = std::mem::take(words).into_iter();
        let program = stage.next().ok_or("empty stage in pipeline")?;
        let mut args: Vec<String> = stage.collect();
        if !args.iter().any(|a| a == "-z" || a == "--null-flush") {
            args.insert(0, "-z".to_owned());
        }
        stages.push(Stage { program, args });
        Ok(())
    }
    fn variable(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, word: &mut String) -> Result<(), String> {
        match chars.next() {
            Some('1') => word.push_str("-n"),
            Some('2') => {}
            other => return Err(format!("unsupported variable ${}", other.map(String::from).unwrap_or_default())),
        }
        Ok(())
    }

    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".to_owned()),
                    }
                }
            }
            '"' => {
                quoted = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".to_owned()),
                        },
                        Some('$') => variable(&mut chars, &mut word)?,
                        Some('`') => return Err("command substitution is not supported".to_owned()),
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".to_owned()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => word.push(c),
                None => return Err("trailing backslash".to_owned()),
            },
            '$' => variable(&mut chars, &mut word)?,
            '|' => {
                end_word(&mut words, &mut word, &mut quoted);
                end_stage(&mut stages, &mut words)?;
            }
            ';' | '&' | '<' | '>' | '`' | '(' | ')' => return Err(format!("unsupported shell syntax {c:?}")),
            c if c.is_whitespace() => end_word(&mut words, &mut word, &mut quoted),
            c => word.push(c),
        }
    }
    end_word(&mut words, &mut word, &mut quoted);
    end_stage(&mut stages, &mut words)?;
    Ok(stages)
}

/// Escapes text for Apertium's stream format, as `apertium-destxt` does: the reserved
/// characters get a backslash, and `~` (the post-generator's marker) goes in a superblank,
/// which passes through untranslated. A trailing blank lets the analyser finish the last word.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '[' | ']' | '^' | '$' | '/' | '<' | '>' | '@' | '{' | '}' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '~' => escaped.push_str("[~]"),
            c => escaped.push(c),
        }
    }
    escaped.push(' ');
    escaped
}

/// Undoes the stream format, as `apertium-retxt` does: superblank brackets go, escaped
/// characters lose their backslash. Whitespace is collapsed and trimmed.
pub fn unescape(stream: &str) -> String {
    let mut text = String::with_capacity(stream.len());
    let mut chars = stream.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.extend(chars.next()),
            '[' | ']' => {}
            c => text.push(c),
        }
    }
    text::clean(&text)
}

/// Removes unknown-word marks (`*word`, `#word`, `@word`) that Apertium would add without `-u`,
/// keeping any of those characters that the source itself contains (`press # to confirm`).
pub fn strip_marks(translation: &str, source: &str) -> String {
    let marks: Vec<char> = ['*', '#', '@'].into_iter().filter(|m| !source.contains(*m)).collect();
    if marks.is_empty() {
        return translation.to_owned();
    }
    let mut out = String::with_capacity(translation.len());
    let mut previous: Option<char> = None;
    let mut chars = translation.chars().peekable();
    while let Some(c) = chars.next() {
        let at_word_start = previous.is_none_or(|p| !p.is_alphanumeric());
        let before_word = chars.peek().is_some_and(|n| n.is_alphanumeric());
        if !(marks.contains(&c) && at_word_start && before_word) {
            out.push(c);
        }
        previous = Some(c);
    }
    out
}

/// A running pipeline.
#[derive(Debug)]
struct Running {
    children: Vec<(String, Child)>,
    stdin: ChildStdin,
    records: Receiver<Vec<u8>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Running {
    fn spawn(mode: &str, stages: &[Stage]) -> Result<Running, String> {
        let (stderr_reader, stderr_writer) = io::pipe().map_err(|e| format!("create stderr pipe: {e}"))?;
        let mut children: Vec<(String, Child)> = Vec::with_capacity(stages.len());
        let mut first_stdin = None;
        let mut previous = None;
        let kill_all = |children: &mut Vec<(String, Child)>| {
            for (_, child) in children.iter_mut() {
                child.kill().ok();
                child.wait().ok();
            }
        };
        for stage in stages {
            let stderr = match stderr_writer.try_clone() {
                Ok(writer) => writer,
                Err(e) => {
                    kill_all(&mut children);
                    return Err(format!("clone stderr pipe: {e}"));
                }
            };
            let stdin = match previous.take() {
                Some(stdout) => Stdio::from(stdout),
                None => Stdio::piped(),
            };
            let spawned = Command::new(&stage.program)
                .args(&stage.args)
                .stdin(stdin)
                .stdout(Stdio::piped())
                .stderr(stderr)
                .spawn();
            let mut child = match spawned {
                Ok(child) => child,
                Err(e) => {
                    kill_all(&mut children);
                    return Err(format!("start {}: {e}", stage.program));
                }
            };
            if first_stdin.is_none() {
                first_stdin = child.stdin.take();
            }
            previous = child.stdout.take();
            children.push((stage.program.clone(), child));
        }
        // Only the children hold the write end now, so the reader ends when they all exit.
        drop(stderr_writer);
        let (Some(stdin), Some(stdout)) = (first_stdin, previous) else {
            kill_all(&mut children);
            return Err("pipeline has no stages".to_owned());
        };

        let (sender, records) = mpsc::channel();
        let spawn_thread = |name: String, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name).spawn(body).map_err(|e| format!("start reader thread: {e}"))
        };
        let reader = spawn_thread(
            format!("apertium-{mode}"),
            Box::new(move || {
                let mut stdout = BufReader::new(stdout);
                loop {
                    let mut record = Vec::new();
                    match stdout.read_until(0, &mut record) {
                        Ok(_) if record.last() == Some(&0) => {
                            record.pop();
                            if sender.send(record).is_err() {
                                return;
                            }
                        }
                        // End of output (possibly mid-record): the pipeline is gone.
                        Ok(_) | Err(_) => return,
                    }
                }
            }),
        );
        let stderr = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_LINES)));
        let tail = Arc::clone(&stderr);
        let mode_name = mode.to_owned();
        let stderr_thread = spawn_thread(
            format!("apertium-{mode}-err"),
            Box::new(move || {
                let mut lines = BufReader::new(stderr_reader);
                let mut line = Vec::new();
                while matches!(lines.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    let text = String::from_utf8_lossy(&line).trim().to_owned();
                    line.clear();
                    if text.is_empty() {
                        continue;
                    }
                    tracing::debug!(mode = %mode_name, stderr = %text, "apertium");
                    let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                    if tail.len() == STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(text);
                }
            }),
        );
        if let Err(e) = reader.and(stderr_thread) {
            kill_all(&mut children);
            return Err(e);
        }
        Ok(Running { children, stdin, records, stderr })
    }

    /// The stages that have exited, with their status; empty while all run.
    fn exited(&mut self) -> Vec<String> {
        self.children
            .iter_mut()
            .filter_map(|(program, child)| match child.try_wait() {
                Ok(None) => None,
                Ok(Some(status)) => Some(format!("{program} exited ({status})")),
                Err(e) => Some(format!("{program}: {e}")),
            })
            .collect()
    }

    /// Why the pipeline failed, in words: what happened, which stages exited, last stderr lines.
    fn failure(&mut self, what: &str) -> String {
        let mut reason = what.to_owned();
        let exited = self.exited();
        if !exited.is_empty() {
            reason.push_str(": ");
            reason.push_str(&exited.join(", "));
        }
        let tail = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        if !tail.is_empty() {
            reason.push_str("; stderr: ");
            reason.push_str(&tail.iter().cloned().collect::<Vec<_>>().join(" | "));
        }
        reason
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(_, child)| child.id()).collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// One pair and its pipeline, when running.
#[derive(Debug)]
struct PairProcess {
    pair: ApertiumPair,
    stages: Vec<Stage>,
    running: Mutex<Option<Running>>,
}

/// The Apertium engine: every installed pair, each with one long-lived pipeline started on
/// first use.
#[derive(Debug)]
pub struct Apertium {
    config: ApertiumConfig,
    pairs: Vec<PairProcess>,
}

impl Apertium {
    /// Finds the installed pairs and reads their mode files; starts nothing yet. A mode file
    /// that cannot be read or understood is skipped with a warning; no usable pair is an error.
    pub fn new(config: ApertiumConfig) -> Result<Self, ApertiumError> {
        let mut pairs = Vec::new();
        for pair in discover_pairs(&config.modes_dir)? {
            let parsed = std::fs::read_to_string(&pair.path)
                .map_err(|e| e.to_string())
                .and_then(|pipeline| parse_mode(pipeline.trim()));
            match parsed {
                Ok(stages) => pairs.push(PairProcess { pair, stages, running: Mutex::new(None) }),
                Err(reason) => {
                    let error = ApertiumError::Mode { path: pair.path.clone(), reason };
                    tracing::warn!(error = %error, "apertium pair skipped");
                }
            }
        }
        if pairs.is_empty() {
            return Err(ApertiumError::NoPairs { dir: config.modes_dir });
        }
        Ok(Self { config, pairs })
    }

    /// The installed pairs.
    pub fn pairs(&self) -> impl Iterator<Item = &ApertiumPair> {
        self.pairs.iter().map(|p| &p.pair)
    }

    /// Starts a pair's pipeline now rather than on its first request.
    pub fn start(&self, source: &Language, target: &Language) -> Result<(), TranslateError> {
        let process = self.process(source, target)?;
        let mut running = process.running.lock().unwrap_or_else(PoisonError::into_inner);
        self.ensure_running(process, &mut running).map(|_| ())
    }

    /// The process ids of a pair's pipeline stages, first to last; empty when it is not running.
    pub fn stage_pids(&self, source: &Language, target: &Language) -> Vec<u32> {
        self.process(source, target)
            .map(|p| p.running.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(Running::pids))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn process(&self, source: &Language, target: &Language) -> Result<&PairProcess, TranslateError> {
        self.pairs.iter().find(|p| p.pair.source == source && p.pair.target == target).ok_or_else(|| {
            TranslateError::UnsupportedPair {
                engine: ENGINE.to_owned(),
                source_code: source.code(),
                target_code: target.code(),
                available: self.available(),
            }
        })
    }

    fn available(&self) -> String {
        self.pairs
            .iter()
            .map(|p| format!("{}-{}", p.pair.source.code(), p.pair.target.code()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn engine_error(&self, process: &PairProcess, reason: String) -> TranslateError {
        TranslateError::Engine { engine: ENGINE.to_owned(), model: process.pair.mode.clone(), reason }
    }

    /// The running pipeline, started (again) if it is not running or has exited since.
    fn ensure_running<'a>(
        &self,
        process: &PairProcess,
        running: &'a mut Option<Running>,
    ) -> Result<&'a mut Running, TranslateError> {
        if let Some(current) = running.as_mut()
            && !current.exited().is_empty()
        {
            let reason = current.failure("pipeline exited while idle");
            tracing::warn!(mode = %process.pair.mode, reason = %reason, "restarting apertium");
            metrics::counter!("dragoman_mt_engine_restarts_total", "engine" => ENGINE).increment(1);
            *running = None;
        }
        if running.is_none() {
            let started = Running::spawn(&process.pair.mode, &process.stages)
                .map_err(|reason| self.engine_error(process, format!("could not start the pipeline: {reason}")))?;
            tracing::info!(mode = %process.pair.mode, stages = process.stages.len(), "apertium pipeline started");
            *running = Some(started);
        }
        running.as_mut().ok_or_else(|| self.engine_error(process, "pipeline not running".to_owned()))
    }

    /// Translates pieces through one pair's pipeline, [`WINDOW`] at a time. On a failure, the
    /// pieces not yet translated all get the error and the pipeline is stopped, to be started
    /// again by the next request.
    fn translate_pieces(&self, process: &PairProcess, pieces: &[String]) -> Vec<Result<String, TranslateError>> {
        if pieces.is_empty() {
            return Vec::new();
        }
        let mut guard = process.running.lock().unwrap_or_else(PoisonError::into_inner);
        let running = match self.ensure_running(process, &mut guard) {
            Ok(running) => running,
            Err(err) => return vec![Err(err); pieces.len()],
        };
        let mut results: Vec<Result<String, TranslateError>> = Vec::with_capacity(pieces.len());
        let mut sent = 0;
        let mut failure = None;
        while results.len() < pieces.len() && failure.is_none() {
            while sent < pieces.len() && sent - results.len() < WINDOW {
                let mut request = escape(&pieces[sent]).into_bytes();
                request.push(0);
                if let Err(e) = running.stdin.write_all(&request).and_then(|()| running.stdin.flush()) {
                    failure = Some(self.engine_error(process, running.failure(&format!("write to the pipeline: {e}"))));
                    break;
                }
                sent += 1;
            }
            if failure.is_some() {
                break;
            }
            match running.records.recv_timeout(self.config.timeout) {
                // A stage that exits makes the stages after it flush and emit `\0` at end of
                // input: a record that arrives while a stage has exited is not a translation.
                Ok(record) if running.exited().is_empty() => {
                    let source = &pieces[results.len()];
                    let translation = unescape(&String::from_utf8_lossy(&record));
                    results.push(Ok(strip_marks(&translation, source)));
                }
                Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                    let reason = running.failure("the pipeline exited while translating");
                    failure = Some(self.engine_error(process, format!("{reason} (restarted for the next request)")));
                }
                Err(RecvTimeoutError::Timeout) => {
                    failure = Some(TranslateError::Timeout {
                        engine: ENGINE.to_owned(),
                        model: process.pair.mode.clone(),
                        timeout_ms: u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX),
                    });
                }
            }
        }
        if let Some(err) = failure {
            tracing::warn!(mode = %process.pair.mode, error = %err, "apertium pipeline failed; stopping it");
            metrics::counter!("dragoman_mt_engine_restarts_total", "engine" => ENGINE).increment(1);
            *guard = None;
            results.resize(pieces.len(), Err(err));
        }
        results
    }
}

impl TranslationEngine for Apertium {
    fn name(&self) -> &str {
        ENGINE
    }

    fn model(&self, source: &Language, target: &Language) -> String {
        self.process(source, target).map(|p| p.pair.mode.clone()).unwrap_or_default()
    }

    fn supports(&self, source: &Language, target: &Language) -> bool {
        self.process(source, target).is_ok()
    }

    fn translate_batch(
        &self,
        texts: &[&str],
        source: &Language,
        target: &Language,
    ) -> Vec<Result<String, TranslateError>> {
        let process = match self.process(source, target) {
            Ok(process) => process,
            Err(err) => return vec![Err(err); texts.len()],
        };
        let per_text: Vec<Vec<String>> =
            texts.iter().map(|text| text::pieces(text, self.config.max_piece_chars)).collect();
        let all: Vec<String> = per_text.iter().flatten().cloned().collect();
        let counts: Vec<usize> = per_text.iter().map(Vec::len).collect();
        text::regroup(self.translate_pieces(process, &all), &counts, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENG_SPA: &str = "lt-proc '/usr/share/apertium/apertium-eng-spa/eng-spa.automorf.bin' | apertium-tagger \
        -g $2 '/usr/share/apertium/apertium-eng-spa/eng-spa.prob' | apertium-pretransfer | lt-proc $1 \
        '/usr/share/apertium/apertium-eng-spa/eng-spa.autogen.bin' | lt-proc -p '/x y/eng-spa.autopgen.bin'";

    fn stage(program: &str, args: &[&str]) -> Stage {
        Stage { program: program.to_owned(), args: args.iter().map(|a| (*a).to_owned()).collect() }
    }

    #[test]
    fn mode_pipelines_become_null_flush_stages() {
        let stages = parse_mode(ENG_SPA).expect("parse");
        assert_eq!(
            stages,
            [
                stage("lt-proc", &["-z", "/usr/share/apertium/apertium-eng-spa/eng-spa.automorf.bin"]),
                stage("apertium-tagger", &["-z", "-g", "/usr/share/apertium/apertium-eng-spa/eng-spa.prob"]),
                stage("apertium-pretransfer", &["-z"]),
                stage("lt-proc", &["-z", "-n", "/usr/share/apertium/apertium-eng-spa/eng-spa.autogen.bin"]),
                stage("lt-proc", &["-z", "-p", "/x y/eng-spa.autopgen.bin"]),
            ]
        );
    }

    #[test]
    fn mode_quoting_and_existing_null_flush() {
        let stages = parse_mode(r#"cg-proc -z "a b.bin" "$1" x\ y '' | sed -u 's/|/;/'"#).expect("parse");
        assert_eq!(
            stages,
            [stage("cg-proc", &["-z", "a b.bin", "-n", "x y", ""]), stage("sed", &["-z", "-u", "s/|/;/"])]
        );
    }

    #[test]
    fn mode_shell_syntax_is_refused() {
        for pipeline in
            ["a > out", "a; b", "a && b", "a | | b", "", "a '", "a \"b", "a $HOME", "a `b`", "a $(b)", "a |"]
        {
            assert!(parse_mode(pipeline).is_err(), "{pipeline:?}");
        }
    }

    #[test]
    fn escape_and_unescape_round_trip() {
        let text = r"a [b] ^c$ /d\ <e> {f} @g ~h *i #j";
        let escaped = escape(text);
        assert_eq!(escaped, r"a \[b\] \^c\$ \/d\\ \<e\> \{f\} \@g [~]h *i #j ");
        assert_eq!(unescape(&escaped), text);
        assert_eq!(unescape("El  perro \\[x\\]  [~] ruidosamente. "), "El perro [x] ~ ruidosamente.");
        assert_eq!(unescape(""), "");
    }

    #[test]
    fn unknown_word_marks_are_stripped_unless_the_source_has_them() {
        assert_eq!(strip_marks("*xyzzy y #plugh con @foo.", "xyzzy and plugh with foo."), "xyzzy y plugh con foo.");
        assert_eq!(strip_marks("Pulse # para confirmar", "Press # to confirm"), "Pulse # para confirmar");
        assert_eq!(strip_marks("a*b 5 * 3 # @", "ab"), "a*b 5 * 3 # @", "only marks before a word go");
        assert_eq!(strip_marks("correo a@b", "mail a@b"), "correo a@b");
    }

    fn modes_dir(files: &[(&str, &str)]) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dragoman-apertium-unit-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (name, content) in files {
            std::fs::write(dir.join(name), content).expect("write mode");
        }
        dir
    }

    #[test]
    fn pairs_are_discovered_from_mode_file_names() {
        let dir = modes_dir(&[
            ("eng-spa.mode", "x"),
            ("spa-eng.mode", "x"),
            ("spa-eng_US.mode", "x"),
            ("en-es.mode", "x"),
            ("es-ca.mode", "x"),
            ("hbs-eng.mode", "x"),
            ("eng-spa-tagger.mode", "x"),
            ("README", "x"),
        ]);
        let pairs = discover_pairs(&dir).expect("discover");
        let modes: Vec<&str> = pairs.iter().map(|p| p.mode.as_str()).collect();
        assert_eq!(modes, ["eng-spa", "es-ca", "spa-eng"]);
        assert_eq!(pairs[1].source.code(), "es");
        assert_eq!(pairs[1].target.code(), "ca");
        std::fs::remove_dir_all(&dir).ok();

        let missing = discover_pairs(Path::new("/nonexistent/modes")).expect_err("must be refused");
        assert!(missing.to_string().starts_with("cannot read apertium modes in /nonexistent/modes"), "{missing}");
        let empty = modes_dir(&[]);
        let err = Apertium::new(ApertiumConfig { modes_dir: empty.clone(), ..ApertiumConfig::default() })
            .expect_err("must be refused");
        assert!(matches!(err, ApertiumError::NoPairs { .. }), "{err}");
        std::fs::remove_dir_all(&empty).ok();
    }
}
