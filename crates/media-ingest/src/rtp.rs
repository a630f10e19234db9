//! RTP (RFC 3550 section 5.1) packet parsing and writing, and the payload-type → codec map.
//!
//! [`RtpPacket::parse`] borrows the payload and extension data from the datagram; only the
//! fixed header fields and the CSRC list (at most 15 words) are copied out. Every malformed
//! input is an [`RtpError`]; parsing never panics, whatever the bytes.
//!
//! What Asterisk sends (see `shared/ari-spec/README.md` (b) and (f)): version 2, payload type 118
//! for `slin16` (L16 at 16 kHz, samples big-endian), 0 for µ-law, 8 for A-law, 20 ms per packet,
//! no padding, no extension, no CSRCs. The parser still handles all of those for other senders.

use std::fmt;
use std::str::FromStr;

use crate::g711::{self, OddLengthError};

/// The only RTP version in use (RFC 3550).
pub const RTP_VERSION: u8 = 2;
/// Length of the fixed header, before CSRCs and the extension.
pub const FIXED_HEADER_LEN: usize = 12;
/// The CSRC count field has four bits.
pub const MAX_CSRCS: usize = 15;

/// Why a datagram is not a valid RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the fixed header plus the CSRC list it announces.
    #[error("rtp packet too short: {len} bytes, header needs {needed}")]
    TooShort { len: usize, needed: usize },
    /// The two version bits are not 2.
    #[error("unsupported rtp version {0}")]
    BadVersion(u8),
    /// The padding bit is set but the count in the last byte is zero or larger than what
    /// follows the headers.
    #[error("bad rtp padding: count {count}, only {available} bytes after the header")]
    BadPadding { count: u8, available: usize },
    /// The extension bit is set but the extension header or its data runs past the packet.
    #[error("rtp header extension of {needed} bytes overruns the {available} bytes after the header")]
    BadExtension { needed: usize, available: usize },
}

/// Why an [`RtpPacket`] cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpWriteError {
    /// Payload types have seven bits.
    #[error("payload type {0} does not fit in 7 bits")]
    PayloadTypeOutOfRange(u8),
    /// The extension data must be whole 32-bit words, at most 65535 of them.
    #[error("rtp extension data of {0} bytes is not a whole number of 32-bit words below 2^16")]
    BadExtensionLength(usize),
}

/// A header extension (RFC 3550 section 5.3.1): a profile-defined id and its data words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// The 16 "defined by profile" bits (0xBEDE for RFC 8285 one-byte headers, for example).
    pub profile: u16,
    /// The extension data, a multiple of four bytes long.
    pub data: &'a [u8],
}

