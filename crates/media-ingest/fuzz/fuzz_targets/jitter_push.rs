//! Any sequence of packets (SSRC, sequence, timestamp, length from the input): the jitter
//! buffer must not panic, must keep its memory bounded and must output a gap-free timeline.
#![no_main]

#[path = "../../src/jitter.rs"]
#[allow(dead_code)]
mod jitter;

use jitter::{JitterBuffer, JitterConfig, MediaPacket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = JitterConfig { sample_rate_hz: 8_000, max_gap_ms: 1_000, ..JitterConfig::default() };
    let Ok(mut jb) = JitterBuffer::new(config) else {
        return;
    };
    let frame_len = jb.frame_len() as u64;
    let samples = vec![1000i16; 400];
    let mut out = Vec::new();
    let mut next_start = 0u64;
    for record in data.chunks_exact(8) {
        let packet = MediaPacket {
            ssrc: u32::from(record[0] & 0x03),
            sequence: u16::from_be_bytes([record[1], record[2]]),
            timestamp: u32::from_be_bytes([record[3], record[4], record[5], record[6]]),
            samples: &samples[..usize::from(record[7]) % 401],
        };
        jb.push(&packet, &mut out);
        assert!(jb.buffered_packets() <= usize::from(config.reorder_depth_packets));
        for frame in out.drain(..) {
            assert_eq!(frame.start_sample, next_start);
            assert_eq!(frame.samples.len() as u64, frame_len);
            next_start += frame_len;
        }
    }
    jb.finish(&mut out);
    for frame in out.drain(..) {
        assert_eq!(frame.start_sample, next_start);
        next_start += frame_len;
    }
    assert_eq!(jb.position_samples(), next_start);
});
