//! Reads and decodes a capture without analysing it: the cost of closewait's reader alone
//! (record walk, link/IP/TCP decoding, frame numbering and stats), between the bare
//! record walk of `walk_records` and a whole `closewait analyze`.
//!
//!     cargo run --release --example stream_only -- CAPTURE...
//!
//! Prints the number of TCP segments and a checksum of their sequence numbers (so the
//! decoding cannot be optimised away).
use closewait::capture::{InputSpec, SegmentStream};

fn main() {
    let inputs: Vec<InputSpec> = std::env::args()
        .skip(1)
        .map(|a| InputSpec::from_arg(&a))
        .collect();
    if inputs.is_empty() {
        eprintln!("usage: stream_only CAPTURE...");
        std::process::exit(2);
    }
    let mut stream = match SegmentStream::open(&inputs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stream_only: {e}");
            std::process::exit(2);
        }
    };
    let (mut segments, mut checksum) = (0u64, 0u64);
    while let Some(seg) = stream.next_segment() {
        segments += 1;
        checksum = checksum.wrapping_mul(31).wrapping_add(u64::from(seg.seq));
    }
    println!("{segments} TCP segments, checksum {checksum:016x}");
}
