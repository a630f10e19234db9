//! What the store keeps about a call, built from its events by one pure fold that both stores
//! share, so Redis and memory cannot disagree on what an event means.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use dragoman_bus::Event;
use dragoman_bus::events::{
    CallDirection, LanguageSource, Party, Stage, TranscriptProduced, TranslationProduced, Word,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Whether a call is still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Active,
    /// `CallEnded` was stored. Later events (a last translation) are still stored, and the call
    /// stays ended.
    Ended,
}

/// One party of a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegRecord {
    /// The Asterisk channel, from `LegJoined` (empty until it is stored).
    pub channel_id: String,
    pub party: Party,
    pub joined_at: Option<DateTime<Utc>>,
    /// The language the party speaks, as last set (dialplan, operator, DTMF).
    pub language: Option<String>,
    /// Languages this leg is translated into.
    pub targets: Vec<String>,
    /// Who set `language` and `targets` last.
    pub language_source: Option<LanguageSource>,
    /// When `language` was set, so that a late-stored older change does not win.
    pub language_changed_at: Option<DateTime<Utc>>,
    /// Whisper's latest detection, with its probability.
    pub detected_language: Option<String>,
    pub detected_probability: Option<f32>,
    pub detected_at: Option<DateTime<Utc>>,
    /// Asterisk's talk detector, as last reported.
    pub talking: bool,
    pub talking_changed_at: Option<DateTime<Utc>>,
    /// Final transcripts stored for this leg.
    pub transcripts: u64,
}

/// A call as the operator API shows it: who, which legs in which languages, what state, when.
/// Transcript lines are not in it (see [`Transcript`]), so it stays small however long the
/// call is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: String,
    pub state: CallState,
    /// When the call started: `CallStarted`'s time, or the earliest event stored so far when
    /// `CallStarted` has not been stored (yet).
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The latest `occurred_at` of the call's stored events.
    pub last_event_at: DateTime<Utc>,
    /// From `CallStarted`; `None` until it is stored.
    pub direction: Option<CallDirection>,
    #[serde(default)]
    pub caller: Party,
    #[serde(default)]
    pub callee: Party,
    #[serde(default)]
    pub application: String,
    /// Legs by label (`caller`, `callee`, …).
    #[serde(default)]
    pub legs: BTreeMap<String, LegRecord>,
    /// From `CallEnded`.
    #[serde(default)]
    pub end_reason: Option<String>,
    #[serde(default)]
    pub end_cause: Option<u32>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Final transcripts and translations stored.
    #[serde(default)]
    pub transcripts: u64,
    #[serde(default)]
    pub translations: u64,
    /// Sequence number of the call's last stored event (1, 2, 3, … in the order they were
    /// stored); `events_after(call_id, last_seq)` is empty.
    pub last_seq: u64,
}

impl CallRecord {
    /// A record with no events yet, for the call `event` belongs to.
    pub fn new(call_id: &str, first_at: DateTime<Utc>) -> Self {
        Self {
            call_id: call_id.to_owned(),
            state: CallState::Active,
            started_at: first_at,
            ended_at: None,
            last_event_at: first_at,
            direction: None,
            caller: Party::default(),
            callee: Party::default(),
            application: String::new(),
            legs: BTreeMap::new(),
            end_reason: None,
            end_cause: None,
            duration_ms: None,
            transcripts: 0,
            translations: 0,
            last_seq: 0,
        }
    }

