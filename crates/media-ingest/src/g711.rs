//! ITU-T G.711 µ-law and A-law companding, and 16-bit linear PCM byte order conversion.
//!
//! Decoding goes through 256-entry tables built by `const fn` at compile time, so decoding a
//! 20 ms packet is 160 table look-ups. Encoding is computed directly (it is only needed by test
//! senders and the load generator, so a 64 KiB table per law would be wasted memory).
//!
//! The decoded scale is the usual 16-bit one: µ-law spans ±32124 and A-law ±32256.

/// A linear PCM byte payload whose length is not a whole number of 16-bit samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("linear pcm payload has odd length {len}")]
pub struct OddLengthError {
    /// Length of the rejected payload in bytes.
    pub len: usize,
}

/// µ-law bias added before the segment search (33 in the 14-bit domain, scaled to 16 bits).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law can represent once the bias is added without overflowing segment 7.
const ULAW_CLIP: i32 = 32635;

const fn ulaw_decode_computed(byte: u8) -> i16 {
    // Code words are transmitted inverted (G.711 section 2), so undo that first.
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    // Rebuild the biased magnitude at the middle of its quantisation step, then remove the bias.
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 { -magnitude as i16 } else { magnitude as i16 }
}

const fn alaw_decode_computed(byte: u8) -> i16 {
    // A-law toggles the even bits on the wire (XOR 0x55).
    let a = byte ^ 0x55;
    let segment = (a >> 4) & 0x07;
    let mantissa = (a & 0x0F) as i32;
    // Segment 0 is linear with a step of 16 (in the 16-bit domain); each later segment doubles
    // the step and starts where the previous one ended. The added half step centres the value.
    let magnitude = if segment == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (segment - 1) };
    // In A-law the sign bit set means positive.
    if a & 0x80 != 0 { magnitude as i16 } else { -magnitude as i16 }
}

const fn build_table(law_is_ulaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if law_is_ulaw { ulaw_decode_computed(i as u8) } else { alaw_decode_computed(i as u8) };
        i += 1;
    }
    table
}

/// µ-law code word → 16-bit linear sample.
pub static ULAW_TO_LINEAR: [i16; 256] = build_table(true);
/// A-law code word → 16-bit linear sample.
pub static ALAW_TO_LINEAR: [i16; 256] = build_table(false);

/// Decodes one µ-law byte.
#[inline]
pub fn ulaw_to_linear(byte: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(byte)]
}

/// Decodes one A-law byte.
#[inline]
pub fn alaw_to_linear(byte: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(byte)]
}

/// Encodes one 16-bit sample as µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample);
    let sign = if magnitude < 0 {
        magnitude = -magnitude;
        0x80u8
    } else {
        0
    };
    let biased = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    // biased lies in 0x84..=0x7FFF, so its top set bit is bit 7..=14: exponent 0..=7.
    let top_bit = 31 - (biased as u32).leading_zeros();
    let exponent = (top_bit - 7) as u8;
    let mantissa = ((biased >> (exponent + 3)) & 0x0F) as u8;
    !(sign | (exponent << 4) | mantissa)
}

/// Encodes one 16-bit sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let (magnitude, toggle) = if sample >= 0 {
        (i32::from(sample), 0xD5u8)
    } else {
        // One's complement keeps -1..-8 in the smallest negative step, mirroring the positive side.
        (-i32::from(sample) - 1, 0x55u8)
    };
    // A-law quantises a 13-bit magnitude: 0..=4095.
    let value = magnitude >> 3;
    let segment: u8 = if value < 32 {
        0
    } else {
        // value 32..=63 → segment 1, …, 2048..=4095 → segment 7.
        (31 - (value as u32).leading_zeros() - 4) as u8
    };
    let shift = segment.max(1);
    let mantissa = ((value >> shift) & 0x0F) as u8;
    ((segment << 4) | mantissa) ^ toggle
}

/// Decodes a µ-law payload, appending the samples to `out`.
pub fn decode_ulaw(payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| ulaw_to_linear(b)));
}

/// Decodes an A-law payload, appending the samples to `out`.
pub fn decode_alaw(payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| alaw_to_linear(b)));
}

/// Encodes samples as µ-law, appending the bytes to `out`.
pub fn encode_ulaw(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| linear_to_ulaw(s)));
}

/// Encodes samples as A-law, appending the bytes to `out`.
pub fn encode_alaw(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| linear_to_alaw(s)));
}

/// Decodes big-endian 16-bit linear PCM (RTP L16 / Asterisk `slin*` on the wire).
pub fn decode_slin_be(payload: &[u8], out: &mut Vec<i16>) -> Result<(), OddLengthError> {
    decode_slin(payload, out, i16::from_be_bytes)
}

/// Decodes little-endian 16-bit linear PCM (AudioSocket audio payloads).
pub fn decode_slin_le(payload: &[u8], out: &mut Vec<i16>) -> Result<(), OddLengthError> {
    decode_slin(payload, out, i16::from_le_bytes)
}

fn decode_slin(payload: &[u8], out: &mut Vec<i16>, convert: fn([u8; 2]) -> i16) -> Result<(), OddLengthError> {
    if !payload.len().is_multiple_of(2) {
        return Err(OddLengthError { len: payload.len() });
    }
    out.reserve(payload.len() / 2);
    out.extend(payload.chunks_exact(2).map(|pair| convert([pair[0], pair[1]])));
    Ok(())
}

/// Encodes samples as big-endian 16-bit linear PCM.
pub fn encode_slin_be(samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_be_bytes());
    }
}

