//! Golden files: one JSON file per wire type under `tests/data/v1/`, the normative examples that
//! the crate's README points other teams to.
//!
//! For every file this test builds the same value in code and checks that
//! (a) the file exists (with `UPDATE_EXPECT=1` a missing file is written from the sample),
//! (b) decoding the file gives the sample, and
//! (c) encoding what was decoded gives the file again (compared as JSON values, so key order and
//!     whitespace do not matter).
//!
//! **Add new files, never edit old ones.** A committed file is a message some producer may have
//! sent; it must keep decoding to the same value for as long as `v1` exists. So:
//! - this test never overwrites a file, not even with `UPDATE_EXPECT=1`;
//! - when a type gains an optional field, leave the old case and its file as they are (they prove
//!   that old messages still decode) and add a new case with a new file name, e.g.
//!   `events/CallEnded.with-recording.json`;
//! - a change that old files cannot survive is a breaking change: it belongs in a new subject
//!   version with its own `data/v2/`, not in an edited file.
//!
//! Create missing files with `UPDATE_EXPECT=1 cargo test -p dragoman-bus --test golden`, then read
//! them: they are documentation.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use dragoman_bus::audio::{AudioFormat, MAX_UTTERANCE_MS, UtteranceAudio, UtteranceMeta};
use dragoman_bus::control::{
    AllocateEndpoint, ControlError, Done, EndpointAllocated, ErrorCode, Hangup, LegLanguage, MediaTransport, Originate,
    Originated, ReleaseEndpoint, Reply, SetLanguage,
};
use dragoman_bus::events::{
    CallDirection, CallEnded, CallStarted, DtmfReceived, EventMeta, LanguageChanged, LanguageDetected, LanguageSource,
    LegJoined, Party, Stage, TalkingChanged, TranscriptProduced, TranslationProduced, Word,
};
use dragoman_bus::{DecodeError, Event, Headers, Subjects, wire};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The samples: one inbound call, told in order. A Spanish-speaking caller rings an English-speaking
// support desk, picks Spanish in the DTMF menu, and says one sentence that is transcribed and
// translated into English.
// ---------------------------------------------------------------------------------------------

/// 2024-06-13T15:04:05Z, when the call entered Dragoman (Unix ms).
const CALL_START_UNIX_MS: i64 = 1_718_291_045_000;

/// The call id: Asterisk's linkedid `1718291045.17` with its dot replaced, because a call id is a
/// subject token and subject tokens cannot contain dots.
const CALL_ID: &str = "1718291045-17";

/// The caller's Asterisk channel (its ARI channel id).
const CALLER_CHANNEL: &str = "1718291045.17";

/// The one utterance of the story, from 8 420 ms to 10 770 ms after call start.
const UTTERANCE_ID: Uuid = Uuid::from_u128(0x01901220_bb6c_7d38_8f21_ddb66cad4a26);
const UTTERANCE_START_MS: u64 = 8_420;
const UTTERANCE_END_MS: u64 = 10_770;

/// When something happened, `ms` after call start.
fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(CALL_START_UNIX_MS + ms).expect("sample time in range")
}

/// Event metadata with a fixed UUIDv7 whose time prefix matches `ms`.
fn meta(event_id: u128, ms: i64) -> EventMeta {
    EventMeta { event_id: Uuid::from_u128(event_id), call_id: CALL_ID.to_owned(), occurred_at: at(ms) }
}

