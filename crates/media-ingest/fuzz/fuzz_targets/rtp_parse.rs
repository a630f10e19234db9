//! Any datagram: parsing must not panic, and a parsed packet must re-encode to the same bytes
//! (apart from the content of padding bytes, which RTP leaves unspecified).
#![no_main]

#[path = "../../src/g711.rs"]
#[allow(dead_code)]
mod g711;
#[path = "../../src/rtp.rs"]
#[allow(dead_code)]
mod rtp;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = rtp::RtpPacket::parse(data) else {
        return;
    };
    assert!(packet.payload.len() + rtp::FIXED_HEADER_LEN <= data.len());
    let mut out = Vec::new();
    let written = packet.write(&mut out).expect("a parsed packet is writable");
    assert_eq!(written, data.len());
    let payload_end = written - usize::from(packet.padding_len);
    assert_eq!(&out[..payload_end], &data[..payload_end]);
    assert_eq!(out.last(), data.last());
    assert_eq!(rtp::RtpPacket::parse(&out), Ok(packet));
    // Decoding the payload with each codec must not panic either.
    let mut samples = Vec::new();
    for codec in [rtp::Codec::Ulaw, rtp::Codec::Alaw, rtp::Codec::SLIN16] {
        let _ = codec.decode(packet.payload, &mut samples);
    }
});