/// Encodes samples as little-endian 16-bit linear PCM.
pub fn encode_slin_le(samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        // Smallest non-zero steps: 0xFE → 8, 0x7E → -8 (the first segment has a step of 8).
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0x7E), -8);
        // First code of segment 1 (0xEF inverted = 0x10): (0<<3 + 132) << 1 - 132 = 132.
        assert_eq!(ulaw_to_linear(0xEF), 132);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        // Segment 1 starts at 256 + 8: 0xC5 = 0x90 ^ 0x55 (sign set, segment 1, mantissa 0).
        assert_eq!(alaw_to_linear(0xC5), 264);
    }

    #[test]
    fn tables_match_the_computed_decoders() {
        for b in 0..=255u8 {
            assert_eq!(ULAW_TO_LINEAR[usize::from(b)], ulaw_decode_computed(b));
            assert_eq!(ALAW_TO_LINEAR[usize::from(b)], alaw_decode_computed(b));
        }
    }

    #[test]
    fn decoders_are_monotonic_within_each_sign() {
        // Positive µ-law codes 0xFF down to 0x80 increase in magnitude; negative 0x7F down to 0x00.
        for b in 0x81..=0xFFu8 {
            assert!(ulaw_to_linear(b - 1) > ulaw_to_linear(b), "ulaw {b:#x}");
        }
        for b in 0x01..=0x7Fu8 {
            assert!(ulaw_to_linear(b - 1) < ulaw_to_linear(b), "ulaw {b:#x}");
        }
        // A-law after removing the toggle: magnitude grows with the low 7 bits.
        let mut previous = 0i16;
        for code in 0..=0x7Fu8 {
            let value = alaw_to_linear((code | 0x80) ^ 0x55);
            assert!(value > previous, "alaw code {code:#x}");
            previous = value;
            assert_eq!(alaw_to_linear(code ^ 0x55), -value);
        }
    }

    #[test]
    fn encoding_a_decoded_code_gives_the_code_back() {
        for b in 0..=255u8 {
            let expected = if b == 0x7F { 0xFF } else { b }; // µ-law's negative zero re-encodes as +0
            assert_eq!(linear_to_ulaw(ulaw_to_linear(b)), expected, "ulaw {b:#x}");
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "alaw {b:#x}");
        }
    }

    /// Width of the quantisation step that contains `x` for each law, used as the error bound.
    fn ulaw_step(x: i32) -> i32 {
        let biased = x.abs().min(ULAW_CLIP) + ULAW_BIAS;
        let exponent = 31 - (biased as u32).leading_zeros() as i32 - 7;
        8 << exponent
    }

    fn alaw_step(x: i32) -> i32 {
        let v = x.abs() >> 3;
        if v < 64 { 16 } else { 16 << (31 - (v as u32).leading_zeros() as i32 - 5) }
    }

    #[test]
    fn round_trip_stays_within_half_a_step_for_every_sample() {
        for x in i16::MIN..=i16::MAX {
            let xi = i32::from(x);
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(x)));
            if xi.abs() <= ULAW_CLIP {
                assert!((u - xi).abs() <= ulaw_step(xi) / 2, "ulaw {x} -> {u}");
            } else {
                assert_eq!(u.abs(), 32124, "clipped ulaw {x}");
                assert_eq!(u.signum(), xi.signum());
            }
            let a = i32::from(alaw_to_linear(linear_to_alaw(x)));
            assert!((a - xi).abs() <= alaw_step(xi) / 2 + 1, "alaw {x} -> {a}");
            assert!(a.signum() == xi.signum() || xi == 0 || xi == -1 || a.abs() <= 8);
        }
    }

    #[test]
    fn slin_byte_orders() {
        let mut out = Vec::new();
        decode_slin_be(&[0x12, 0x34, 0xFF, 0xFE, 0x80, 0x00], &mut out).expect("even length");
        assert_eq!(out, vec![0x1234, -2, i16::MIN]);
        out.clear();
        decode_slin_le(&[0x34, 0x12, 0xFE, 0xFF], &mut out).expect("even length");
        assert_eq!(out, vec![0x1234, -2]);

        let samples = [0i16, 1, -1, 0x1234, i16::MAX, i16::MIN];
        let mut be = Vec::new();
        encode_slin_be(&samples, &mut be);
        assert_eq!(&be[6..8], &[0x12, 0x34]);
        let mut le = Vec::new();
        encode_slin_le(&samples, &mut le);
        assert_eq!(&le[6..8], &[0x34, 0x12]);
        let mut back = Vec::new();
        decode_slin_be(&be, &mut back).expect("even length");
        decode_slin_le(&le, &mut back).expect("even length");
        assert_eq!(&back[..6], &samples);
        assert_eq!(&back[6..], &samples);
    }

    #[test]
    fn slin_odd_length_is_rejected_without_output() {
        let mut out = vec![7];
        assert_eq!(decode_slin_be(&[1, 2, 3], &mut out), Err(OddLengthError { len: 3 }));
        assert_eq!(decode_slin_le(&[1], &mut out), Err(OddLengthError { len: 1 }));
        assert_eq!(out, vec![7]);
    }

    #[test]
    fn payload_helpers_match_single_sample_functions() {
        let samples: Vec<i16> = (-40..40).map(|i| (i * 811) as i16).collect();
        let mut u = Vec::new();
        encode_ulaw(&samples, &mut u);
        let mut a = Vec::new();
        encode_alaw(&samples, &mut a);
        assert_eq!(u.len(), samples.len());
        let mut du = Vec::new();
        decode_ulaw(&u, &mut du);
        let mut da = Vec::new();
        decode_alaw(&a, &mut da);
        for i in 0..samples.len() {
            assert_eq!(u[i], linear_to_ulaw(samples[i]));
            assert_eq!(du[i], ulaw_to_linear(u[i]));
            assert_eq!(da[i], alaw_to_linear(a[i]));
        }
    }
}
