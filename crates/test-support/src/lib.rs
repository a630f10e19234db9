//! Helpers shared by Dragoman's tests: real NATS on loopback, a fresh namespace per test.
//!
//! Tests talk to the NATS server at `DRAGOMAN_TEST_NATS_URL` (default `nats://127.0.0.1:4222`,
//! which `.ci/run` starts with JetStream when it is not already running). Each test gets its own
//! subject namespace and stream names, so tests never see each other's messages.

use std::time::Duration;

use dragoman_bus::{Bus, NatsOptions, Subjects};

/// The NATS server tests use.
pub fn nats_url() -> String {
    std::env::var("DRAGOMAN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A namespace no other test uses, e.g. `t-3f9c…`.
pub fn unique_namespace() -> String {
    format!("t-{}", uuid::Uuid::new_v4().simple())
}

/// A bus on the real NATS server under a fresh namespace. Panics with a clear message when NATS
/// is not reachable: the suite needs it (`.ci/run` starts it).
pub async fn nats_bus() -> Bus {
    let subjects = Subjects::new(&unique_namespace()).expect("valid namespace");
    let options = NatsOptions {
        url: nats_url(),
        name: Some("dragoman-test".into()),
        connect_timeout: Duration::from_secs(5),
        subscription_capacity: 4096,
        ..Default::default()
    };
    Bus::connect_nats(&options, subjects).await.unwrap_or_else(|e| {
        panic!("tests need NATS with JetStream at {} ({e}); run .ci/run or start nats-server -js", nats_url())
    })
}

/// An in-process bus under a fresh namespace.
pub fn memory_bus() -> Bus {
    Bus::in_process(Subjects::new(&unique_namespace()).expect("valid namespace"), 4096)
}

/// Awaits `future`, failing the test if it takes longer than `seconds`.
pub async fn within<F: std::future::Future>(seconds: u64, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {seconds} s"))
}

/// The Asterisk English prompts (Debian `asterisk-core-sounds-en-wav`, CC-BY-SA-3.0): real 8 kHz
/// telephone speech. `DRAGOMAN_ASTERISK_SOUNDS_DIR` overrides the location.
pub fn sounds_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("DRAGOMAN_ASTERISK_SOUNDS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/usr/share/asterisk/sounds/en"));
    assert!(
        dir.join("hello-world.wav").exists(),
        "asterisk prompts missing in {}: apt-get install asterisk-core-sounds-en-wav (.ci/run does)",
        dir.display()
    );
    dir
}

/// One prompt's 8 kHz 16-bit samples, by name (e.g. `hello-world`).
pub fn prompt(name: &str) -> Vec<i16> {
    let path = sounds_dir().join(format!("{name}.wav"));
    let mut reader = hound::WavReader::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels, spec.bits_per_sample), (8000, 1, 16), "{}", path.display());
    reader.samples::<i16>().collect::<Result<_, _>>().unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The reference transcripts of the English prompts (Debian `asterisk-core-sounds-en`,
/// `core-sounds-en.txt.gz`: lines `name: text`), by prompt name.
pub fn transcripts() -> std::collections::BTreeMap<String, String> {
    use std::io::Read as _;
    let path = std::env::var_os("DRAGOMAN_ASTERISK_TRANSCRIPTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz".into());
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; apt-get install asterisk-core-sounds-en (.ci/run does)", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut text).expect("read transcripts");
    text.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| l.split_once(": "))
        .map(|(name, text)| (name.trim().to_owned(), text.trim().to_owned()))
        .collect()
}

/// Text normalisation for word error rates, documented so numbers are comparable: lowercase;
/// digits spelled out one by one (`7` → `seven`, as the prompts read them); `&` → `and`; every
/// other character that is not a letter, digit or apostrophe becomes a space; apostrophes dropped
/// (`don't` = `dont`); split on whitespace.
pub fn normalise(text: &str) -> Vec<String> {
    const DIGITS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    let mut spaced = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        match c {
            '0'..='9' => {
                spaced.push(' ');
                spaced.push_str(DIGITS[c as usize - '0' as usize]);
                spaced.push(' ');
            }
            '&' => spaced.push_str(" and "),
            '\'' | '’' => {}
            c if c.is_alphanumeric() => spaced.extend(c.to_lowercase()),
            _ => spaced.push(' '),
        }
    }
    spaced.split_whitespace().map(str::to_owned).collect()
}

/// Word-level edit distance (substitutions + deletions + insertions).
pub fn word_errors(reference: &[String], hypothesis: &[String]) -> usize {
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut current = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(r != h);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[hypothesis.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_and_edit_distance() {
        assert_eq!(normalise("Press 7, then #!"), ["press", "seven", "then"]);
        assert_eq!(normalise("Don't hang up."), ["dont", "hang", "up"]);
        let r = normalise("the cat sat on the mat");
        assert_eq!(word_errors(&r, &normalise("the cat sat on the mat")), 0);
        assert_eq!(word_errors(&r, &normalise("a cat sat on mat")), 2);
        assert_eq!(word_errors(&r, &[]), 6);
    }
}
