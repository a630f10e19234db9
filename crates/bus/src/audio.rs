//! Audio on the bus: the codec bytes as the payload, everything else in headers.
//!
//! Keeping the payload as received (ulaw 8 kHz is 4× smaller than 16-bit 16 kHz) keeps an
//! utterance well under NATS's 1 MB default payload limit; [`MAX_UTTERANCE_MS`] caps it.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::Stage;
use crate::headers::{self, Headers};
use crate::wire::DecodeError;

/// Longest utterance media ingest may publish; 20 s of slin16 is 640 kB.
pub const MAX_UTTERANCE_MS: u64 = 20_000;

/// How audio samples are encoded. Names follow Asterisk's format names where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    /// G.711 µ-law, 8 kHz (RTP payload type 0).
    Ulaw,
    /// G.711 A-law, 8 kHz (RTP payload type 8).
    Alaw,
    /// Signed 16-bit big-endian linear PCM, 8 kHz (Asterisk `slin`).
    Slin,
    /// Signed 16-bit big-endian linear PCM, 16 kHz (Asterisk `slin16`, RTP payload type 118).
    Slin16,
    /// Signed 16-bit little-endian PCM, 16 kHz mono: what media ingest emits after resampling.
    Pcm16le,
}

impl AudioFormat {
    pub const ALL: [AudioFormat; 5] = [Self::Ulaw, Self::Alaw, Self::Slin, Self::Slin16, Self::Pcm16le];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ulaw => "ulaw",
            Self::Alaw => "alaw",
            Self::Slin => "slin",
            Self::Slin16 => "slin16",
            Self::Pcm16le => "pcm16le",
        }
    }

    pub fn sample_rate(self) -> u32 {
        match self {
            Self::Ulaw | Self::Alaw | Self::Slin => 8_000,
            Self::Slin16 | Self::Pcm16le => 16_000,
        }
    }

    pub fn bytes_per_sample(self) -> usize {
        match self {
            Self::Ulaw | Self::Alaw => 1,
            Self::Slin | Self::Slin16 | Self::Pcm16le => 2,
        }
    }

    /// Duration of `len` payload bytes, in ms.
    pub fn duration_ms(self, len: usize) -> u64 {
        let samples = (len / self.bytes_per_sample()) as u64;
        samples * 1000 / u64::from(self.sample_rate())
    }
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AudioFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown audio format {s:?} (expected one of ulaw, alaw, slin, slin16, pcm16le)"))
    }
}

/// Everything about an utterance except its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct UtteranceMeta {
    pub call_id: String,
    pub leg: String,
    pub utterance_id: Uuid,
    /// Utterance number within the leg, from 0.
    pub sequence: u64,
    pub stage: Stage,
    pub format: AudioFormat,
    /// Start and end in ms from call start.
    pub start_ms: u64,
    pub end_ms: u64,
    /// Expected BCP-47 language, or `None` to let the engine detect it.
    pub language: Option<String>,
    /// Languages to translate into.
    pub targets: Vec<String>,
    /// Unix time in ms when it was published; STT drops partials older than its limit.
    pub sent_at_ms: u64,
    /// Per-call prompt words (names, product words) to bias recognition.
    pub prompt: Option<String>,
}

/// An utterance request for STT: metadata in headers, codec bytes as payload.
#[derive(Debug, Clone, PartialEq)]
pub struct UtteranceAudio {
    pub meta: UtteranceMeta,
    pub audio: Bytes,
}

impl UtteranceAudio {
    /// Headers for the bus. Final utterances also get a de-duplication id.
    pub fn to_headers(&self) -> Headers {
        let m = &self.meta;
        let mut h = Headers::new()
            .with(headers::CALL_ID, &m.call_id)
            .with(headers::LEG, &m.leg)
            .with(headers::UTTERANCE_ID, m.utterance_id.to_string())
            .with(headers::SEQUENCE, m.sequence.to_string())
            .with(headers::STAGE, stage_str(m.stage))
            .with(headers::FORMAT, m.format.as_str())
            .with(headers::SAMPLE_RATE, m.format.sample_rate().to_string())
            .with(headers::START_MS, m.start_ms.to_string())
            .with(headers::END_MS, m.end_ms.to_string())
            .with(headers::TARGETS, m.targets.join(","))
            .with(headers::SENT_AT_MS, m.sent_at_ms.to_string());
        if let Some(language) = &m.language {
            h.insert(headers::LANGUAGE, language);
        }
        if let Some(prompt) = &m.prompt {
            // Header values cannot hold line breaks.
            h.insert(headers::PROMPT, prompt.replace(['\r', '\n'], " "));
        }
        if m.stage == Stage::Final {
            h.insert(headers::MSG_ID, format!("utt-{}", m.utterance_id));
        }
        h
    }

