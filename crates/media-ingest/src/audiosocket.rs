//! Asterisk AudioSocket framing over TCP.
//!
//! Every message is a three-byte header — one byte kind, two bytes payload length, big-endian —
//! followed by the payload. Sources checked (2026): the protocol definition at
//! <https://docs.asterisk.org/Configuration/Channel-Drivers/AudioSocket/> ("0x10 - Payload is
//! signed linear, 16-bit, 8kHz, mono PCM (little-endian)"; "The payload length is a 16-bit
//! unsigned integer (big endian)"), and Asterisk's `res/res_audiosocket.c`, which writes the
//! length with `htons` but copies the audio frame's samples with a plain `memcpy`. Asterisk's
//! `slin` frames are in host byte order, so the audio is little-endian on the usual x86-64 and
//! arm64 hosts — the opposite of RTP, where `slin` is big-endian. The UUID message (kind 0x01,
//! 16 raw bytes) is the first thing Asterisk sends on a new connection (`ast_audiosocket_init`).
//!
//! Kinds handled: 0x00 hangup, 0x01 UUID, 0x03 DTMF (one ASCII digit; Asterisk 20+ forwards
//! keypresses this way, so rejecting it would end a call when someone presses a key),
//! 0x10 audio at 8 kHz, 0xFF error. Newer Asterisk releases add audio kinds for other sample
//! rates, but their numbering is not stable across sources: `include/asterisk/res_audiosocket.h`
//! at one commit defines `AST_AUDIOSOCKET_KIND_AUDIO_SLIN16 = 0x11`, while the current protocol
//! page lists 0x11 as 12 kHz and 0x12 as 16 kHz. Guessing would play audio at the wrong speed,
//! so kinds 0x11..=0x18 are a distinct [`AudioSocketError::UnsupportedAudioKind`]; ask Asterisk
//! for `format=slin` (8 kHz) when using AudioSocket. Every other kind is
//! [`AudioSocketError::UnknownKind`].
//!
//! [`Decoder`] is incremental: feed it whatever a read returned and call [`Decoder::decode`]
//! until it answers `Ok(None)`. An error leaves the buffer untouched; treat it as fatal for the
//! connection (the peer is not speaking AudioSocket, or is speaking a newer dialect).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// Bytes in a message header.
pub const HEADER_LEN: usize = 3;
/// Payload limit a [`Decoder::default`] accepts: ample for 8 kHz audio (320 bytes per 20 ms).
pub const DEFAULT_MAX_PAYLOAD_LEN: usize = 8192;

/// Message kinds (the header's first byte).
pub mod kind {
    /// Hang up / terminate the connection.
    pub const HANGUP: u8 = 0x00;
    /// The stream's UUID, 16 raw bytes.
    pub const UUID: u8 = 0x01;
    /// One DTMF digit as an ASCII byte.
    pub const DTMF: u8 = 0x03;
    /// Signed linear 16-bit, 8 kHz, mono, little-endian audio.
    pub const AUDIO: u8 = 0x10;
    /// First of the newer higher-rate audio kinds (see the module docs).
    pub const AUDIO_OTHER_RATES_FIRST: u8 = 0x11;
    /// Last of the newer higher-rate audio kinds.
    pub const AUDIO_OTHER_RATES_LAST: u8 = 0x18;
    /// An error; the payload is an optional application-specific code.
    pub const ERROR: u8 = 0xFF;
}

/// Asterisk's own error codes: one byte, bit-packed (the protocol page lists 0x01, 0x02, 0x04),
/// carried as the payload of an error message.
pub mod error_code {
    /// The calling party hung up.
    pub const HANGUP: u8 = 0x01;
    /// Asterisk failed to forward a frame.
    pub const FRAME_FORWARDING: u8 = 0x02;
    /// Asterisk ran out of memory.
    pub const MEMORY: u8 = 0x04;
}

/// Why bytes could not be decoded, or a message not encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AudioSocketError {
    /// A kind byte this module does not know.
    #[error("unknown audiosocket message kind {0:#04x}")]
    UnknownKind(u8),
    /// Audio at a sample rate other than 8 kHz, whose kind numbering differs between releases.
    #[error("audiosocket audio kind {0:#04x} (not 8 kHz) is not supported; use format=slin")]
    UnsupportedAudioKind(u8),
    /// The announced payload is longer than the configured limit (or than 65535 when encoding).
    #[error("audiosocket payload of {len} bytes exceeds the limit of {max}")]
    PayloadTooLong { len: usize, max: usize },
    /// A UUID message whose payload is not 16 bytes.
    #[error("audiosocket uuid payload has {0} bytes, expected 16")]
    BadUuidLength(usize),
    /// A DTMF message whose payload is not one byte.
    #[error("audiosocket dtmf payload has {0} bytes, expected 1")]
    BadDtmfLength(usize),
    /// Audio that is not a whole number of 16-bit samples.
    #[error("audiosocket audio payload has odd length {0}")]
    OddAudioLength(usize),
    /// Encoding an audio message with no samples: Asterisk rejects a zero length.
    #[error("audiosocket audio message must carry at least one sample")]
    EmptyAudio,
}

