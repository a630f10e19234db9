//! Every event Dragoman publishes about a call, as it travels on the wire (JSON).
//!
//! Wire types accept unknown fields, so a producer may add an optional field without breaking
//! older consumers. An event `type` this version does not know decodes to [`Event::Unknown`],
//! which consumers count and skip.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::subjects::CallSubjectKind;

/// Fields every event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMeta {
    /// Unique per event; consumers deduplicate on it (writes are idempotent by event id).
    pub event_id: Uuid,
    /// The conversation this event belongs to: for calls from the PBX, Asterisk's `linkedid`
    /// made subject-safe by [`crate::subjects::call_id_from_linkedid`].
    pub call_id: String,
    /// When it happened (UTC, RFC 3339).
    pub occurred_at: DateTime<Utc>,
}

impl EventMeta {
    /// Metadata for an event that happens now, with a fresh time-ordered id.
    pub fn now(call_id: impl Into<String>) -> Self {
        Self { event_id: Uuid::now_v7(), call_id: call_id.into(), occurred_at: Utc::now() }
    }
}

/// A party's name and number as the PBX knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub number: String,
}

/// Who placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// A caller reached the Stasis application through the dialplan.
    Inbound,
    /// An operator or system asked Dragoman to originate it.
    Outbound,
}

/// Who changed a leg's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LanguageSource {
    /// Channel variables set in the dialplan (`DRAGOMAN_LANGUAGE`, `DRAGOMAN_TARGETS`).
    Dialplan,
    /// An operator through the API.
    Operator,
    /// The caller through the DTMF menu.
    Dtmf,
    /// Whisper's language detection.
    Detected,
    /// The deployment's default.
    Default,
    /// A source newer than this build.
    #[serde(other)]
    Other,
}

/// Whether a transcript or translation may still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Utterance-so-far; replaced by later partials and by the final. Loss-tolerant.
    Partial,
    /// The utterance is complete. Never lost.
    Final,
}

/// One recognised word with its timing, in ms from call start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f32>,
}

/// A call entered Dragoman.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallStarted {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub direction: CallDirection,
    #[serde(default)]
    pub caller: Party,
    #[serde(default)]
    pub callee: Party,
    /// The Stasis application that handles the call.
    #[serde(default)]
    pub application: String,
}

/// One party's audio is now flowing to media ingest as its own stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegJoined {
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Stable leg label within the call (e.g. `caller`, `callee`).
    pub leg: String,
    /// The Asterisk channel of this party.
    pub channel_id: String,
    #[serde(default)]
    pub party: Party,
    /// BCP-47 language the party speaks, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Languages this leg is translated into.
    #[serde(default)]
    pub targets: Vec<String>,
}

/// A leg's language or translation targets changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageChanged {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub leg: String,
    pub language: String,
    #[serde(default)]
    pub targets: Vec<String>,
    pub source: LanguageSource,
}

/// Whisper detected a leg's language (multilingual models with auto-detection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageDetected {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub leg: String,
    pub language: String,
    pub probability: f32,
}

/// A party pressed a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DtmfReceived {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub leg: String,
    /// One of `0-9`, `A-D`, `*`, `#`.
    pub digit: String,
    #[serde(default)]
    pub duration_ms: u64,
}

/// Asterisk's talk detector saw a party start or stop talking (TALK_DETECT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TalkingChanged {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub leg: String,
    pub talking: bool,
    /// How long the party talked, on the finished event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// The call is over; every helper channel and bridge has been torn down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEnded {
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Why it ended, in words (`hangup`, `operator`, `asterisk_restarted`, …).
    pub reason: String,
    /// Q.850 cause code from Asterisk, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<u32>,
    #[serde(default)]
    pub duration_ms: u64,
}

/// Text recognised in one utterance of one leg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptProduced {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub leg: String,
    /// Identifies the utterance across its partials, its final and its translations.
    pub utterance_id: Uuid,
    /// Utterance number within the leg, from 0.
    pub sequence: u64,
    pub stage: Stage,
    pub text: String,
    /// BCP-47 language of `text`.
    pub language: String,
    /// Mean token probability, 0..1.
    #[serde(default)]
    pub confidence: f32,
    /// Start and end of the utterance, in ms from call start.
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
    /// Languages the leg is translated into (carried so MT needs no per-call state).
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub engine: String,
    #[serde(default)]
    pub model: String,
}

/// One transcript translated into one target language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslationProduced {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub leg: String,
    pub utterance_id: Uuid,
    pub sequence: u64,
    pub stage: Stage,
    pub source_language: String,
    pub source_text: String,
    pub target_language: String,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub engine: String,
    #[serde(default)]
    pub model: String,
    /// Time spent translating, in ms.
    #[serde(default)]
    pub elapsed_ms: u64,
}

/// Any event on a call subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    CallStarted(CallStarted),
    LegJoined(LegJoined),
    LanguageChanged(LanguageChanged),
    LanguageDetected(LanguageDetected),
    DtmfReceived(DtmfReceived),
    TalkingChanged(TalkingChanged),
    CallEnded(CallEnded),
    TranscriptProduced(TranscriptProduced),
    TranslationProduced(TranslationProduced),
    /// An event type newer than this build; counted and skipped by consumers.
    #[serde(other)]
    Unknown,
}

impl Event {
    /// The common fields, or `None` for [`Event::Unknown`].
    pub fn meta(&self) -> Option<&EventMeta> {
        Some(match self {
            Self::CallStarted(e) => &e.meta,
            Self::LegJoined(e) => &e.meta,
            Self::LanguageChanged(e) => &e.meta,
            Self::LanguageDetected(e) => &e.meta,
            Self::DtmfReceived(e) => &e.meta,
            Self::TalkingChanged(e) => &e.meta,
            Self::CallEnded(e) => &e.meta,
            Self::TranscriptProduced(e) => &e.meta,
            Self::TranslationProduced(e) => &e.meta,
            Self::Unknown => return None,
        })
    }

    /// The `type` tag on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::CallStarted(_) => "CallStarted",
            Self::LegJoined(_) => "LegJoined",
            Self::LanguageChanged(_) => "LanguageChanged",
            Self::LanguageDetected(_) => "LanguageDetected",
            Self::DtmfReceived(_) => "DtmfReceived",
            Self::TalkingChanged(_) => "TalkingChanged",
            Self::CallEnded(_) => "CallEnded",
            Self::TranscriptProduced(_) => "TranscriptProduced",
            Self::TranslationProduced(_) => "TranslationProduced",
            Self::Unknown => "Unknown",
        }
    }

    /// Which per-call subject this event is published on.
    pub fn subject_kind(&self) -> CallSubjectKind {
        match self {
            Self::TranscriptProduced(e) if e.stage == Stage::Final => CallSubjectKind::Transcripts,
            Self::TranslationProduced(e) if e.stage == Stage::Final => CallSubjectKind::Translations,
            Self::TranscriptProduced(_) | Self::TranslationProduced(_) => CallSubjectKind::Partials,
            _ => CallSubjectKind::Events,
        }
    }
}
