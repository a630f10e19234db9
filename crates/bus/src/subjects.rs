//! Every subject and stream name Dragoman uses, built in one place.
//!
//! Subjects carry a major version (`<namespace>.v1.…`). The namespace is `dragoman` in production;
//! tests and multi-tenant deployments pick another one so that they never see each other's traffic.
//! A breaking change to a payload is a new version published beside the old one until consumers
//! have moved; an additive change keeps the version.

use std::fmt;

/// The major version every subject in this module carries.
pub const VERSION: &str = "v1";

/// The default namespace (first subject token).
pub const DEFAULT_NAMESPACE: &str = "dragoman";

/// Queue group shared by STT workers for partial requests.
pub const STT_QUEUE_GROUP: &str = "stt";
/// Queue group shared by media-ingest instances for endpoint allocation.
pub const MEDIA_QUEUE_GROUP: &str = "media-ingest";
/// Queue group shared by translation workers for partial transcripts (`mt.translate_partials`).
pub const MT_QUEUE_GROUP: &str = "mt";
/// Queue group shared by ARI gateways for operator commands.
pub const GATEWAY_QUEUE_GROUP: &str = "ari-gateway";

/// Durable consumer shared by STT workers on the final-utterance work queue.
pub const STT_DURABLE: &str = "stt";
/// Durable consumer shared by translation workers on final transcripts.
pub const MT_DURABLE: &str = "mt";
/// Durable consumer of the recorder that stores call subjects.
pub const RECORDER_DURABLE: &str = "recorder";

/// A call id usable as a subject token from Asterisk's `linkedid` (e.g. `1718291045.17`):
/// dots become dashes. Other characters a subject cannot hold become underscores.
pub fn call_id_from_linkedid(linkedid: &str) -> String {
    linkedid
        .chars()
        .map(|c| match c {
            '.' => '-',
            '*' | '>' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect()
}

/// What kind of per-call subject a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallSubjectKind {
    /// Call lifecycle events (durable).
    Events,
    /// Final transcripts (durable).
    Transcripts,
    /// Final translations (durable).
    Translations,
    /// Partial transcripts and translations (core NATS only, loss-tolerant).
    Partials,
}

impl CallSubjectKind {
    /// The last token of the subject.
    pub fn token(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Transcripts => "transcripts",
            Self::Translations => "translations",
            Self::Partials => "partials",
        }
    }

    /// Whether messages of this kind are stored in the calls stream.
    pub fn is_durable(self) -> bool {
        !matches!(self, Self::Partials)
    }

    fn from_token(token: &str) -> Option<Self> {
        Some(match token {
            "events" => Self::Events,
            "transcripts" => Self::Transcripts,
            "translations" => Self::Translations,
            "partials" => Self::Partials,
            _ => return None,
        })
    }
}

/// A subject name was malformed (e.g. a call id with a dot or wildcard in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("invalid subject token {token:?}: must be non-empty and free of '.', '*', '>' and whitespace")]
    InvalidToken { token: String },
    #[error("subject {subject:?} is not a {namespace}.{VERSION} call subject")]
    NotACallSubject { subject: String, namespace: String },
}

/// Checks that `token` can stand alone between two dots of a subject.
pub fn validate_token(token: &str) -> Result<(), SubjectError> {
    let bad = token.is_empty()
        || token.len() > 128
        || token.chars().any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(SubjectError::InvalidToken { token: token.to_owned() });
    }
    Ok(())
}

/// Builds every subject and stream name for one namespace.
#[derive(Clone, PartialEq, Eq)]
pub struct Subjects {
    namespace: String,
}

impl fmt::Debug for Subjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subjects({}.{VERSION})", self.namespace)
    }
}

impl Default for Subjects {
    fn default() -> Self {
        Self { namespace: DEFAULT_NAMESPACE.to_owned() }
    }
}

