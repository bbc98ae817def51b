//! Prints one line per TCP segment, for debugging the reader and decoder:
//!
//! ```text
//! cargo run --example dump_segments -- capture.pcap [more.pcapng.gz …|-]
//! frame ts src dst flags seq ack len win
//! ```
//!
//! The capture statistics go to standard error at the end.

use closewait::capture::{InputSpec, SegmentStream};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: dump_segments FILE… (- for standard input)");
        std::process::exit(2);
    }
    let inputs: Vec<InputSpec> = args.iter().map(|a| InputSpec::from_arg(a)).collect();
    let mut stream = match SegmentStream::open(&inputs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for s in stream.by_ref() {
        let secs = s.ts_ns.div_euclid(1_000_000_000);
        let nanos = s.ts_ns.rem_euclid(1_000_000_000);
        let r = writeln!(
            out,
            "{} {secs}.{nanos:09} {} {} [{}] seq={} ack={} len={} win={}",
            s.frame,
            s.src,
            s.dst,
            s.flags.wireshark_label(),
            s.seq,
            s.ack,
            s.payload_len,
            s.window
        );
        if r.is_err() {
            // Closed pipe (`| head`): stop quietly.
            return;
        }
    }
    let _ = out.flush();
    let stats = stream.into_stats();
    match serde_json::to_string_pretty(&stats) {
        Ok(json) => eprintln!("{json}"),
        Err(e) => eprintln!("stats: {e}"),
    }
}