    /// The record after `event`, stored as number `seq`. The result does not depend on the
    /// order events are applied in (the recorder stores several at once, and redeliveries come
    /// late): times take the minimum or maximum, "latest wins" fields compare `occurred_at`, and
    /// an ended call stays ended.
    pub fn apply(&mut self, event: &Event, seq: u64) {
        let Some(meta) = event.meta() else { return };
        let at = meta.occurred_at;
        self.started_at = self.started_at.min(at);
        self.last_event_at = self.last_event_at.max(at);
        self.last_seq = self.last_seq.max(seq);
        match event {
            Event::CallStarted(e) => {
                self.direction = Some(e.direction);
                self.caller = e.caller.clone();
                self.callee = e.callee.clone();
                self.application = e.application.clone();
            }
            Event::LegJoined(e) => {
                let leg = self.legs.entry(e.leg.clone()).or_default();
                leg.channel_id = e.channel_id.clone();
                leg.party = e.party.clone();
                leg.joined_at = Some(at);
                if let Some(language) = &e.language {
                    set_language(leg, language, &e.targets, LanguageSource::Dialplan, at);
                }
            }
            Event::LanguageChanged(e) => {
                set_language(self.legs.entry(e.leg.clone()).or_default(), &e.language, &e.targets, e.source, at);
            }
            Event::LanguageDetected(e) => {
                let leg = self.legs.entry(e.leg.clone()).or_default();
                if leg.detected_at.is_none_or(|previous| previous <= at) {
                    leg.detected_language = Some(e.language.clone());
                    leg.detected_probability = Some(e.probability);
                    leg.detected_at = Some(at);
                }
            }
            Event::TalkingChanged(e) => {
                let leg = self.legs.entry(e.leg.clone()).or_default();
                if leg.talking_changed_at.is_none_or(|previous| previous <= at) {
                    leg.talking = e.talking;
                    leg.talking_changed_at = Some(at);
                }
            }
            Event::CallEnded(e) => {
                self.state = CallState::Ended;
                self.ended_at = Some(at);
                self.end_reason = Some(e.reason.clone());
                self.end_cause = e.cause;
                self.duration_ms = Some(e.duration_ms);
                for leg in self.legs.values_mut() {
                    leg.talking = false;
                }
            }
            Event::TranscriptProduced(e) => {
                self.transcripts += 1;
                self.legs.entry(e.leg.clone()).or_default().transcripts += 1;
            }
            Event::TranslationProduced(_) => self.translations += 1,
            Event::DtmfReceived(_) | Event::Unknown => {}
        }
    }
}

fn set_language(leg: &mut LegRecord, language: &str, targets: &[String], source: LanguageSource, at: DateTime<Utc>) {
    if leg.language_changed_at.is_some_and(|previous| previous > at) {
        return;
    }
    leg.language = Some(language.to_owned());
    leg.targets = targets.to_vec();
    leg.language_source = Some(source);
    leg.language_changed_at = Some(at);
}

/// Whether the store keeps `event`. Partial transcripts and translations are live-only: they
/// travel on core NATS outside the calls stream, are replaced by their final within seconds,
/// and are never stored. Events of a type this build does not know are not stored either.
pub fn is_stored(event: &Event) -> bool {
    match event {
        Event::TranscriptProduced(e) => e.stage == Stage::Final,
        Event::TranslationProduced(e) => e.stage == Stage::Final,
        Event::Unknown => false,
        _ => true,
    }
}

/// One stored event with its number within the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// 1, 2, 3, … without gaps, in the order the store received the call's events.
    pub seq: u64,
    pub event: Event,
}

/// One event of the all-calls feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// Opaque, increasing; pass it back to `feed_after` to read what came after.
    pub cursor: String,
    pub call_id: String,
    /// The event's number within its call (as in [`StoredEvent`]).
    pub seq: u64,
    pub event: Event,
}

/// One text in one target language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslationText {
    pub text: String,
    pub engine: String,
    pub model: String,
}

/// One final utterance of one leg with its translations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptLine {
    pub leg: String,
    pub utterance_id: Uuid,
    /// Utterance number within the leg.
    pub sequence: u64,
    /// Start and end of the utterance, in ms from call start (for SRT/WebVTT cues).
    pub start_ms: u64,
    pub end_ms: u64,
    /// The language spoken and the recognised text.
    pub language: String,
    pub text: String,
    pub confidence: f32,
    #[serde(default)]
    pub words: Vec<Word>,
    pub engine: String,
    pub model: String,
    /// When the transcript was produced.
    pub produced_at: DateTime<Utc>,
    /// Translations by target language.
    pub translations: BTreeMap<String, TranslationText>,
}

/// A call's final transcript, lines ordered by start time (then leg, then utterance number).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Transcript {
    pub call_id: String,
    pub lines: Vec<TranscriptLine>,
}

/// Builds a [`Transcript`] from a call's stored events, in any order. One line per utterance:
/// a translation stored before its transcript still finds its line, and a translation whose
/// transcript was never stored makes a line from its source text.
#[derive(Debug, Default)]
pub struct TranscriptBuilder {
    lines: BTreeMap<Uuid, TranscriptLine>,
}