    /// Reads an utterance back from a bus message.
    pub fn from_parts(headers: &Headers, audio: Bytes) -> Result<Self, DecodeError> {
        let text = |name: &'static str| headers.get(name).ok_or(DecodeError::MissingHeader { name });
        let number = |name: &'static str| -> Result<u64, DecodeError> {
            text(name)?
                .parse()
                .map_err(|_| DecodeError::InvalidHeader { name, reason: "not an unsigned integer".into() })
        };
        let format: AudioFormat = text(headers::FORMAT)?
            .parse()
            .map_err(|reason| DecodeError::InvalidHeader { name: headers::FORMAT, reason })?;
        if let Some(rate) = headers.get(headers::SAMPLE_RATE)
            && rate != format.sample_rate().to_string()
        {
            return Err(DecodeError::InvalidHeader {
                name: headers::SAMPLE_RATE,
                reason: format!("{rate} does not match format {format}"),
            });
        }
        if format.duration_ms(audio.len()) > MAX_UTTERANCE_MS {
            return Err(DecodeError::InvalidPayload(format!(
                "{} ms of audio is over the {MAX_UTTERANCE_MS} ms utterance limit",
                format.duration_ms(audio.len())
            )));
        }
        if !audio.len().is_multiple_of(format.bytes_per_sample()) {
            return Err(DecodeError::InvalidPayload(format!(
                "{} bytes is not a whole number of {format} samples",
                audio.len()
            )));
        }
        let stage = match text(headers::STAGE)? {
            "partial" => Stage::Partial,
            "final" => Stage::Final,
            other => {
                return Err(DecodeError::InvalidHeader {
                    name: headers::STAGE,
                    reason: format!("{other:?} is neither partial nor final"),
                });
            }
        };
        let start_ms = number(headers::START_MS)?;
        let end_ms = number(headers::END_MS)?;
        if end_ms < start_ms {
            return Err(DecodeError::InvalidHeader { name: headers::END_MS, reason: "ends before it starts".into() });
        }
        let call_id = text(headers::CALL_ID)?.to_owned();
        crate::subjects::validate_token(&call_id)
            .map_err(|e| DecodeError::InvalidHeader { name: headers::CALL_ID, reason: e.to_string() })?;
        Ok(Self {
            meta: UtteranceMeta {
                call_id,
                leg: text(headers::LEG)?.to_owned(),
                utterance_id: text(headers::UTTERANCE_ID)?.parse().map_err(|_| DecodeError::InvalidHeader {
                    name: headers::UTTERANCE_ID,
                    reason: "not a UUID".into(),
                })?,
                sequence: number(headers::SEQUENCE)?,
                stage,
                format,
                start_ms,
                end_ms,
                language: headers.get(headers::LANGUAGE).filter(|l| !l.is_empty()).map(str::to_owned),
                targets: headers
                    .get(headers::TARGETS)
                    .unwrap_or_default()
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
                sent_at_ms: number(headers::SENT_AT_MS)?,
                prompt: headers.get(headers::PROMPT).map(str::to_owned),
            },
            audio,
        })
    }
}

fn stage_str(stage: Stage) -> &'static str {
    match stage {
        Stage::Partial => "partial",
        Stage::Final => "final",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> UtteranceAudio {
        UtteranceAudio {
            meta: UtteranceMeta {
                call_id: "1700000000.42".replace('.', "-"),
                leg: "caller".into(),
                utterance_id: Uuid::nil(),
                sequence: 3,
                stage: Stage::Final,
                format: AudioFormat::Ulaw,
                start_ms: 1_000,
                end_ms: 1_020,
                language: Some("en".into()),
                targets: vec!["es".into(), "fr".into()],
                sent_at_ms: 1_700_000_000_000,
                prompt: Some("Dragoman\nAcme".into()),
            },
            audio: Bytes::from(vec![0xff; 160]),
        }
    }

    #[test]
    fn utterance_round_trips_through_headers() {
        let u = sample();
        let h = u.to_headers();
        assert_eq!(h.get(headers::MSG_ID), Some("utt-00000000-0000-0000-0000-000000000000"));
        let back = UtteranceAudio::from_parts(&h, u.audio.clone()).unwrap();
        let mut expected = u;
        expected.meta.prompt = Some("Dragoman Acme".into());
        assert_eq!(back, expected);
    }

    #[test]
    fn bad_headers_are_named_in_the_error() {
        let u = sample();
        let mut h = u.to_headers();
        h.insert(headers::FORMAT, "mp3");
        let err = UtteranceAudio::from_parts(&h, u.audio.clone()).unwrap_err();
        assert!(err.to_string().contains("Dragoman-Format"), "{err}");

        let h = Headers::new();
        let err = UtteranceAudio::from_parts(&h, u.audio.clone()).unwrap_err();
        assert!(matches!(err, DecodeError::MissingHeader { .. }));

        let mut h = u.to_headers();
        h.insert(headers::FORMAT, "slin16");
        h.insert(headers::SAMPLE_RATE, "16000");
        let err = UtteranceAudio::from_parts(&h, Bytes::from_static(&[1, 2, 3])).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidPayload(_)));
    }

    #[test]
    fn oversized_utterances_are_refused() {
        let u = sample();
        let too_long = Bytes::from(vec![0xff; 8 * (MAX_UTTERANCE_MS as usize + 20)]);
        let err = UtteranceAudio::from_parts(&u.to_headers(), too_long).unwrap_err();
        assert!(err.to_string().contains("utterance limit"), "{err}");
    }

    #[test]
    fn durations_follow_the_format() {
        assert_eq!(AudioFormat::Ulaw.duration_ms(160), 20);
        assert_eq!(AudioFormat::Slin16.duration_ms(640), 20);
        assert_eq!(AudioFormat::Pcm16le.duration_ms(32_000), 1_000);
    }
}
