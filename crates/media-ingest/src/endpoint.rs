//! Endpointing: turns per-window speech probabilities into utterances.
//!
//! [`Endpointer`] is pure logic with no clock and no IO: feed it each VAD window (its speech
//! probability and its samples) in stream order with [`Endpointer::push`], and call
//! [`Endpointer::finish`] when the stream ends. All times are derived from sample counts, in
//! milliseconds from stream start.
//!
//! Rules, with the [`EndpointConfig`] field that sets each:
//! - Speech starts on the first window with probability `>= start_threshold`; once in speech, a
//!   window counts as silence only below `stop_threshold` (hysteresis, so a wavering probability
//!   does not chop an utterance).
//! - The utterance keeps up to `pre_roll_ms` of audio from before the onset, so soft beginnings
//!   the model scores late are not lost.
//! - It ends after `end_silence_ms` of silence; the final keeps `post_roll_ms` of that silence.
//! - Speech shorter than `min_speech_ms` (onset to last speech window) is a blip: discarded
//!   without any event. [`EndpointEvent::SpeechStarted`] is only sent once an utterance has
//!   passed that length, so consumers never see a start without a final.
//! - An utterance reaching `max_utterance_ms` is cut at the quietest 10 ms frame (lowest energy)
//!   in its last `cut_search_ms`; the audio after the cut begins the next utterance.
//! - While in speech, a [`EndpointEvent::Partial`] with all audio so far is sent every
//!   `partial_interval_ms` of utterance audio.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Endpointing settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointConfig {
    /// Probability at or above which silence turns into speech.
    pub start_threshold: f32,
    /// Probability below which a window inside speech counts as silence.
    pub stop_threshold: f32,
    /// Audio kept from before speech onset, in milliseconds.
    pub pre_roll_ms: u32,
    /// Trailing silence kept at the end of an utterance, in milliseconds.
    pub post_roll_ms: u32,
    /// Silence that ends an utterance, in milliseconds.
    pub end_silence_ms: u32,
    /// Shortest speech (onset to last speech window) that makes an utterance, in milliseconds.
    pub min_speech_ms: u32,
    /// Longest utterance, in milliseconds; longer speech is cut at a quiet point.
    pub max_utterance_ms: u32,
    /// How far back from the maximum length to look for the quietest cut point, in milliseconds.
    pub cut_search_ms: u32,
    /// Interval between partial results, in milliseconds of utterance audio; 0 disables them.
    pub partial_interval_ms: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            start_threshold: 0.5,
            stop_threshold: 0.35,
            pre_roll_ms: 300,
            post_roll_ms: 100,
            end_silence_ms: 500,
            min_speech_ms: 250,
            max_utterance_ms: 15_000,
            cut_search_ms: 3_000,
            partial_interval_ms: 1_000,
        }
    }
}

/// Invalid [`EndpointConfig`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EndpointConfigError {
    /// Thresholds must satisfy 0 <= stop <= start <= 1.
    #[error("thresholds must satisfy 0 <= stop_threshold ({stop}) <= start_threshold ({start}) <= 1")]
    Thresholds {
        /// `start_threshold`.
        start: f32,
        /// `stop_threshold`.
        stop: f32,
    },
    /// The search window for a cut must fit inside the maximum length.
    #[error("cut_search_ms ({cut_search_ms}) must be between 1 and max_utterance_ms ({max_utterance_ms})")]
    CutSearch {
        /// `cut_search_ms`.
        cut_search_ms: u32,
        /// `max_utterance_ms`.
        max_utterance_ms: u32,
    },
    /// The sample rate was zero.
    #[error("sample rate must be non-zero")]
    ZeroSampleRate,
}

/// Why an utterance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalReason {
    /// `end_silence_ms` of silence followed the speech.
    EndOfSpeech,
    /// The utterance reached `max_utterance_ms` and was cut at a quiet point.
    MaxLength,
    /// The stream ended ([`Endpointer::finish`]).
    StreamEnded,
}