/// One AudioSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Kind 0x00. Any payload a peer attaches is ignored.
    Hangup,
    /// Kind 0x01: identifies the stream (the `data` given to externalMedia).
    Uuid(Uuid),
    /// Kind 0x03: one DTMF digit as ASCII.
    Dtmf(u8),
    /// Kind 0x10: signed linear 16-bit, 8 kHz, mono, little-endian bytes.
    Audio(Bytes),
    /// Kind 0xFF: optional error code bytes (see [`error_code`]).
    Error(Bytes),
}

impl Message {
    /// An audio message holding `samples` as little-endian bytes.
    pub fn audio_from_samples(samples: &[i16]) -> Self {
        let mut bytes = BytesMut::with_capacity(samples.len() * 2);
        for s in samples {
            bytes.put_i16_le(*s);
        }
        Message::Audio(bytes.freeze())
    }

    /// The header's kind byte for this message.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Hangup => kind::HANGUP,
            Message::Uuid(_) => kind::UUID,
            Message::Dtmf(_) => kind::DTMF,
            Message::Audio(_) => kind::AUDIO,
            Message::Error(_) => kind::ERROR,
        }
    }

    /// Bytes [`Self::encode`] will write.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    fn payload_len(&self) -> usize {
        match self {
            Message::Hangup => 0,
            Message::Uuid(_) => 16,
            Message::Dtmf(_) => 1,
            Message::Audio(bytes) | Message::Error(bytes) => bytes.len(),
        }
    }

    /// Writes header and payload to `out`. On error nothing is written.
    pub fn encode(&self, out: &mut impl BufMut) -> Result<(), AudioSocketError> {
        let len = self.payload_len();
        let wire_len =
            u16::try_from(len).map_err(|_| AudioSocketError::PayloadTooLong { len, max: usize::from(u16::MAX) })?;
        match self {
            Message::Audio(bytes) if bytes.is_empty() => return Err(AudioSocketError::EmptyAudio),
            Message::Audio(bytes) if !bytes.len().is_multiple_of(2) => {
                return Err(AudioSocketError::OddAudioLength(bytes.len()));
            }
            _ => {}
        }
        out.put_u8(self.kind());
        out.put_u16(wire_len);
        match self {
            Message::Hangup => {}
            Message::Uuid(uuid) => out.put_slice(uuid.as_bytes()),
            Message::Dtmf(digit) => out.put_u8(*digit),
            Message::Audio(bytes) | Message::Error(bytes) => out.put_slice(bytes),
        }
        Ok(())
    }
}

/// Incremental AudioSocket decoder with a payload length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    max_payload_len: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PAYLOAD_LEN)
    }
}

impl Decoder {
    /// A decoder rejecting payloads longer than `max_payload_len` bytes.
    pub fn new(max_payload_len: usize) -> Self {
        Self { max_payload_len }
    }

    /// The configured payload limit.
    pub fn max_payload_len(&self) -> usize {
        self.max_payload_len
    }

