//! The capture reader on arbitrary bytes: format sniffing, gzip, pcap and pcapng records,
//! link-layer, IP and TCP decoding. It must never panic, hang or allocate from a length
//! it read, whatever the bytes.
#![no_main]

use closewait::capture::SegmentStream;
use libfuzzer_sys::fuzz_target;
use std::io::{Cursor, Read};

fuzz_target!(|data: &[u8]| {
    let input: Box<dyn Read + Send> = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut stream) = SegmentStream::open_readers(vec![("fuzz".to_string(), input)]) else {
        return; // not a capture, or a broken header: an error, as it should be
    };
    let mut segments = 0u64;
    while let Some(seg) = stream.next_segment() {
        segments += 1;
        assert!(seg.captured_payload_len <= seg.payload_len);
        let frame = seg.frame;
        assert_eq!(frame, stream.frames_read());
    }
    let stats = stream.into_stats();
    assert_eq!(stats.packets.tcp, segments);
    // A frame may hold several TCP segments (an 802.11 A-MSDU in GRE), so segments can
    // outnumber packets; skipped packets cannot.
    let skipped: u64 = stats.packets.skipped.values().sum();
    assert!(skipped <= stats.packets.total);
});
