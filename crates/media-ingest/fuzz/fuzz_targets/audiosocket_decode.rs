//! Any byte stream, delivered in arbitrary pieces: decoding must not panic, and must give the
//! same messages (and the same first error) as decoding the whole stream at once.
#![no_main]

#[path = "../../src/audiosocket.rs"]
#[allow(dead_code)]
mod audiosocket;
#[path = "../../src/g711.rs"]
#[allow(dead_code)]
mod g711;

use audiosocket::{AudioSocketError, Decoder, Message};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fn decode(decoder: &Decoder, buf: &mut BytesMut, into: &mut Vec<Message>) -> Option<AudioSocketError> {
    loop {
        match decoder.decode(buf) {
            Ok(Some(message)) => into.push(message),
            Ok(None) => return None,
            Err(error) => return Some(error),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let decoder = Decoder::new(usize::from(control) * 4);

    let mut whole = BytesMut::from(stream);
    let mut expected = Vec::new();
    let expected_error = decode(&decoder, &mut whole, &mut expected);

    // Feed the same bytes in pieces whose sizes come from the control byte.
    let mut pieces = BytesMut::new();
    let mut got = Vec::new();
    let mut got_error = None;
    let step = usize::from(control % 7) + 1;
    for chunk in stream.chunks(step) {
        pieces.extend_from_slice(chunk);
        got_error = decode(&decoder, &mut pieces, &mut got);
        if got_error.is_some() {
            break;
        }
    }
    assert_eq!(got, expected);
    assert_eq!(got_error, expected_error);

    // Everything decoded re-encodes (hangup payloads are dropped, so only compare lengths).
    for message in &expected {
        let mut out = Vec::new();
        if message.encode(&mut out).is_ok() {
            assert_eq!(out.len(), message.encoded_len());
        }
    }
});