/// One RTP packet: parsed from a datagram, or built to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit (start of a talk spurt for audio).
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number; wraps from 65535 to 0.
    pub sequence: u16,
    /// Media timestamp in codec clock units; wraps from 2^32-1 to 0.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    csrc_count: u8,
    csrcs: [u32; MAX_CSRCS],
    /// Header extension, when the X bit is set.
    pub extension: Option<RtpExtension<'a>>,
    /// The payload, without padding.
    pub payload: &'a [u8],
    /// Padding bytes after the payload, including the count byte itself (0 = no padding).
    pub padding_len: u8,
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl<'a> RtpPacket<'a> {
    /// A packet with no marker, CSRCs, extension or padding.
    pub fn new(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, payload: &'a [u8]) -> Self {
        Self {
            marker: false,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrc_count: 0,
            csrcs: [0; MAX_CSRCS],
            extension: None,
            payload,
            padding_len: 0,
        }
    }

    /// Parses one datagram. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RtpError> {
        if bytes.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort { len: bytes.len(), needed: FIXED_HEADER_LEN });
        }
        let first = bytes[0];
        let version = first >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = first & 0x20 != 0;
        let has_extension = first & 0x10 != 0;
        let csrc_count = first & 0x0F;
        let second = bytes[1];

        let mut offset = FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
        if bytes.len() < offset {
            return Err(RtpError::TooShort { len: bytes.len(), needed: offset });
        }
        let mut csrcs = [0u32; MAX_CSRCS];
        for (i, csrc) in csrcs.iter_mut().take(usize::from(csrc_count)).enumerate() {
            *csrc = read_u32(bytes, FIXED_HEADER_LEN + 4 * i);
        }

        let extension = if has_extension {
            let available = bytes.len() - offset;
            if available < 4 {
                return Err(RtpError::BadExtension { needed: 4, available });
            }
            let profile = read_u16(bytes, offset);
            let data_len = 4 * usize::from(read_u16(bytes, offset + 2));
            let needed = 4 + data_len;
            if available < needed {
                return Err(RtpError::BadExtension { needed, available });
            }
            let data = &bytes[offset + 4..offset + needed];
            offset += needed;
            Some(RtpExtension { profile, data })
        } else {
            None
        };

        let mut end = bytes.len();
        let mut padding_len = 0;
        if has_padding {
            let available = end - offset;
            // The count includes the count byte itself, so zero is invalid too.
            // `bytes` holds at least the fixed header, so there is always a last byte.
            let count = bytes.last().copied().unwrap_or(0);
            if count == 0 || usize::from(count) > available {
                return Err(RtpError::BadPadding { count, available });
            }
            end -= usize::from(count);
            padding_len = count;
        }

        Ok(Self {
            marker: second & 0x80 != 0,
            payload_type: second & 0x7F,
            sequence: read_u16(bytes, 2),
            timestamp: read_u32(bytes, 4),
            ssrc: read_u32(bytes, 8),
            csrc_count,
            csrcs,
            extension,
            payload: &bytes[offset..end],
            padding_len,
        })
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> &[u32] {
        &self.csrcs[..usize::from(self.csrc_count)]
    }

    /// Sets the contributing sources; more than [`MAX_CSRCS`] are cut off at 15.
    pub fn with_csrcs(mut self, csrcs: &[u32]) -> Self {
        let n = csrcs.len().min(MAX_CSRCS);
        self.csrcs = [0; MAX_CSRCS];
        self.csrcs[..n].copy_from_slice(&csrcs[..n]);
        self.csrc_count = n as u8;
        self
    }

    /// Sets the marker bit.
    pub fn with_marker(mut self, marker: bool) -> Self {
        self.marker = marker;
        self
    }

    /// Adds a header extension; `data` must be whole 32-bit words (checked by [`Self::write`]).
    pub fn with_extension(mut self, profile: u16, data: &'a [u8]) -> Self {
        self.extension = Some(RtpExtension { profile, data });
        self
    }

    /// Adds `padding_len` bytes of padding (count byte included) when written; 0 means none.
    pub fn with_padding(mut self, padding_len: u8) -> Self {
        self.padding_len = padding_len;
        self
    }

    /// Bytes [`Self::write`] will append.
    pub fn encoded_len(&self) -> usize {
        FIXED_HEADER_LEN
            + 4 * usize::from(self.csrc_count)
            + self.extension.map_or(0, |e| 4 + e.data.len())
            + self.payload.len()
            + usize::from(self.padding_len)
    }

    /// Appends the packet to `buf` and returns the number of bytes written.
    /// On error nothing is appended.
    pub fn write(&self, buf: &mut Vec<u8>) -> Result<usize, RtpWriteError> {
        if self.payload_type > 0x7F {
            return Err(RtpWriteError::PayloadTypeOutOfRange(self.payload_type));
        }
        let extension_words = match self.extension {
            Some(ext) => {
                let words = ext.data.len() / 4;
                if !ext.data.len().is_multiple_of(4) || words > usize::from(u16::MAX) {
                    return Err(RtpWriteError::BadExtensionLength(ext.data.len()));
                }
                Some((ext, words as u16))
            }
            None => None,
        };
        let len = self.encoded_len();
        buf.reserve(len);
        let first = (RTP_VERSION << 6)
            | if self.padding_len > 0 { 0x20 } else { 0 }
            | if self.extension.is_some() { 0x10 } else { 0 }
            | self.csrc_count;
        buf.push(first);
        buf.push(if self.marker { 0x80 } else { 0 } | self.payload_type);
        buf.extend_from_slice(&self.sequence.to_be_bytes());
        buf.extend_from_slice(&self.timestamp.to_be_bytes());
        buf.extend_from_slice(&self.ssrc.to_be_bytes());
        for csrc in self.csrcs() {
            buf.extend_from_slice(&csrc.to_be_bytes());
        }
        if let Some((ext, words)) = extension_words {
            buf.extend_from_slice(&ext.profile.to_be_bytes());
            buf.extend_from_slice(&words.to_be_bytes());
            buf.extend_from_slice(ext.data);
        }
        buf.extend_from_slice(self.payload);
        if self.padding_len > 0 {
            buf.extend(std::iter::repeat_n(0, usize::from(self.padding_len) - 1));
            buf.push(self.padding_len);
        }
        Ok(len)
    }
}