/// A finished utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Time of the first sample, in ms from stream start (pre-roll included).
    pub start_ms: u64,
    /// Time just after the last sample, in ms from stream start.
    pub end_ms: u64,
    /// Audio at the endpointer's sample rate.
    pub samples: Vec<f32>,
    /// Why it ended.
    pub reason: FinalReason,
}

/// What the endpointer reports.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointEvent {
    /// An utterance passed `min_speech_ms`; its final will follow.
    SpeechStarted {
        /// Time of the utterance's first sample (pre-roll included), in ms from stream start.
        start_ms: u64,
    },
    /// The audio of the current utterance so far.
    Partial {
        /// Time of the utterance's first sample, in ms from stream start.
        start_ms: u64,
        /// Time just after the last sample so far, in ms from stream start.
        end_ms: u64,
        /// All audio of the utterance so far.
        samples: Vec<f32>,
    },
    /// A complete utterance.
    Final(Utterance),
}

/// Speech in progress.
#[derive(Debug)]
struct Speech {
    /// Stream sample index of `samples[0]`.
    start: u64,
    samples: Vec<f32>,
    /// Stream sample index just after the last window scored as speech.
    last_speech_end: u64,
    /// First sample of the first speech window.
    onset: u64,
    /// `SpeechStarted` has been sent (speech passed `min_speech_ms`).
    confirmed: bool,
    /// Utterance length (in samples) at which the next partial is due.
    next_partial: usize,
}

/// Endpointer for one stream. See the [module docs](self) for the rules.
#[derive(Debug)]
pub struct Endpointer {
    config: EndpointConfig,
    sample_rate_hz: u32,
    pre_roll: VecDeque<f32>,
    pre_roll_samples: usize,
    post_roll_samples: u64,
    end_silence_samples: u64,
    min_speech_samples: u64,
    max_utterance_samples: usize,
    cut_search_samples: usize,
    partial_interval_samples: usize,
    /// Stream sample index of the next sample pushed.
    position: u64,
    speech: Option<Speech>,
}

