//! A hand-built TCP segment, for tests that drive the `Analyzer` directly (floods, scans)
//! instead of reading a capture. The unit tests' counterpart is `src/testkit.rs`.

use closewait::segment::{Segment, TcpFlags};
use std::net::SocketAddr;

/// A segment with `len` payload bytes, all captured, no TCP options, a 64240-byte window.
pub fn segment(
    ts_ns: i64,
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
) -> Segment {
    Segment {
        ts_ns,
        frame: 0,
        src,
        dst,
        seq,
        ack,
        flags: TcpFlags(flags),
        window: 64240,
        window_scale: None,
        mss: None,
        timestamps: None,
        sack_permitted: false,
        payload_len: len,
        captured_payload_len: len,
    }
}