/// An audio encoding an RTP payload type can map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, 8 kHz (Asterisk `ulaw`).
    Ulaw,
    /// G.711 A-law, 8 kHz (Asterisk `alaw`).
    Alaw,
    /// 16-bit signed linear PCM, big-endian on the wire (Asterisk `slin`, `slin16`, `slin48`…).
    Slin {
        /// Samples per second.
        sample_rate_hz: u32,
    },
}

/// A codec name that [`Codec::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec name {0:?} (expected ulaw, alaw, slin or slin<kHz> such as slin16)")]
pub struct UnknownCodecError(pub String);

impl Codec {
    /// 16 kHz linear PCM, what Dragoman asks Asterisk for.
    pub const SLIN16: Codec = Codec::Slin { sample_rate_hz: 16_000 };

    /// Samples per second.
    pub fn sample_rate_hz(self) -> u32 {
        match self {
            Codec::Ulaw | Codec::Alaw => 8_000,
            Codec::Slin { sample_rate_hz } => sample_rate_hz,
        }
    }

    /// Payload bytes per sample.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Codec::Ulaw | Codec::Alaw => 1,
            Codec::Slin { .. } => 2,
        }
    }

    /// Decodes an RTP payload of this codec, appending samples to `out`.
    /// On error nothing is appended.
    pub fn decode(self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), OddLengthError> {
        match self {
            Codec::Ulaw => {
                g711::decode_ulaw(payload, out);
                Ok(())
            }
            Codec::Alaw => {
                g711::decode_alaw(payload, out);
                Ok(())
            }
            Codec::Slin { .. } => g711::decode_slin_be(payload, out),
        }
    }

    /// Encodes samples as an RTP payload of this codec, appending bytes to `out`.
    pub fn encode(self, samples: &[i16], out: &mut Vec<u8>) {
        match self {
            Codec::Ulaw => g711::encode_ulaw(samples, out),
            Codec::Alaw => g711::encode_alaw(samples, out),
            Codec::Slin { .. } => g711::encode_slin_be(samples, out),
        }
    }
}

impl fmt::Display for Codec {
    /// Writes the Asterisk format name (`ulaw`, `alaw`, `slin`, `slin16`, `slin44` for 44.1 kHz).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Codec::Ulaw => f.write_str("ulaw"),
            Codec::Alaw => f.write_str("alaw"),
            Codec::Slin { sample_rate_hz: 8_000 } => f.write_str("slin"),
            Codec::Slin { sample_rate_hz: 44_100 } => f.write_str("slin44"),
            Codec::Slin { sample_rate_hz } => write!(f, "slin{}", sample_rate_hz / 1000),
        }
    }
}

impl FromStr for Codec {
    type Err = UnknownCodecError;

    /// Parses an Asterisk format name: `ulaw`, `alaw`, `slin` (8 kHz) or `slin<kHz>`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownCodecError(name.to_owned());
        match name {
            "ulaw" => Ok(Codec::Ulaw),
            "alaw" => Ok(Codec::Alaw),
            "slin" => Ok(Codec::Slin { sample_rate_hz: 8_000 }),
            "slin44" => Ok(Codec::Slin { sample_rate_hz: 44_100 }),
            _ => {
                let khz: u32 = name
                    .strip_prefix("slin")
                    .filter(|digits| !digits.starts_with('0') && digits.len() <= 3)
                    .and_then(|digits| digits.parse().ok())
                    .ok_or_else(unknown)?;
                // Asterisk's slin formats: 12, 16, 24, 32, 48, 96 and 192 kHz (44.1 handled above).
                match khz {
                    12 | 16 | 24 | 32 | 48 | 96 | 192 => Ok(Codec::Slin { sample_rate_hz: khz * 1000 }),
                    _ => Err(unknown()),
                }
            }
        }
    }
}

/// A payload type outside 0..=127.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payload type {0} does not fit in 7 bits")]
pub struct InvalidPayloadTypeError(pub u8);