impl Endpointer {
    /// An endpointer for audio at `sample_rate_hz` (16 kHz for Silero).
    pub fn new(config: EndpointConfig, sample_rate_hz: u32) -> Result<Self, EndpointConfigError> {
        let EndpointConfig { start_threshold: start, stop_threshold: stop, .. } = config;
        if !(0.0..=1.0).contains(&start) || !(0.0..=start).contains(&stop) {
            return Err(EndpointConfigError::Thresholds { start, stop });
        }
        if config.cut_search_ms == 0 || config.cut_search_ms > config.max_utterance_ms {
            return Err(EndpointConfigError::CutSearch {
                cut_search_ms: config.cut_search_ms,
                max_utterance_ms: config.max_utterance_ms,
            });
        }
        if sample_rate_hz == 0 {
            return Err(EndpointConfigError::ZeroSampleRate);
        }
        let samples = |ms: u32| u64::from(ms) * u64::from(sample_rate_hz) / 1000;
        Ok(Self {
            pre_roll: VecDeque::with_capacity(samples(config.pre_roll_ms) as usize),
            pre_roll_samples: samples(config.pre_roll_ms) as usize,
            post_roll_samples: samples(config.post_roll_ms),
            end_silence_samples: samples(config.end_silence_ms),
            min_speech_samples: samples(config.min_speech_ms),
            max_utterance_samples: samples(config.max_utterance_ms) as usize,
            cut_search_samples: samples(config.cut_search_ms) as usize,
            partial_interval_samples: samples(config.partial_interval_ms) as usize,
            config,
            sample_rate_hz,
            position: 0,
            speech: None,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Whether an utterance (confirmed or not) is in progress.
    pub fn in_speech(&self) -> bool {
        self.speech.is_some()
    }

    /// Takes the next window of the stream: its speech `probability` and its `samples`. Returns
    /// the events it causes, in order.
    pub fn push(&mut self, probability: f32, samples: &[f32]) -> Vec<EndpointEvent> {
        let mut events = Vec::new();
        let window_start = self.position;
        let window_end = window_start + samples.len() as u64;
        self.position = window_end;

        let Some(speech) = self.speech.as_mut() else {
            if probability >= self.config.start_threshold {
                // Onset: the utterance begins with the pre-roll.
                let mut buffer: Vec<f32> = self.pre_roll.drain(..).collect();
                let start = window_start - buffer.len() as u64;
                buffer.extend_from_slice(samples);
                self.speech = Some(Speech {
                    start,
                    samples: buffer,
                    last_speech_end: window_end,
                    onset: window_start,
                    confirmed: false,
                    next_partial: 0,
                });
                self.after_speech_window(&mut events);
            } else {
                self.remember_pre_roll(samples);
            }
            return events;
        };

        speech.samples.extend_from_slice(samples);
        if probability >= self.config.stop_threshold {
            speech.last_speech_end = window_end;
            self.after_speech_window(&mut events);
        } else if window_end - speech.last_speech_end >= self.end_silence_samples {
            if let Some(utterance) = self.end_utterance(FinalReason::EndOfSpeech) {
                events.push(EndpointEvent::Final(utterance));
            }
        } else {
            self.after_speech_window(&mut events);
        }
        events
    }

    /// Ends the stream: a confirmed utterance in progress becomes a final, anything shorter is
    /// discarded. The endpointer is then ready for a new stream (times restart at zero).
    pub fn finish(&mut self) -> Option<Utterance> {
        let utterance = self.end_utterance(FinalReason::StreamEnded);
        self.speech = None;
        self.pre_roll.clear();
        self.position = 0;
        utterance
    }

    /// Confirmation, partials and the length limit, checked after each window in speech.
    fn after_speech_window(&mut self, events: &mut Vec<EndpointEvent>) {
        let rate = self.sample_rate_hz;
        let ms = |sample: u64| to_ms(sample, rate);
        let Some(speech) = self.speech.as_mut() else {
            return;
        };
        if !speech.confirmed && speech.last_speech_end - speech.onset >= self.min_speech_samples {
            speech.confirmed = true;
            speech.next_partial = self.partial_interval_samples;
            events.push(EndpointEvent::SpeechStarted { start_ms: ms(speech.start) });
        }
        if speech.samples.len() >= self.max_utterance_samples {
            // Still in speech, so the utterance is longer than min_speech and confirmed unless
            // min_speech_ms exceeds max_utterance_ms, in which case it is confirmed here.
            let cut = quietest_cut(&speech.samples, self.cut_search_samples, self.sample_rate_hz);
            let rest = speech.samples.split_off(cut);
            let cut_at = speech.start + cut as u64;
            let utterance = Utterance {
                start_ms: ms(speech.start),
                end_ms: ms(cut_at),
                samples: std::mem::take(&mut speech.samples),
                reason: FinalReason::MaxLength,
            };
            if !speech.confirmed {
                events.push(EndpointEvent::SpeechStarted { start_ms: utterance.start_ms });
            }
            events.push(EndpointEvent::Final(utterance));
            // The audio after the cut continues as a new, already confirmed utterance.
            speech.start = cut_at;
            speech.samples = rest;
            speech.onset = speech.onset.max(cut_at);
            speech.last_speech_end = speech.last_speech_end.max(cut_at);
            speech.confirmed = true;
            speech.next_partial = self.partial_interval_samples;
            events.push(EndpointEvent::SpeechStarted { start_ms: ms(cut_at) });
            return;
        }
        if speech.confirmed && self.partial_interval_samples > 0 && speech.samples.len() >= speech.next_partial {
            while speech.next_partial <= speech.samples.len() {
                speech.next_partial += self.partial_interval_samples;
            }
            events.push(EndpointEvent::Partial {
                start_ms: ms(speech.start),
                end_ms: ms(speech.start + speech.samples.len() as u64),
                samples: speech.samples.clone(),
            });
        }
    }

    /// Closes the utterance in progress; returns it if it was confirmed. The audio after it (the
    /// silence beyond the post-roll) seeds the next pre-roll.
    fn end_utterance(&mut self, reason: FinalReason) -> Option<Utterance> {
        let mut speech = self.speech.take()?;
        let buffered_end = speech.start + speech.samples.len() as u64;
        let end = (speech.last_speech_end + self.post_roll_samples).min(buffered_end);
        let tail = speech.samples.split_off((end - speech.start) as usize);
        self.remember_pre_roll(&tail);
        if !speech.confirmed {
            return None;
        }
        Some(Utterance { start_ms: self.ms(speech.start), end_ms: self.ms(end), samples: speech.samples, reason })
    }

    fn remember_pre_roll(&mut self, samples: &[f32]) {
        let keep = samples.len().min(self.pre_roll_samples);
        let overflow = (self.pre_roll.len() + keep).saturating_sub(self.pre_roll_samples);
        self.pre_roll.drain(..overflow);
        self.pre_roll.extend(&samples[samples.len() - keep..]);
    }

    fn ms(&self, sample: u64) -> u64 {
        to_ms(sample, self.sample_rate_hz)
    }
}

fn to_ms(sample: u64, sample_rate_hz: u32) -> u64 {
    sample * 1000 / u64::from(sample_rate_hz)
}

/// Where to cut an over-long utterance: the middle of the lowest-energy 10 ms frame within the
/// last `search` samples. Returns an index into `samples` in `1..samples.len()`.
fn quietest_cut(samples: &[f32], search: usize, sample_rate_hz: u32) -> usize {
    let frame = (sample_rate_hz as usize / 100).max(1);
    let search_start = samples.len().saturating_sub(search).max(1);
    let mut best = (f32::INFINITY, samples.len() - 1);
    let mut frame_start = search_start;
    while frame_start + frame <= samples.len() {
        let energy: f32 = samples[frame_start..frame_start + frame].iter().map(|s| s * s).sum();
        // `<=` prefers the latest of equally quiet frames, keeping the final as long as possible.
        if energy <= best.0 {
            best = (energy, frame_start + frame / 2);
        }
        frame_start += frame;
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 16_000;
    const WINDOW: usize = 512; // 32 ms

    fn endpointer(config: EndpointConfig) -> Endpointer {
        Endpointer::new(config, RATE).expect("valid config")
    }

    /// Plays windows of the given probabilities; window `i` holds samples equal to `i + 1`
    /// (times `amplitude(i)`), so a final's samples show exactly which windows it kept.
    fn play(endpointer: &mut Endpointer, probabilities: &[f32]) -> Vec<(usize, EndpointEvent)> {
        play_with(endpointer, probabilities, |_| 1.0)
    }

    fn play_with(
        endpointer: &mut Endpointer,
        probabilities: &[f32],
        amplitude: impl Fn(usize) -> f32,
    ) -> Vec<(usize, EndpointEvent)> {
        let mut events = Vec::new();
        for (index, &probability) in probabilities.iter().enumerate() {
            let samples = vec![(index + 1) as f32 * amplitude(index); WINDOW];
            events.extend(endpointer.push(probability, &samples).into_iter().map(|event| (index, event)));
        }
        events
    }

    fn finals(events: &[(usize, EndpointEvent)]) -> Vec<&Utterance> {
        events
            .iter()
            .filter_map(|(_, event)| match event {
                EndpointEvent::Final(utterance) => Some(utterance),
                _ => None,
            })
            .collect()
    }

    fn repeat(probability: f32, count: usize) -> Vec<f32> {
        vec![probability; count]
    }

    fn sequence(parts: &[(f32, usize)]) -> Vec<f32> {
        parts.iter().flat_map(|&(probability, count)| repeat(probability, count)).collect()
    }

    /// Window ms: window i spans [32 i, 32 (i + 1)).
    fn window_ms(index: usize) -> u64 {
        index as u64 * 32
    }

    #[test]
    fn utterance_with_pre_roll_and_end_silence() {
        let config = EndpointConfig { partial_interval_ms: 0, ..EndpointConfig::default() };
        let mut endpointer = endpointer(config);
        // 20 silent windows (640 ms), 30 speech windows (960 ms), then silence.
        let probabilities = sequence(&[(0.05, 20), (0.9, 30), (0.05, 30)]);
        let events = play(&mut endpointer, &probabilities);

        // SpeechStarted once 250 ms of speech is in: the 8th speech window (8 * 32 = 256 ms).
        let (started_at, started) = &events[0];
        assert_eq!(*started_at, 27);
        // Pre-roll: 300 ms = 4800 samples before the onset at 640 ms -> starts at 340 ms.
        assert_eq!(*started, EndpointEvent::SpeechStarted { start_ms: 340 });

        let finals = finals(&events);
        assert_eq!(finals.len(), 1);
        let utterance = finals[0];
        assert_eq!(utterance.reason, FinalReason::EndOfSpeech);
        assert_eq!(utterance.start_ms, 340);
        // Speech ends at window 50 (1600 ms); post-roll 100 ms.
        assert_eq!(utterance.end_ms, 1700);
        assert_eq!(utterance.samples.len(), (1700 - 340) * 16);
        // The pre-roll is the end of the silence before the onset: window 11's tail onwards.
        assert_eq!(utterance.samples[0], 11.0);
        assert_eq!(utterance.samples[4800], 21.0); // first speech window (index 20)
        assert_eq!(*utterance.samples.last().expect("non-empty"), 54.0); // 100 ms into window 53
        // The final comes when 500 ms of silence have passed: 16 windows (512 ms) after speech.
        let final_at = events.iter().find(|(_, e)| matches!(e, EndpointEvent::Final(_))).map(|(i, _)| *i);
        assert_eq!(final_at, Some(50 + 15));
        assert!(endpointer.finish().is_none());
    }

    #[test]
    fn hysteresis_keeps_wavering_speech_together_and_needs_start_threshold() {
        let config = EndpointConfig { partial_interval_ms: 0, ..EndpointConfig::default() };
        // Between stop (0.35) and start (0.5): never starts speech.
        let mut idle = endpointer(config.clone());
        assert!(play(&mut idle, &repeat(0.45, 100)).is_empty());
        assert!(idle.finish().is_none());

        // Once started, 0.4 keeps it going; 0.3 is silence.
        let mut endpointer = endpointer(config);
        let probabilities = sequence(&[(0.0, 10), (0.6, 5), (0.4, 40), (0.3, 20)]);
        let events = play(&mut endpointer, &probabilities);
        let finals = finals(&events);
        assert_eq!(finals.len(), 1);
        assert_eq!(finals[0].end_ms, window_ms(55) + 100);
    }

    #[test]
    fn pauses_shorter_than_end_silence_do_not_split() {
        let config = EndpointConfig { partial_interval_ms: 0, ..EndpointConfig::default() };
        let mut endpointer = endpointer(config);
        // A 480 ms pause (15 windows) inside speech, then a 512 ms one that ends it.
        let probabilities = sequence(&[(0.9, 20), (0.1, 15), (0.9, 20), (0.1, 16), (0.9, 20), (0.1, 16)]);
        let events = play(&mut endpointer, &probabilities);
        let finals = finals(&events);
        assert_eq!(finals.len(), 2);
        assert_eq!((finals[0].start_ms, finals[0].end_ms), (0, window_ms(55) + 100));
        // The second starts with 300 ms pre-roll before its onset at window 71.
        assert_eq!((finals[1].start_ms, finals[1].end_ms), (window_ms(71) - 300, window_ms(91) + 100));
    }

    #[test]
    fn blips_shorter_than_min_speech_are_discarded() {
        let config = EndpointConfig { partial_interval_ms: 0, ..EndpointConfig::default() };
        let mut endpointer = endpointer(config);
        // 7 windows = 224 ms < 250 ms: nothing at all is reported.
        let events = play(&mut endpointer, &sequence(&[(0.0, 10), (0.9, 7), (0.0, 40)]));
        assert!(events.is_empty(), "{events:?}");
        // 8 windows = 256 ms: an utterance.
        let events = play(&mut endpointer, &sequence(&[(0.9, 8), (0.0, 40)]));
        assert_eq!(finals(&events).len(), 1);
    }

    #[test]
    fn stream_end_flushes_confirmed_speech_only() {
        let config = EndpointConfig { partial_interval_ms: 0, ..EndpointConfig::default() };
        let mut endpointer = endpointer(config.clone());
        play(&mut endpointer, &sequence(&[(0.0, 5), (0.9, 20)]));
        let utterance = endpointer.finish().expect("speech in progress");
        assert_eq!(utterance.reason, FinalReason::StreamEnded);
        assert_eq!((utterance.start_ms, utterance.end_ms), (window_ms(5) - 160, window_ms(25)));

        let mut short = Endpointer::new(config, RATE).expect("valid config");
        play(&mut short, &sequence(&[(0.0, 5), (0.9, 3)]));
        assert!(short.finish().is_none());
    }

    #[test]
    fn partials_carry_audio_so_far_at_the_interval() {
        let config = EndpointConfig { pre_roll_ms: 0, partial_interval_ms: 320, ..EndpointConfig::default() };
        let mut endpointer = endpointer(config);
        let events = play(&mut endpointer, &sequence(&[(0.9, 40), (0.0, 20)]));
        let partials: Vec<(usize, u64, u64, usize)> = events
            .iter()
            .filter_map(|(index, event)| match event {
                EndpointEvent::Partial { start_ms, end_ms, samples } => {
                    Some((*index, *start_ms, *end_ms, samples.len()))
                }
                _ => None,
            })
            .collect();
        // Confirmed at window 7 (256 ms); partials when the audio reaches 320, 640, ... ms, i.e.
        // at windows 9, 19, 29, 39 (each window 32 ms), and 49 in the silence that has not yet
        // lasted end_silence_ms (which it does at window 55).
        assert_eq!(
            partials,
            vec![
                (9, 0, 320, 5120),
                (19, 0, 640, 10240),
                (29, 0, 960, 15360),
                (39, 0, 1280, 20480),
                (49, 0, 1600, 25600)
            ]
        );
        // Ordering: started, partials..., final.
        assert!(matches!(events.first(), Some((7, EndpointEvent::SpeechStarted { start_ms: 0 }))));
        assert!(matches!(events.last(), Some((_, EndpointEvent::Final(_)))));
    }

    #[test]
    fn max_length_cuts_at_the_quietest_point_in_the_last_part() {
        let config = EndpointConfig {
            pre_roll_ms: 0,
            partial_interval_ms: 0,
            max_utterance_ms: 3200,
            cut_search_ms: 960,
            ..EndpointConfig::default()
        };
        let mut endpointer = endpointer(config);
        // Continuous speech for 150 windows (4.8 s). Window 80 (in the last 960 ms before the
        // 3.2 s limit, i.e. windows 70..100) is quiet; window 20 is quieter but too early to matter.
        let amplitude = |index: usize| match index {
            20 => 0.0,
            80 => 0.01,
            _ => 1.0,
        };
        let events = play_with(&mut endpointer, &repeat(0.9, 150), amplitude);
        let last = endpointer.finish().expect("speech in progress");
        let finals = finals(&events);
        assert_eq!(finals.len(), 1);
        let first = finals[0];
        assert_eq!(first.reason, FinalReason::MaxLength);
        // Cut in the middle of a 10 ms frame inside window 80 (2560..2592 ms).
        assert_eq!(first.start_ms, 0);
        assert!((2560..2592).contains(&first.end_ms), "cut at {} ms", first.end_ms);
        assert!(first.samples.len() <= 3200 * 16);
        // Nothing lost or duplicated: the next utterance starts exactly at the cut.
        assert_eq!(last.start_ms, first.end_ms);
        assert_eq!(first.samples.len() + last.samples.len(), 150 * WINDOW);
        assert_eq!(last.reason, FinalReason::StreamEnded);
        // The continuation is announced.
        let starts: Vec<u64> = events
            .iter()
            .filter_map(|(_, e)| match e {
                EndpointEvent::SpeechStarted { start_ms } => Some(*start_ms),
                _ => None,
            })
            .collect();
        assert_eq!(starts, vec![0, first.end_ms]);
    }

    #[test]
    fn max_length_without_quiet_point_still_cuts_within_limit() {
        let config = EndpointConfig {
            pre_roll_ms: 0,
            partial_interval_ms: 0,
            max_utterance_ms: 1000,
            cut_search_ms: 200,
            ..EndpointConfig::default()
        };
        let mut endpointer = endpointer(config);
        let events = play(&mut endpointer, &repeat(0.9, 200));
        let finals = finals(&events);
        assert!(finals.len() >= 5);
        for utterance in &finals {
            assert!(utterance.samples.len() <= 1000 * 16);
            assert!(utterance.samples.len() >= 800 * 16);
            assert_eq!(utterance.samples.len() as u64, (utterance.end_ms - utterance.start_ms) * 16);
        }
        for pair in finals.windows(2) {
            assert_eq!(pair[0].end_ms, pair[1].start_ms);
        }
    }

    #[test]
    fn pre_roll_after_an_utterance_uses_only_later_silence() {
        let config = EndpointConfig { partial_interval_ms: 0, ..EndpointConfig::default() };
        let mut endpointer = endpointer(config);
        let events = play(&mut endpointer, &sequence(&[(0.9, 10), (0.0, 16), (0.9, 10), (0.0, 16)]));
        let finals = finals(&events);
        assert_eq!(finals.len(), 2);
        // The second onset is at window 26 (832 ms); pre-roll reaches back 300 ms, after the
        // first final ended at 420 ms.
        assert_eq!(finals[1].start_ms, window_ms(26) - 300);
        assert!(finals[1].start_ms >= finals[0].end_ms);
    }

    #[test]
    fn rejects_inconsistent_config() {
        let bad = EndpointConfig { start_threshold: 0.3, stop_threshold: 0.4, ..EndpointConfig::default() };
        assert!(matches!(Endpointer::new(bad, RATE), Err(EndpointConfigError::Thresholds { .. })));
        let bad = EndpointConfig { cut_search_ms: 20_000, ..EndpointConfig::default() };
        assert!(matches!(Endpointer::new(bad, RATE), Err(EndpointConfigError::CutSearch { .. })));
        assert!(matches!(Endpointer::new(EndpointConfig::default(), 0), Err(EndpointConfigError::ZeroSampleRate)));
    }

    #[test]
    fn config_rejects_unknown_fields() {
        let parsed: Result<EndpointConfig, _> = serde_json::from_str(r#"{"end_silence_ms": 700, "bogus": 1}"#);
        assert!(parsed.is_err());
        let parsed: EndpointConfig = serde_json::from_str(r#"{"end_silence_ms": 700}"#).expect("valid");
        assert_eq!(parsed, EndpointConfig { end_silence_ms: 700, ..EndpointConfig::default() });
    }
}