    /// Takes one complete message off the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; nothing is consumed then. The header is checked
    /// as soon as its three bytes are present, so an unknown kind or an oversize length is
    /// reported before the payload is buffered. On error nothing is consumed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Message>, AudioSocketError> {
        let Some(&[kind_byte, len_hi, len_lo]) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        match kind_byte {
            kind::HANGUP | kind::UUID | kind::DTMF | kind::AUDIO | kind::ERROR => {}
            kind::AUDIO_OTHER_RATES_FIRST..=kind::AUDIO_OTHER_RATES_LAST => {
                return Err(AudioSocketError::UnsupportedAudioKind(kind_byte));
            }
            other => return Err(AudioSocketError::UnknownKind(other)),
        }
        if len > self.max_payload_len {
            return Err(AudioSocketError::PayloadTooLong { len, max: self.max_payload_len });
        }
        match kind_byte {
            kind::UUID if len != 16 => return Err(AudioSocketError::BadUuidLength(len)),
            kind::DTMF if len != 1 => return Err(AudioSocketError::BadDtmfLength(len)),
            kind::AUDIO if !len.is_multiple_of(2) => {
                return Err(AudioSocketError::OddAudioLength(len));
            }
            _ => {}
        }
        if buf.len() < HEADER_LEN + len {
            // Make room for the rest so the next read can complete the message in one go.
            buf.reserve(HEADER_LEN + len - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let payload = buf.split_to(len).freeze();
        let message = match kind_byte {
            kind::HANGUP => Message::Hangup,
            kind::UUID => {
                let mut raw = [0u8; 16];
                raw.copy_from_slice(&payload);
                Message::Uuid(Uuid::from_bytes(raw))
            }
            kind::DTMF => Message::Dtmf(payload[0]),
            kind::AUDIO => Message::Audio(payload),
            _ => Message::Error(payload),
        };
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711;

    const STREAM_ID: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

    fn decode_all(decoder: &Decoder, buf: &mut BytesMut) -> Result<Vec<Message>, AudioSocketError> {
        let mut messages = Vec::new();
        while let Some(m) = decoder.decode(buf)? {
            messages.push(m);
        }
        Ok(messages)
    }

    #[test]
    fn decodes_what_asterisk_sends() {
        // UUID first, as ast_audiosocket_init writes it: 0x01 0x00 0x10 + 16 bytes.
        let mut wire = vec![0x01, 0x00, 0x10];
        wire.extend_from_slice(STREAM_ID.as_bytes());
        // 20 ms of 8 kHz audio: 160 samples, 320 bytes, little-endian.
        wire.extend_from_slice(&[0x10, 0x01, 0x40]);
        let samples: Vec<i16> = (0..160).map(|i| (i * 200 - 16_000) as i16).collect();
        g711::encode_slin_le(&samples, &mut wire);
        wire.extend_from_slice(&[0x03, 0x00, 0x01, b'7']);
        wire.extend_from_slice(&[0xFF, 0x00, 0x01, error_code::FRAME_FORWARDING]);
        wire.extend_from_slice(&[0x00, 0x00, 0x00]);

        let mut buf = BytesMut::from(&wire[..]);
        let messages = decode_all(&Decoder::default(), &mut buf).expect("valid stream");
        assert!(buf.is_empty());
        assert_eq!(messages.len(), 5);
        assert_eq!(messages[0], Message::Uuid(STREAM_ID));
        let Message::Audio(audio) = &messages[1] else { panic!("expected audio, got {:?}", messages[1]) };
        assert_eq!(audio.len(), 320);
        let mut decoded = Vec::new();
        g711::decode_slin_le(audio, &mut decoded).expect("even");
        assert_eq!(decoded, samples);
        assert_eq!(messages[2], Message::Dtmf(b'7'));
        assert_eq!(messages[3], Message::Error(Bytes::from_static(&[error_code::FRAME_FORWARDING])));
        assert_eq!(messages[4], Message::Hangup);
    }

    #[test]
    fn every_split_point_gives_the_same_messages() {
        let originals = vec![
            Message::Uuid(STREAM_ID),
            Message::audio_from_samples(&[1, -2, 300, i16::MIN]),
            Message::Dtmf(b'#'),
            Message::Error(Bytes::new()),
            Message::Hangup,
        ];
        let mut wire = BytesMut::new();
        for m in &originals {
            m.encode(&mut wire).expect("encodable");
        }
        let wire = wire.freeze();
        let decoder = Decoder::default();
        // Feed the stream one byte at a time and in two pieces at every split point.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in wire.iter() {
            buf.put_u8(b);
            got.extend(decode_all(&decoder, &mut buf).expect("valid"));
        }
        assert_eq!(got, originals);
        for split in 0..=wire.len() {
            let mut buf = BytesMut::from(&wire[..split]);
            let mut got = decode_all(&decoder, &mut buf).expect("valid prefix");
            buf.extend_from_slice(&wire[split..]);
            got.extend(decode_all(&decoder, &mut buf).expect("valid rest"));
            assert_eq!(got, originals, "split at {split}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn partial_input_consumes_nothing() {
        let decoder = Decoder::default();
        for partial in [&[][..], &[0x10], &[0x10, 0x00], &[0x10, 0x00, 0x04, 1, 2, 3]] {
            let mut buf = BytesMut::from(partial);
            assert_eq!(decoder.decode(&mut buf), Ok(None));
            assert_eq!(&buf[..], partial);
        }
    }

    #[test]
    fn header_errors_are_reported_before_the_payload_arrives() {
        let decoder = Decoder::new(320);
        let cases: [(&[u8], AudioSocketError); 8] = [
            (&[0x02, 0x00, 0x00], AudioSocketError::UnknownKind(0x02)),
            (&[0x20, 0x00, 0x00], AudioSocketError::UnknownKind(0x20)),
            (&[0x11, 0x01, 0x40], AudioSocketError::UnsupportedAudioKind(0x11)),
            (&[0x18, 0x01, 0x40], AudioSocketError::UnsupportedAudioKind(0x18)),
            (&[0x10, 0x01, 0x42], AudioSocketError::PayloadTooLong { len: 322, max: 320 }),
            (&[0x01, 0x00, 0x0F], AudioSocketError::BadUuidLength(15)),
            (&[0x03, 0x00, 0x02], AudioSocketError::BadDtmfLength(2)),
            (&[0x10, 0x00, 0x03], AudioSocketError::OddAudioLength(3)),
        ];
        for (bytes, expected) in cases {
            let mut buf = BytesMut::from(bytes);
            assert_eq!(decoder.decode(&mut buf), Err(expected), "{bytes:?}");
            assert_eq!(&buf[..], bytes, "an error consumes nothing");
        }
        // The limit is inclusive.
        let mut buf = BytesMut::from(&[0x10, 0x01, 0x40][..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.capacity() >= HEADER_LEN + 320);
    }

    #[test]
    fn hangup_payload_is_skipped_and_empty_audio_is_accepted() {
        let mut buf = BytesMut::from(&[0x00, 0x00, 0x02, 0xAA, 0xBB, 0x10, 0x00, 0x00][..]);
        let messages = decode_all(&Decoder::default(), &mut buf).expect("valid");
        assert_eq!(messages, vec![Message::Hangup, Message::Audio(Bytes::new())]);
    }

    #[test]
    fn encoder_output_is_exact_and_checked() {
        let mut out = Vec::new();
        Message::Hangup.encode(&mut out).expect("ok");
        Message::Dtmf(b'5').encode(&mut out).expect("ok");
        Message::audio_from_samples(&[0x0102, -1]).encode(&mut out).expect("ok");
        assert_eq!(out, vec![0, 0, 0, 3, 0, 1, b'5', 0x10, 0, 4, 0x02, 0x01, 0xFF, 0xFF]);
        let m = Message::Uuid(STREAM_ID);
        out.clear();
        m.encode(&mut out).expect("ok");
        assert_eq!(out.len(), m.encoded_len());
        assert_eq!(&out[..3], &[0x01, 0x00, 0x10]);

        let mut untouched = Vec::new();
        assert_eq!(Message::Audio(Bytes::new()).encode(&mut untouched), Err(AudioSocketError::EmptyAudio));
        assert_eq!(
            Message::Audio(Bytes::from_static(&[1, 2, 3])).encode(&mut untouched),
            Err(AudioSocketError::OddAudioLength(3))
        );
        let huge = Message::Error(Bytes::from(vec![0u8; 65536]));
        assert_eq!(huge.encode(&mut untouched), Err(AudioSocketError::PayloadTooLong { len: 65536, max: 65535 }));
        assert!(untouched.is_empty());
        // 65535 is the largest length that fits.
        Message::Error(Bytes::from(vec![7u8; 65535])).encode(&mut untouched).expect("fits");
        assert_eq!(&untouched[..3], &[0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let decoder = Decoder::new(64);
        let mut decoded = 0usize;
        for _ in 0..20_000 {
            let len = (next() % 48) as usize;
            // Bias kinds towards known ones and lengths towards small so whole messages occur.
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            for chunk in bytes.chunks_mut(8) {
                if chunk.len() >= 3 && next().is_multiple_of(2) {
                    chunk[0] = [0x00, 0x01, 0x03, 0x10, 0xFF][(next() % 5) as usize];
                    chunk[1] = 0;
                    chunk[2] = (next() % 6) as u8;
                }
            }
            let mut buf = BytesMut::from(&bytes[..]);
            loop {
                let before = buf.len();
                match decoder.decode(&mut buf) {
                    Ok(Some(m)) => {
                        decoded += 1;
                        let consumed = before - buf.len();
                        if m == Message::Hangup {
                            assert!(consumed >= HEADER_LEN);
                        } else {
                            assert_eq!(consumed, m.encoded_len(), "{m:?}");
                        }
                    }
                    Ok(None) | Err(_) => {
                        assert_eq!(buf.len(), before);
                        break;
                    }
                }
            }
        }
        assert!(decoded > 1000, "only {decoded} messages decoded");
    }
}