/// Which codec each RTP payload type carries.
///
/// The defaults are Asterisk's (main/rtp_engine.c): 0 = µ-law, 8 = A-law, 118 = slin16.
/// Dynamic types (96..=127) are negotiated per deployment, so more can be inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadMap {
    codecs: [Option<Codec>; 128],
}

impl Default for PayloadMap {
    fn default() -> Self {
        let mut map = Self::empty();
        map.codecs[0] = Some(Codec::Ulaw);
        map.codecs[8] = Some(Codec::Alaw);
        map.codecs[118] = Some(Codec::SLIN16);
        map
    }
}

impl PayloadMap {
    /// A map with no entries.
    pub fn empty() -> Self {
        Self { codecs: [None; 128] }
    }

    /// Maps `payload_type` to `codec`, returning the codec it replaced.
    pub fn insert(&mut self, payload_type: u8, codec: Codec) -> Result<Option<Codec>, InvalidPayloadTypeError> {
        let slot = self.codecs.get_mut(usize::from(payload_type)).ok_or(InvalidPayloadTypeError(payload_type))?;
        Ok(slot.replace(codec))
    }

    /// Removes a mapping, returning the codec it had.
    pub fn remove(&mut self, payload_type: u8) -> Option<Codec> {
        self.codecs.get_mut(usize::from(payload_type)).and_then(Option::take)
    }

    /// The codec for `payload_type`, if mapped.
    pub fn get(&self, payload_type: u8) -> Option<Codec> {
        self.codecs.get(usize::from(payload_type)).copied().flatten()
    }

    /// All mappings, lowest payload type first.
    pub fn iter(&self) -> impl Iterator<Item = (u8, Codec)> + '_ {
        self.codecs.iter().enumerate().filter_map(|(pt, codec)| codec.map(|c| (pt as u8, c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20 ms slin16 packet exactly as Asterisk 22 sent it (ari-spec README (f)).
    fn asterisk_slin16_packet() -> Vec<u8> {
        let mut bytes = vec![0x80, 118, 0x12, 0x34, 0x00, 0x01, 0x02, 0x03, 0xDE, 0xAD, 0xBE, 0xEF];
        bytes.extend((0..640).map(|i| (i % 251) as u8));
        bytes
    }

    #[test]
    fn parses_a_plain_asterisk_packet() {
        let bytes = asterisk_slin16_packet();
        let p = RtpPacket::parse(&bytes).expect("valid packet");
        assert!(!p.marker);
        assert_eq!(p.payload_type, 118);
        assert_eq!(p.sequence, 0x1234);
        assert_eq!(p.timestamp, 0x0001_0203);
        assert_eq!(p.ssrc, 0xDEAD_BEEF);
        assert!(p.csrcs().is_empty());
        assert_eq!(p.extension, None);
        assert_eq!(p.padding_len, 0);
        assert_eq!(p.payload, &bytes[12..]);
        assert_eq!(p.payload.len(), 640);
    }

    #[test]
    fn marker_and_high_payload_type_bits_are_split() {
        let mut bytes = asterisk_slin16_packet();
        bytes[1] = 0x80 | 127;
        let p = RtpPacket::parse(&bytes).expect("valid packet");
        assert!(p.marker);
        assert_eq!(p.payload_type, 127);
    }

    #[test]
    fn csrcs_extension_and_padding_are_all_skipped() {
        // V=2 P=1 X=1 CC=2
        let mut bytes = vec![0xB2, 0x08, 0, 7, 0, 0, 0, 160, 0, 0, 0, 9];
        bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // two CSRCs
        bytes.extend_from_slice(&[0xBE, 0xDE, 0, 2]); // extension header: 2 words
        bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        bytes.extend_from_slice(&[0xAA, 0xBB, 0xCC]); // payload
        bytes.extend_from_slice(&[0, 0, 3]); // 3 bytes padding
        let p = RtpPacket::parse(&bytes).expect("valid packet");
        assert_eq!(p.csrcs(), &[1, 2]);
        assert_eq!(p.extension, Some(RtpExtension { profile: 0xBEDE, data: &[1, 2, 3, 4, 5, 6, 7, 8] }));
        assert_eq!(p.payload, &[0xAA, 0xBB, 0xCC]);
        assert_eq!(p.padding_len, 3);
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.sequence, 7);
        assert_eq!(p.timestamp, 160);
        assert_eq!(p.ssrc, 9);
    }

    #[test]
    fn padding_may_consume_the_whole_payload() {
        let mut bytes = vec![0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        bytes.extend_from_slice(&[0, 0, 0, 4]);
        let p = RtpPacket::parse(&bytes).expect("valid packet");
        assert!(p.payload.is_empty());
        assert_eq!(p.padding_len, 4);
    }

    #[test]
    fn malformed_packets_are_typed_errors() {
        let good = asterisk_slin16_packet();
        assert_eq!(RtpPacket::parse(&[]), Err(RtpError::TooShort { len: 0, needed: 12 }));
        assert_eq!(RtpPacket::parse(&good[..11]), Err(RtpError::TooShort { len: 11, needed: 12 }));

        for version in [0u8, 1, 3] {
            let mut bytes = good.clone();
            bytes[0] = (version << 6) | (bytes[0] & 0x3F);
            assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::BadVersion(version)));
        }

        // CC = 3 but only 2 CSRC words present.
        let mut bytes = good[..12].to_vec();
        bytes[0] |= 3;
        bytes.extend_from_slice(&[0; 8]);
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::TooShort { len: 20, needed: 24 }));