impl Subjects {
    /// Subjects under `namespace` (one subject token, e.g. `dragoman`).
    pub fn new(namespace: &str) -> Result<Self, SubjectError> {
        validate_token(namespace)?;
        Ok(Self { namespace: namespace.to_owned() })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn root(&self) -> String {
        format!("{}.{VERSION}", self.namespace)
    }

    /// `<ns>.v1.calls.<call_id>.<kind>`.
    pub fn call(&self, call_id: &str, kind: CallSubjectKind) -> Result<String, SubjectError> {
        validate_token(call_id)?;
        Ok(format!("{}.calls.{call_id}.{}", self.root(), kind.token()))
    }

    /// `<ns>.v1.calls.*.<kind>`: one kind of subject for every call.
    pub fn all_calls(&self, kind: CallSubjectKind) -> String {
        format!("{}.calls.*.{}", self.root(), kind.token())
    }

    /// `<ns>.v1.calls.>`: everything about every call (what other internal systems subscribe to).
    pub fn every_call_subject(&self) -> String {
        format!("{}.calls.>", self.root())
    }

    /// `<ns>.v1.calls.<call_id>.>`: everything about one call.
    pub fn one_call(&self, call_id: &str) -> Result<String, SubjectError> {
        validate_token(call_id)?;
        Ok(format!("{}.calls.{call_id}.>", self.root()))
    }

    /// Splits a call subject into its call id and kind.
    pub fn parse_call(&self, subject: &str) -> Result<(String, CallSubjectKind), SubjectError> {
        let not_call =
            || SubjectError::NotACallSubject { subject: subject.to_owned(), namespace: self.namespace.clone() };
        let rest = subject.strip_prefix(&self.root()).and_then(|r| r.strip_prefix(".calls.")).ok_or_else(not_call)?;
        let (call_id, kind) = rest.split_once('.').ok_or_else(not_call)?;
        let kind = CallSubjectKind::from_token(kind).ok_or_else(not_call)?;
        validate_token(call_id).map_err(|_| not_call())?;
        Ok((call_id.to_owned(), kind))
    }

    /// Utterance-so-far audio for partial transcripts (core NATS, queue group `stt`).
    pub fn stt_partial(&self) -> String {
        format!("{}.stt.partial", self.root())
    }

    /// Complete utterance audio (JetStream work queue, durable consumer `stt`).
    pub fn stt_final(&self) -> String {
        format!("{}.stt.final", self.root())
    }

    /// Request/reply: allocate an RTP endpoint for (call, leg, format).
    pub fn media_allocate(&self) -> String {
        format!("{}.media.allocate", self.root())
    }

    /// Request/reply: release an endpoint before its call ends.
    pub fn media_release(&self) -> String {
        format!("{}.media.release", self.root())
    }

    /// Request/reply: originate a call.
    pub fn control_originate(&self) -> String {
        format!("{}.control.originate", self.root())
    }

    /// Request/reply: hang up a call.
    pub fn control_hangup(&self) -> String {
        format!("{}.control.hangup", self.root())
    }

    /// Request/reply: change a leg's language and targets.
    pub fn control_set_language(&self) -> String {
        format!("{}.control.set_language", self.root())
    }

    /// Every control subject (`<ns>.v1.control.*`).
    pub fn control_all(&self) -> String {
        format!("{}.control.*", self.root())
    }

    /// JetStream stream holding every durable call subject.
    pub fn calls_stream(&self) -> String {
        format!("{}_CALLS", self.stream_prefix())
    }

    /// JetStream work-queue stream holding final utterances.
    pub fn stt_stream(&self) -> String {
        format!("{}_STT", self.stream_prefix())
    }

    fn stream_prefix(&self) -> String {
        self.namespace.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
    }
}

/// Whether `subject` matches the NATS `pattern` (`*` one token, `>` one or more trailing tokens).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    let mut pattern_tokens = pattern.split('.').peekable();
    while let Some(p) = pattern_tokens.next() {
        if p == ">" {
            return pattern_tokens.peek().is_none() && subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(s) if p == "*" || p == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_subjects_are_versioned_and_parse_back() {
        let s = Subjects::default();
        let subject = s.call("c-1", CallSubjectKind::Transcripts).unwrap();
        assert_eq!(subject, "dragoman.v1.calls.c-1.transcripts");
        assert_eq!(s.parse_call(&subject).unwrap(), ("c-1".into(), CallSubjectKind::Transcripts));
        assert!(s.parse_call("dragoman.v1.stt.final").is_err());
        assert!(s.parse_call("other.v1.calls.c.events").is_err());
        assert!(s.parse_call("dragoman.v1.calls.c.unknown").is_err());
    }

    #[test]
    fn tokens_with_wildcards_or_dots_are_rejected() {
        let s = Subjects::default();
        for bad in ["", "a.b", "*", ">", "a b", "a\n"] {
            assert!(s.call(bad, CallSubjectKind::Events).is_err(), "{bad:?}");
        }
        assert!(Subjects::new("bad.ns").is_err());
    }

    #[test]
    fn linkedids_become_valid_call_ids() {
        let id = call_id_from_linkedid("1718291045.17");
        assert_eq!(id, "1718291045-17");
        assert!(Subjects::default().call(&id, CallSubjectKind::Events).is_ok());
        assert!(validate_token(&call_id_from_linkedid("a b*>.c")).is_ok());
    }

    #[test]
    fn stream_names_follow_the_namespace() {
        let s = Subjects::new("t-42").unwrap();
        assert_eq!(s.calls_stream(), "T_42_CALLS");
        assert_eq!(s.stt_stream(), "T_42_STT");
        assert_eq!(s.stt_final(), "t-42.v1.stt.final");
    }

    #[test]
    fn wildcard_matching_follows_nats() {
        assert!(subject_matches("a.*.c", "a.b.c"));
        assert!(!subject_matches("a.*.c", "a.b.d"));
        assert!(!subject_matches("a.*", "a.b.c"));
        assert!(subject_matches("a.>", "a.b.c"));
        assert!(!subject_matches("a.>", "a"));
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.b.c"));
        assert!(!subject_matches("a.b.c", "a.b"));
        let s = Subjects::default();
        assert!(subject_matches(&s.every_call_subject(), "dragoman.v1.calls.x.partials"));
        assert!(subject_matches(&s.all_calls(CallSubjectKind::Events), "dragoman.v1.calls.x.events"));
        assert!(!subject_matches(&s.all_calls(CallSubjectKind::Events), "dragoman.v1.calls.x.partials"));
    }
}

/// A subject to publish on: non-empty tokens, no wildcards, no whitespace.
pub fn validate_publish_subject(subject: &str) -> Result<(), crate::client::BusError> {
    let ok = !subject.is_empty()
        && subject.split('.').all(|t| !t.is_empty() && !t.contains(['*', '>']) && !t.contains(char::is_whitespace));
    if ok {
        Ok(())
    } else {
        Err(crate::client::BusError::Backend { operation: "publish", reason: format!("invalid subject {subject:?}") })
    }
}

/// A subject to subscribe to: like a publish subject, but `*` may stand for a token and `>`
/// for the rest.
pub fn validate_subscribe_subject(subject: &str) -> Result<(), crate::client::BusError> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let ok = !subject.is_empty()
        && tokens.iter().enumerate().all(|(i, t)| {
            !t.is_empty()
                && !t.contains(char::is_whitespace)
                && (*t == "*" || (*t == ">" && i == tokens.len() - 1) || !t.contains(['*', '>']))
        });
    if ok {
        Ok(())
    } else {
        Err(crate::client::BusError::Backend { operation: "subscribe", reason: format!("invalid subject {subject:?}") })
    }
}