impl TranscriptBuilder {
    pub fn add(&mut self, event: &Event) {
        match event {
            Event::TranscriptProduced(e) if e.stage == Stage::Final => self.add_transcript(e),
            Event::TranslationProduced(e) if e.stage == Stage::Final => self.add_translation(e),
            _ => {}
        }
    }

    fn add_transcript(&mut self, e: &TranscriptProduced) {
        let translations = self.lines.remove(&e.utterance_id).map(|line| line.translations).unwrap_or_default();
        self.lines.insert(
            e.utterance_id,
            TranscriptLine {
                leg: e.leg.clone(),
                utterance_id: e.utterance_id,
                sequence: e.sequence,
                start_ms: e.start_ms,
                end_ms: e.end_ms,
                language: e.language.clone(),
                text: e.text.clone(),
                confidence: e.confidence,
                words: e.words.clone(),
                engine: e.engine.clone(),
                model: e.model.clone(),
                produced_at: e.meta.occurred_at,
                translations,
            },
        );
    }

    fn add_translation(&mut self, e: &TranslationProduced) {
        let line = self.lines.entry(e.utterance_id).or_insert_with(|| TranscriptLine {
            leg: e.leg.clone(),
            utterance_id: e.utterance_id,
            sequence: e.sequence,
            start_ms: e.start_ms,
            end_ms: e.end_ms,
            language: e.source_language.clone(),
            text: e.source_text.clone(),
            confidence: 0.0,
            words: Vec::new(),
            engine: String::new(),
            model: String::new(),
            produced_at: e.meta.occurred_at,
            translations: BTreeMap::new(),
        });
        line.translations.insert(
            e.target_language.clone(),
            TranslationText { text: e.text.clone(), engine: e.engine.clone(), model: e.model.clone() },
        );
    }

    pub fn finish(self, call_id: &str) -> Transcript {
        let mut lines: Vec<TranscriptLine> = self.lines.into_values().collect();
        lines.sort_by(|a, b| {
            (a.start_ms, &a.leg, a.sequence, a.utterance_id).cmp(&(b.start_ms, &b.leg, b.sequence, b.utterance_id))
        });
        Transcript { call_id: call_id.to_owned(), lines }
    }
}

#[cfg(test)]
mod tests {
    use dragoman_bus::events::{CallEnded, EventMeta, LanguageChanged};

    use super::*;

    fn meta(call_id: &str, seconds: i64) -> EventMeta {
        let mut meta = EventMeta::now(call_id);
        meta.occurred_at = DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap_or_default();
        meta
    }

    #[test]
    fn the_record_does_not_depend_on_the_order_events_are_applied_in() {
        let events = [
            Event::LanguageChanged(LanguageChanged {
                meta: meta("c", 1),
                leg: "caller".into(),
                language: "en".into(),
                targets: vec!["es".into()],
                source: LanguageSource::Dialplan,
            }),
            Event::LanguageChanged(LanguageChanged {
                meta: meta("c", 5),
                leg: "caller".into(),
                language: "fr".into(),
                targets: vec!["de".into()],
                source: LanguageSource::Operator,
            }),
            Event::CallEnded(CallEnded {
                meta: meta("c", 9),
                reason: "hangup".into(),
                cause: Some(16),
                duration_ms: 8000,
            }),
        ];
        let fold = |order: &[usize]| {
            let mut record = CallRecord::new("c", events[order[0]].meta().map(|m| m.occurred_at).unwrap_or_default());
            for (seq, &i) in order.iter().enumerate() {
                record.apply(&events[i], seq as u64 + 1);
            }
            record
        };
        let in_order = fold(&[0, 1, 2]);
        assert_eq!(in_order, fold(&[2, 1, 0]));
        assert_eq!(in_order, fold(&[1, 2, 0]));
        assert_eq!(in_order.state, CallState::Ended);
        assert_eq!(in_order.legs["caller"].language.as_deref(), Some("fr"));
        assert_eq!(in_order.legs["caller"].targets, ["de"]);
        assert_eq!(in_order.started_at, meta("c", 1).occurred_at);
    }
}