        // Padding: count zero, count larger than what follows the header, no byte at all.
        let mut bytes = good[..12].to_vec();
        bytes[0] |= 0x20;
        // The last byte is then the SSRC's last byte (0xEF), with nothing after the header.
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::BadPadding { count: 0xEF, available: 0 }));
        bytes.extend_from_slice(&[1, 2, 0]);
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::BadPadding { count: 0, available: 3 }));
        let last = bytes.len() - 1;
        bytes[last] = 4;
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::BadPadding { count: 4, available: 3 }));
        bytes[last] = 3;
        assert!(RtpPacket::parse(&bytes).is_ok());

        // Extension: header cut short, then data longer than the packet.
        let mut bytes = good[..12].to_vec();
        bytes[0] |= 0x10;
        bytes.extend_from_slice(&[0xBE, 0xDE, 0]);
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::BadExtension { needed: 4, available: 3 }));
        bytes.extend_from_slice(&[2, 1, 2, 3, 4]);
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::BadExtension { needed: 12, available: 8 }));
        bytes.extend_from_slice(&[5, 6, 7, 8]);
        let p = RtpPacket::parse(&bytes).expect("extension now complete");
        assert!(p.payload.is_empty());

        // Padding may not eat into the extension.
        let mut padded = bytes.clone();
        padded[0] |= 0x20;
        let last = padded.len() - 1;
        padded[last] = 1;
        assert_eq!(RtpPacket::parse(&padded), Err(RtpError::BadPadding { count: 1, available: 0 }));
    }

    #[test]
    fn write_then_parse_round_trips_every_field() {
        let ext = [9u8, 8, 7, 6];
        let payload = [1u8, 2, 3, 4, 5];
        let packet = RtpPacket::new(96, 65535, u32::MAX, 0x0102_0304, &payload)
            .with_marker(true)
            .with_csrcs(&[10, 20, 30])
            .with_extension(0x1000, &ext)
            .with_padding(7);
        let mut buf = vec![0xEE]; // write appends
        let n = packet.write(&mut buf).expect("valid packet");
        assert_eq!(n, packet.encoded_len());
        assert_eq!(buf.len(), 1 + n);
        assert_eq!(n, 12 + 12 + 8 + 5 + 7);
        let parsed = RtpPacket::parse(&buf[1..]).expect("own output parses");
        assert_eq!(parsed, packet);
    }

    #[test]
    fn write_rejects_what_cannot_be_encoded() {
        let mut buf = Vec::new();
        let p = RtpPacket::new(128, 0, 0, 0, &[]);
        assert_eq!(p.write(&mut buf), Err(RtpWriteError::PayloadTypeOutOfRange(128)));
        let p = RtpPacket::new(0, 0, 0, 0, &[]).with_extension(1, &[1, 2, 3]);
        assert_eq!(p.write(&mut buf), Err(RtpWriteError::BadExtensionLength(3)));
        assert!(buf.is_empty());
        let many: Vec<u32> = (0..20).collect();
        assert_eq!(RtpPacket::new(0, 0, 0, 0, &[]).with_csrcs(&many).csrcs().len(), MAX_CSRCS);
    }

    /// Small deterministic PRNG (xorshift64*) so the random tests are reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn random_bytes_never_panic_and_valid_results_are_consistent() {
        let mut rng = Rng(0x1234_5678_9ABC_DEF0);
        let mut buf = Vec::new();
        let mut valid = 0;
        for _ in 0..200_000 {
            let len = (rng.next() % 80) as usize;
            buf.clear();
            buf.extend((0..len).map(|_| rng.next() as u8));
            // Bias half the inputs to version 2 so the deeper paths are exercised.
            if len > 0 && rng.next().is_multiple_of(2) {
                buf[0] = (buf[0] & 0x3F) | 0x80;
            }
            if let Ok(p) = RtpPacket::parse(&buf) {
                valid += 1;
                assert!(p.encoded_len() <= buf.len());
                // Only the padding bytes' content may differ, so everything else must re-encode.
                let mut out = Vec::new();
                let n = p.write(&mut out).expect("parsed packets are writable");
                assert_eq!(n, buf.len());
                let payload_end = n - usize::from(p.padding_len);
                assert_eq!(&out[..payload_end], &buf[..payload_end]);
                assert_eq!(out.last(), buf.last());
            }
        }
        assert!(valid > 1000, "only {valid} random packets were valid");
    }

    #[test]
    fn default_payload_map_matches_asterisk() {
        let map = PayloadMap::default();
        assert_eq!(map.get(0), Some(Codec::Ulaw));
        assert_eq!(map.get(8), Some(Codec::Alaw));
        assert_eq!(map.get(118), Some(Codec::Slin { sample_rate_hz: 16_000 }));
        assert_eq!(map.get(9), None);
        assert_eq!(map.get(200), None);
        assert_eq!(map.iter().count(), 3);
    }

    #[test]
    fn payload_map_insert_and_remove() {
        let mut map = PayloadMap::default();
        let slin48 = Codec::Slin { sample_rate_hz: 48_000 };
        assert_eq!(map.insert(126, slin48), Ok(None));
        assert_eq!(map.get(126), Some(slin48));
        assert_eq!(map.insert(118, Codec::Ulaw), Ok(Some(Codec::SLIN16)));
        assert_eq!(map.insert(128, Codec::Ulaw), Err(InvalidPayloadTypeError(128)));
        assert_eq!(map.remove(126), Some(slin48));
        assert_eq!(map.get(126), None);
        assert_eq!(map.remove(255), None);
        assert_eq!(map.iter().map(|(pt, _)| pt).collect::<Vec<_>>(), vec![0, 8, 118]);
    }

    #[test]
    fn codec_names_round_trip() {
        for name in
            ["ulaw", "alaw", "slin", "slin12", "slin16", "slin24", "slin32", "slin44", "slin48", "slin96", "slin192"]
        {
            let codec: Codec = name.parse().expect("known name");
            assert_eq!(codec.to_string(), name);
        }
        assert_eq!("slin44".parse::<Codec>().map(Codec::sample_rate_hz), Ok(44_100));
        for bad in ["", "slin0", "slin016", "slin17", "slin1600", "opus", "SLIN16"] {
            assert!(bad.parse::<Codec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn codec_decode_and_encode() {
        let mut out = Vec::new();
        Codec::SLIN16.decode(&[0x01, 0x00, 0xFF, 0xFF], &mut out).expect("even");
        assert_eq!(out, vec![256, -1], "slin on RTP is big-endian");
        assert_eq!(Codec::SLIN16.decode(&[1, 2, 3], &mut out), Err(OddLengthError { len: 3 }));
        out.clear();
        Codec::Ulaw.decode(&[0xFF, 0x00], &mut out).expect("ulaw");
        Codec::Alaw.decode(&[0xD5], &mut out).expect("alaw");
        assert_eq!(out, vec![0, -32124, 8]);
        let mut bytes = Vec::new();
        Codec::SLIN16.encode(&[256, -1], &mut bytes);
        Codec::Ulaw.encode(&[0], &mut bytes);
        Codec::Alaw.encode(&[-8], &mut bytes);
        assert_eq!(bytes, vec![0x01, 0x00, 0xFF, 0xFF, 0xFF, 0x55]);
        assert_eq!(Codec::Ulaw.sample_rate_hz(), 8_000);
        assert_eq!(Codec::SLIN16.bytes_per_sample(), 2);
    }
}
