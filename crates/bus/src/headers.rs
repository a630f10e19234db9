//! Message headers, and the names Dragoman puts in them.

/// W3C trace context (`traceparent`), so one trace follows an utterance across processes.
pub const TRACEPARENT: &str = "traceparent";
/// W3C trace state, carried when present.
pub const TRACESTATE: &str = "tracestate";
/// JetStream de-duplication id (idempotent publish of durable messages).
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The JSON event type, so a consumer can route without parsing the body.
pub const EVENT_TYPE: &str = "Dragoman-Event-Type";

pub const CALL_ID: &str = "Dragoman-Call-Id";
pub const LEG: &str = "Dragoman-Leg";
pub const UTTERANCE_ID: &str = "Dragoman-Utterance-Id";
pub const SEQUENCE: &str = "Dragoman-Sequence";
pub const STAGE: &str = "Dragoman-Stage";
pub const FORMAT: &str = "Dragoman-Format";
pub const SAMPLE_RATE: &str = "Dragoman-Sample-Rate";
pub const START_MS: &str = "Dragoman-Start-Ms";
pub const END_MS: &str = "Dragoman-End-Ms";
pub const LANGUAGE: &str = "Dragoman-Language";
pub const TARGETS: &str = "Dragoman-Targets";
pub const SENT_AT_MS: &str = "Dragoman-Sent-At-Ms";
pub const PROMPT: &str = "Dragoman-Prompt";

/// An ordered multimap of header names to values. Names compare case-insensitively on lookup,
/// as NATS headers do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, replacing earlier values.
    ///
    /// Header values come partly from outside (leg names, languages, prompts), and NATS treats
    /// a line break in a header as a protocol violation (async-nats asserts on it), so control
    /// characters become spaces and names keep only visible ASCII other than `:`.
    pub fn insert(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        let name: String = name.chars().filter(|c| c.is_ascii_graphic() && *c != ':').collect();
        let mut value = value.into();
        if value.chars().any(char::is_control) {
            value = value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        }
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.entries.push((name, value));
        self
    }

    /// Builder form of [`Headers::insert`].
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn to_nats(&self) -> async_nats::HeaderMap {
        let mut map = async_nats::HeaderMap::new();
        for (name, value) in &self.entries {
            map.append(name.as_str(), value.as_str());
        }
        map
    }

    pub(crate) fn from_nats(map: Option<&async_nats::HeaderMap>) -> Self {
        let mut headers = Self::new();
        if let Some(map) = map {
            for (name, values) in map.iter() {
                for value in values {
                    headers.entries.push((name.to_string(), value.as_str().to_owned()));
                }
            }
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_insert_replaces() {
        let mut h = Headers::new().with("Dragoman-Leg", "a");
        assert_eq!(h.get("dragoman-leg"), Some("a"));
        h.insert("DRAGOMAN-LEG", "b");
        assert_eq!(h.iter().count(), 1);
        assert_eq!(h.get("Dragoman-Leg"), Some("b"));
    }

    #[test]
    fn line_breaks_and_bad_names_cannot_reach_the_wire() {
        let h = Headers::new().with("Bad:Name \n", "a\r\nInjected: yes\u{0}");
        let (name, value) = h.iter().next().unwrap();
        assert_eq!(name, "BadName");
        assert_eq!(value, "a  Injected: yes ");
        // async-nats asserts on CR/LF; this must not panic.
        let _ = h.to_nats();
    }

    #[test]
    fn nats_header_map_round_trips() {
        let h = Headers::new().with(TRACEPARENT, "00-abc-def-01").with(LEG, "caller");
        let back = Headers::from_nats(Some(&h.to_nats()));
        assert_eq!(back.get(TRACEPARENT), Some("00-abc-def-01"));
        assert_eq!(back.get(LEG), Some("caller"));
    }
}