fn caller() -> Party {
    Party { name: "Lucía Fernández".into(), number: "+34911234567".into() }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn call_started() -> CallStarted {
    CallStarted {
        meta: meta(0x01901220_9a88_726b_b2a7_4de452e6b438, 0),
        direction: CallDirection::Inbound,
        caller: caller(),
        callee: Party { name: "Support desk".into(), number: "6001".into() },
        application: "dragoman".into(),
    }
}

fn leg_joined() -> LegJoined {
    LegJoined {
        meta: meta(0x01901220_9c2c_70c6_a6a3_a4506513270e, 420),
        leg: "caller".into(),
        channel_id: CALLER_CHANNEL.into(),
        party: caller(),
        // The dialplan set no language for this line: STT detects it until someone sets one.
        language: None,
        targets: strings(&["en"]),
    }
}

fn dtmf_received() -> DtmfReceived {
    DtmfReceived {
        meta: meta(0x01901220_a6a9_7893_923f_0824128b2f33, 3_105),
        leg: "caller".into(),
        digit: "2".into(),
        duration_ms: 160,
    }
}

fn language_changed() -> LanguageChanged {
    LanguageChanged {
        meta: meta(0x01901220_a762_7951_9d9d_c9f81818e811, 3_290),
        leg: "caller".into(),
        language: "es".into(),
        targets: strings(&["en"]),
        source: LanguageSource::Dtmf,
    }
}

fn language_detected() -> LanguageDetected {
    LanguageDetected {
        meta: meta(0x01901220_c06c_781f_a8e2_5d940ed90475, 9_700),
        leg: "caller".into(),
        language: "es".into(),
        probability: 0.97,
    }
}

fn talking_changed() -> TalkingChanged {
    TalkingChanged {
        meta: meta(0x01901220_c4ae_7160_8999_50d836f675cc, 10_790),
        leg: "caller".into(),
        talking: false,
        duration_ms: Some(2_350),
    }
}

fn call_ended() -> CallEnded {
    CallEnded {
        meta: meta(0x01901223_76c2_7a0a_a170_b33839263059, 187_450),
        reason: "hangup".into(),
        // Q.850 16: normal call clearing.
        cause: Some(16),
        duration_ms: 187_450,
    }
}

fn transcript_partial() -> TranscriptProduced {
    TranscriptProduced {
        meta: meta(0x01901220_c030_711d_ab0d_549b6f03675a, 9_640),
        leg: "caller".into(),
        utterance_id: UTTERANCE_ID,
        sequence: 0,
        stage: Stage::Partial,
        text: "Hola, llamo por mi".into(),
        language: "es".into(),
        confidence: 0.81,
        start_ms: UTTERANCE_START_MS,
        end_ms: 9_620,
        // Partials carry no word timings.
        words: Vec::new(),
        targets: strings(&["en"]),
        engine: "whisper".into(),
        model: "large-v3-turbo".into(),
    }
}

fn word(text: &str, start_ms: u64, end_ms: u64, probability: f32) -> Word {
    Word { text: text.into(), start_ms, end_ms, probability: Some(probability) }
}

fn transcript_final() -> TranscriptProduced {
    TranscriptProduced {
        meta: meta(0x01901220_c53a_78d0_9738_f7d93d9c1724, 10_930),
        leg: "caller".into(),
        utterance_id: UTTERANCE_ID,
        sequence: 0,
        stage: Stage::Final,
        text: "Hola, llamo por mi factura de mayo.".into(),
        language: "es".into(),
        confidence: 0.93,
        start_ms: UTTERANCE_START_MS,
        end_ms: UTTERANCE_END_MS,
        words: vec![
            word("Hola,", 8_420, 8_810, 0.98),
            word("llamo", 8_900, 9_230, 0.95),
            word("por", 9_230, 9_400, 0.97),
            word("mi", 9_400, 9_520, 0.96),
            word("factura", 9_560, 10_050, 0.91),
            word("de", 10_050, 10_160, 0.94),
            word("mayo.", 10_160, 10_770, 0.89),
        ],
        targets: strings(&["en"]),
        engine: "whisper".into(),
        model: "large-v3-turbo".into(),
    }
}

fn translation_final() -> TranslationProduced {
    TranslationProduced {
        meta: meta(0x01901220_c594_7f28_9fb1_7c2390c192cf, 11_020),
        leg: "caller".into(),
        utterance_id: UTTERANCE_ID,
        sequence: 0,
        stage: Stage::Final,
        source_language: "es".into(),
        source_text: "Hola, llamo por mi factura de mayo.".into(),
        target_language: "en".into(),
        text: "Hello, I'm calling about my May invoice.".into(),
        start_ms: UTTERANCE_START_MS,
        end_ms: UTTERANCE_END_MS,
        engine: "ctranslate2".into(),
        model: "nllb-200-distilled-600M".into(),
        elapsed_ms: 84,
    }
}

/// `(file under events/, sample)`: every event golden file.
fn event_cases() -> Vec<(&'static str, Event)> {
    vec![
        ("CallStarted.json", Event::CallStarted(call_started())),
        ("LegJoined.json", Event::LegJoined(leg_joined())),
        ("DtmfReceived.json", Event::DtmfReceived(dtmf_received())),
        ("LanguageChanged.json", Event::LanguageChanged(language_changed())),
        ("TranscriptProduced.partial.json", Event::TranscriptProduced(transcript_partial())),
        ("LanguageDetected.json", Event::LanguageDetected(language_detected())),
        ("TalkingChanged.json", Event::TalkingChanged(talking_changed())),
        ("TranscriptProduced.final.json", Event::TranscriptProduced(transcript_final())),
        ("TranslationProduced.final.json", Event::TranslationProduced(translation_final())),
        ("CallEnded.json", Event::CallEnded(call_ended())),
    ]
}

fn caller_language() -> LegLanguage {
    LegLanguage { language: Some("es".into()), targets: strings(&["en"]) }
}

fn allocate_endpoint() -> AllocateEndpoint {
    AllocateEndpoint {
        call_id: CALL_ID.into(),
        leg: "caller".into(),
        format: AudioFormat::Ulaw,
        transport: MediaTransport::Rtp,
        language: caller_language(),
        call_started_at_ms: None,
    }
}

fn endpoint_allocated() -> EndpointAllocated {
    EndpointAllocated { host: "10.20.0.15".into(), port: 20_014, transport: MediaTransport::Rtp, connection_id: None }
}

fn originate() -> Originate {
    Originate {
        endpoint: "PJSIP/+493012345678@carrier".into(),
        caller_id: Some("\"Support desk\" <6001>".into()),
        callee: LegLanguage { language: Some("de".into()), targets: strings(&["en"]) },
        caller: LegLanguage { language: Some("en".into()), targets: strings(&["de"]) },
        timeout_s: Some(30),
    }
}

fn originated() -> Originated {
    Originated { call_id: "1718291322-25".into(), channel_id: "1718291322.25".into() }
}

/// Checks the golden file at the path it is given (relative to `tests/data/v1/`).
type Check = Box<dyn Fn(&str) -> Result<(), String>>;

/// A type-erased golden check, so cases of different types sit in one list.
struct Case {
    /// Path under `tests/data/v1/`.
    file: String,
    check: Check,
}

/// A control message (request or reply) decoded with [`wire::decode`].
fn control<T>(file: &'static str, sample: T) -> Case
where
    T: Serialize + DeserializeOwned + PartialEq + Debug + 'static,
{
    Case {
        file: file.to_owned(),
        check: Box::new(move |file| check_json(file, &sample, |bytes| wire::decode::<T>(bytes))),
    }
}

/// Every control golden file: requests are the bare body, replies the whole `Reply` envelope,
/// exactly as each travels on its subject.
fn control_cases() -> Vec<Case> {
    vec![
        control("control/AllocateEndpoint.json", allocate_endpoint()),
        control("control/Reply.ok.EndpointAllocated.json", Reply::Ok(endpoint_allocated())),
        control(
            "control/Reply.error.json",
            Reply::<EndpointAllocated>::Error(ControlError::new(
                ErrorCode::Exhausted,
                "no free rtp port in 20000-20999",
            )),
        ),
        control("control/ReleaseEndpoint.json", ReleaseEndpoint { call_id: CALL_ID.into(), leg: "caller".into() }),
        control("control/Originate.json", originate()),
        control("control/Reply.ok.Originated.json", Reply::Ok(originated())),
        control("control/Hangup.json", Hangup { call_id: CALL_ID.into(), reason: Some("operator".into()) }),
        control(
            "control/SetLanguage.json",
            SetLanguage {
                call_id: CALL_ID.into(),
                leg: "caller".into(),
                language: "es".into(),
                targets: strings(&["en", "fr"]),
            },
        ),
        control("control/Reply.ok.Done.json", Reply::Ok(Done {})),
    ]
}

/// The utterance of the story as media ingest sends it to STT: ulaw as received over RTP
/// (0xFF is µ-law silence; the samples' values do not matter here).
fn utterance(stage: Stage) -> UtteranceAudio {
    let end_ms = match stage {
        Stage::Partial => 9_620,
        Stage::Final => UTTERANCE_END_MS,
    };
    let format = AudioFormat::Ulaw;
    let samples = (end_ms - UTTERANCE_START_MS) * u64::from(format.sample_rate()) / 1000;
    let bytes = usize::try_from(samples).expect("fits") * format.bytes_per_sample();
    UtteranceAudio {
        meta: UtteranceMeta {
            call_id: CALL_ID.into(),
            leg: "caller".into(),
            utterance_id: UTTERANCE_ID,
            sequence: 0,
            stage,
            format,
            start_ms: UTTERANCE_START_MS,
            end_ms,
            language: Some("es".into()),
            targets: strings(&["en"]),
            // Published 20 ms after the last audio arrived.
            sent_at_ms: (CALL_START_UNIX_MS as u64) + end_ms + 20,
            prompt: match stage {
                Stage::Partial => None,
                Stage::Final => Some("Acme Telecom, factura, Fernández".into()),
            },
        },
        audio: Bytes::from(vec![0xFF; bytes]),
    }
}

fn audio_cases() -> Vec<Case> {
    let subjects = Subjects::default();
    let (partial, last) = (subjects.stt_partial(), subjects.stt_final());
    vec![
        Case {
            file: "audio/UtteranceAudio.partial.json".to_owned(),
            check: Box::new(move |file| check_audio(file, &partial, &utterance(Stage::Partial))),
        },
        Case {
            file: "audio/UtteranceAudio.final.json".to_owned(),
            check: Box::new(move |file| check_audio(file, &last, &utterance(Stage::Final))),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------------

const NEVER_EDIT: &str = "golden files are never edited: if the change is additive, keep this case as \
     it was and add a new case with a new file; if old messages can no longer decode, that is a new \
     subject version (tests/data/v2/)";

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1")
}

fn update_requested() -> bool {
    std::env::var("UPDATE_EXPECT").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Reads a golden file. A missing one is written from `render` when `UPDATE_EXPECT=1`, and is an
/// error otherwise. An existing file is never written.
fn read_or_create(file: &str, render: impl FnOnce() -> String) -> Result<Vec<u8>, String> {
    let path = data_dir().join(file);
    match fs::read(&path) {
        Ok(bytes) => Ok(bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if !update_requested() {
                return Err(format!(
                    "{file}: golden file missing; create it with \
                     `UPDATE_EXPECT=1 cargo test -p dragoman-bus --test golden`, read it, and commit it"
                ));
            }
            let text = render();
            let parent = path.parent().expect("golden files live in a directory");
            fs::create_dir_all(parent).map_err(|e| format!("{file}: create {}: {e}", parent.display()))?;
            // create_new: even a file that appeared meanwhile is never overwritten.
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| format!("{file}: write: {e}"))?;
            eprintln!("created golden file {}", path.display());
            Ok(text.into_bytes())
        }
        Err(err) => Err(format!("{file}: read: {err}")),
    }
}

/// Pretty JSON with a trailing newline, fields in declaration order.
fn pretty<T: Serialize + ?Sized>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("wire types serialize");
    text.push('\n');
    text
}

fn json_value(file: &str, bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{file}: not JSON: {e}"))
}

/// (a) the file exists, (b) decode(file) == sample, (c) encode(decode(file)) == file as JSON.
fn check_json<T>(file: &str, sample: &T, decode: impl Fn(&[u8]) -> Result<T, DecodeError>) -> Result<(), String>
where
    T: Serialize + PartialEq + Debug,
{
    let bytes = read_or_create(file, || pretty(sample))?;
    let decoded = decode(&bytes).map_err(|e| format!("{file}: does not decode: {e}"))?;
    if decoded != *sample {
        return Err(format!("{file}: decodes to\n  {decoded:?}\nnot the sample\n  {sample:?}\n{NEVER_EDIT}"));
    }
    let on_file = json_value(file, &bytes)?;
    let reencoded = json_value(file, &wire::encode(&decoded))?;
    if reencoded != on_file {
        return Err(format!(
            "{file}: encode(decode(file)) is\n  {reencoded}\nnot the file\n  {on_file}\n\
             (an additive field must be skipped when absent, so that old files still round-trip)"
        ));
    }
    Ok(())
}

/// An utterance on the wire has no JSON body: its golden file shows the subject, the headers
/// (name → value) and a description of the payload.
fn audio_document(subject: &str, utterance: &UtteranceAudio) -> Value {
    let headers: serde_json::Map<String, Value> =
        utterance.to_headers().iter().map(|(name, value)| (name.to_owned(), Value::from(value))).collect();
    let format = utterance.meta.format;
    let bytes = utterance.audio.len();
    json!({
        "subject": subject,
        "headers": headers,
        "payload": {
            "bytes": bytes,
            "note": format!(
                "raw {format} samples as received, {} ms at {} Hz, {} byte(s) per sample; \
                 no container, no base64, no JSON",
                format.duration_ms(bytes),
                format.sample_rate(),
                format.bytes_per_sample(),
            ),
        },
    })
}

fn check_audio(file: &str, subject: &str, sample: &UtteranceAudio) -> Result<(), String> {
    let expected = audio_document(subject, sample);
    let bytes = read_or_create(file, || pretty(&expected))?;
    let on_file = json_value(file, &bytes)?;
    if on_file != expected {
        return Err(format!("{file}: is\n  {on_file}\nnot what the sample gives\n  {expected}\n{NEVER_EDIT}"));
    }
    // Decode it the way STT does: headers from the file, a payload of the stated length.
    let mut headers = Headers::new();
    for (name, value) in on_file["headers"].as_object().into_iter().flatten() {
        let value = value.as_str().ok_or_else(|| format!("{file}: header {name} is not a string"))?;
        headers.insert(name, value);
    }
    let length = on_file["payload"]["bytes"].as_u64().ok_or_else(|| format!("{file}: payload.bytes missing"))?;
    let payload = Bytes::from(vec![0xFF; usize::try_from(length).expect("fits")]);
    let decoded = UtteranceAudio::from_parts(&headers, payload).map_err(|e| format!("{file}: does not decode: {e}"))?;
    if decoded != *sample {
        return Err(format!("{file}: decodes to\n  {:?}\nnot the sample\n  {:?}", decoded.meta, sample.meta));
    }
    if audio_document(subject, &decoded) != on_file {
        return Err(format!("{file}: to_headers(from_parts(file)) differs from the file's headers"));
    }
    Ok(())
}

/// Runs every case and reports every failure at once.
fn run(cases: Vec<Case>) {
    let failures: Vec<String> = cases.iter().filter_map(|case| (case.check)(&case.file).err()).collect();
    assert!(failures.is_empty(), "{} golden file(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

#[test]
fn events_match_their_golden_files() {
    let cases = event_cases()
        .into_iter()
        .map(|(name, sample)| Case {
            file: format!("events/{name}"),
            check: Box::new(move |file| check_json(file, &sample, wire::decode_event)),
        })
        .collect();
    run(cases);
}

#[test]
fn control_messages_match_their_golden_files() {
    run(control_cases());
}

#[test]
fn utterance_audio_matches_its_golden_files() {
    run(audio_cases());
}

#[test]
fn samples_are_realistic() {
    // The story's events are on the subjects their kind says, and in time order.
    let cases = event_cases();
    let times: Vec<_> = cases.iter().map(|(_, e)| e.meta().expect("known event").occurred_at).collect();
    assert!(times.is_sorted(), "samples are told in the order they happen");
    for (_, event) in &cases {
        let meta = event.meta().expect("known event");
        // UUIDv7: the first 48 bits are the Unix ms of the event.
        let id_ms = (meta.event_id.as_u128() >> 80) as i64;
        assert_eq!(id_ms, meta.occurred_at.timestamp_millis(), "{} event_id matches its time", event.type_name());
        assert_eq!(meta.event_id.get_version_num(), 7);
    }
    for stage in [Stage::Partial, Stage::Final] {
        let u = utterance(stage);
        assert_eq!(u.meta.format.duration_ms(u.audio.len()), u.meta.end_ms - u.meta.start_ms);
        assert!(u.meta.end_ms - u.meta.start_ms <= MAX_UTTERANCE_MS);
    }
}

#[test]
fn unknown_fields_are_ignored() {
    // A newer producer adds fields at the top and inside nested objects; this build still reads
    // the event it knows.
    let sample = Event::CallStarted(call_started());
    let mut value = serde_json::to_value(&sample).expect("serializes");
    value["trunk"] = json!("carrier-a");
    value["billing"] = json!({"plan": "enterprise", "units": 3});
    value["caller"]["presentation"] = json!("allowed");
    let bytes = serde_json::to_vec(&value).expect("serializes");
    assert_eq!(wire::decode_event(&bytes).expect("tolerant reader"), sample);

    let sample = Event::TranscriptProduced(transcript_final());
    let mut value = serde_json::to_value(&sample).expect("serializes");
    value["speaker_confidence"] = json!(0.99);
    value["words"][0]["tokens"] = json!([17, 42]);
    let bytes = serde_json::to_vec(&value).expect("serializes");
    assert_eq!(wire::decode_event(&bytes).expect("tolerant reader"), sample);

    let sample = allocate_endpoint();
    let mut value = serde_json::to_value(&sample).expect("serializes");
    value["ptime_ms"] = json!(20);
    value["language"]["dialect"] = json!("es-ES");
    let bytes = serde_json::to_vec(&value).expect("serializes");
    assert_eq!(wire::decode::<AllocateEndpoint>(&bytes).expect("tolerant reader"), sample);

    let sample = Reply::Error(ControlError::new(ErrorCode::NotFound, "no call 1718291045-17"));
    let bytes = br#"{"error": {"code": "not_found", "message": "no call 1718291045-17", "retry_after_ms": 0}}"#;
    assert_eq!(wire::decode::<Reply<Done>>(bytes).expect("tolerant reader"), sample);
}

#[test]
fn an_unknown_event_type_is_reported_not_guessed() {
    let newer = json!({
        "type": "CallTransferred",
        "event_id": "01901221-0b3c-7d2e-9f10-3a5b7c9d1e2f",
        "call_id": CALL_ID,
        "occurred_at": "2024-06-13T15:04:35.100Z",
        "to": "PJSIP/6002",
    });
    let bytes = serde_json::to_vec(&newer).expect("serializes");
    let event = wire::decode::<Event>(&bytes).expect("an unknown type still decodes");
    assert_eq!(event, Event::Unknown);
    assert_eq!(event.meta(), None);
    assert!(matches!(wire::decode_event(&bytes), Err(DecodeError::UnknownEvent)));

    // A known type with a broken body is invalid, not unknown.
    let broken = br#"{"type": "CallEnded", "call_id": "1718291045-17"}"#;
    assert!(matches!(wire::decode_event(broken), Err(DecodeError::Json(_))));
    // So is a body without a type.
    let untyped = br#"{"event_id": "01901221-0b3c-7d2e-9f10-3a5b7c9d1e2f", "call_id": "c"}"#;
    assert!(matches!(wire::decode_event(untyped), Err(DecodeError::Json(_))));
}

/// Every event type this build knows, as its wire `type`.
const EVENT_TYPES: [&str; 9] = [
    "CallStarted",
    "LegJoined",
    "LanguageChanged",
    "LanguageDetected",
    "DtmfReceived",
    "TalkingChanged",
    "CallEnded",
    "TranscriptProduced",
    "TranslationProduced",
];

/// The entry of [`EVENT_TYPES`] for `event`. There is no wildcard arm on purpose: a new `Event`
/// variant stops this test compiling until it gets an arm here; the arm must name a new index,
/// which does not compile (`unconditional_panic`) until [`EVENT_TYPES`] grows; and then
/// `every_event_type_has_a_golden_file` fails until the new type has a golden file.
fn listed_type(event: &Event) -> Option<&'static str> {
    match event {
        Event::CallStarted(_) => Some(EVENT_TYPES[0]),
        Event::LegJoined(_) => Some(EVENT_TYPES[1]),
        Event::LanguageChanged(_) => Some(EVENT_TYPES[2]),
        Event::LanguageDetected(_) => Some(EVENT_TYPES[3]),
        Event::DtmfReceived(_) => Some(EVENT_TYPES[4]),
        Event::TalkingChanged(_) => Some(EVENT_TYPES[5]),
        Event::CallEnded(_) => Some(EVENT_TYPES[6]),
        Event::TranscriptProduced(_) => Some(EVENT_TYPES[7]),
        Event::TranslationProduced(_) => Some(EVENT_TYPES[8]),
        Event::Unknown => None,
    }
}

/// Files (relative to `tests/data/v1/`) under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("under root");
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&data_dir(), dir, &mut out);
    out.sort();
    out
}

#[test]
fn every_event_type_has_a_golden_file() {
    let mut covered = BTreeSet::new();
    for file in files_under(&data_dir().join("events")) {
        let bytes = fs::read(data_dir().join(&file)).expect("readable golden file");
        let event = wire::decode_event(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(listed_type(&event), Some(event.type_name()), "{file}: EVENT_TYPES and the match disagree");
        let stem = file.trim_start_matches("events/");
        let named = stem.split('.').next().unwrap_or_default();
        assert_eq!(named, event.type_name(), "{file}: a file is named after the event type it holds");
        covered.insert(event.type_name());
    }
    let missing: Vec<_> = EVENT_TYPES.iter().filter(|t| !covered.contains(*t)).collect();
    assert!(
        missing.is_empty(),
        "event types without a golden file under tests/data/v1/events/: {missing:?}; add a case to \
         event_cases() and run `UPDATE_EXPECT=1 cargo test -p dragoman-bus --test golden`"
    );
}

#[test]
fn every_golden_file_is_checked() {
    // A file no case reads is documentation nobody verifies.
    let mut known: BTreeSet<String> = event_cases().iter().map(|(name, _)| format!("events/{name}")).collect();
    known.extend(control_cases().into_iter().chain(audio_cases()).map(|c| c.file));
    let unchecked: Vec<_> = files_under(&data_dir()).into_iter().filter(|f| !known.contains(f)).collect();
    assert!(unchecked.is_empty(), "golden files with no case in tests/golden.rs: {unchecked:?}");
}

#[test]
fn timestamps_with_an_offset_are_read_as_utc() {
    // Producers write UTC (`Z`); a reader still accepts any RFC 3339 offset and normalises it.
    let bytes = br#"{"type": "CallEnded", "event_id": "01901223-76c2-7a0a-a170-b33839263059",
        "call_id": "1718291045-17", "occurred_at": "2024-06-13T17:07:12.45+02:00",
        "reason": "hangup", "cause": 16, "duration_ms": 187450}"#;
    assert_eq!(wire::decode_event(bytes).expect("valid event"), Event::CallEnded(call_ended()));
}
