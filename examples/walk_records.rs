//! The bare-walk baseline of `bench/compare`: reads a pcap or pcapng file in 1 MiB chunks
//! and walks its record headers (no decoding), printing the record count. Nothing can
//! analyse a capture faster than this loop reads it.
//!
//! ```text
//! cargo run --release --example walk_records -- capture.pcap
//! ```

use std::io::Read;

fn main() {
    let path = match std::env::args().nth(1) {
        Some(p) => p,
        None => {
            eprintln!("usage: walk_records FILE");
            std::process::exit(2);
        }
    };
    match walk(&path) {
        Ok((records, bytes)) => println!("{records} records, {bytes} bytes"),
        Err(e) => {
            eprintln!("walk_records: {path}: {e}");
            std::process::exit(1);
        }
    }
}

/// Returns (records, bytes) of a pcap or pcapng file.
fn walk(path: &str) -> std::io::Result<(u64, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut end) = (0usize, 0usize);
    let mut total = 0u64;
    let mut fill = |buf: &mut Vec<u8>, start: &mut usize, end: &mut usize, need: usize| {
        if *end - *start >= need {
            return Ok(true);
        }
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
        if buf.len() < need {
            buf.resize(need, 0);
        }
        while *end < need {
            let n = f.read(&mut buf[*end..])?;
            if n == 0 {
                return Ok(false);
            }
            total += n as u64;
            *end += n;
        }
        Ok::<bool, std::io::Error>(true)
    };
    if !fill(&mut buf, &mut start, &mut end, 24)? {
        return Ok((0, 0));
    }
    let magic = [buf[0], buf[1], buf[2], buf[3]];
    let pcapng = magic == [0x0a, 0x0d, 0x0d, 0x0a];
    let big = matches!(magic, [0xa1, 0xb2, ..] | [0x1a, 0x2b, 0x3c, 0x4d]);
    let u32_at = |b: &[u8], at: usize, big: bool| {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    };
    let mut records = 0u64;
    if pcapng {
        let big = buf[8..12] == [0x1a, 0x2b, 0x3c, 0x4d];
        while fill(&mut buf, &mut start, &mut end, 8)? {
            let len = u32_at(&buf, start + 4, big) as usize;
            if len < 12 || !fill(&mut buf, &mut start, &mut end, len)? {
                break;
            }
            let kind = u32_at(&buf, start, big);
            records += u64::from(kind == 6 || kind == 3);
            start += len;
        }
    } else {
        start = 24;
        while fill(&mut buf, &mut start, &mut end, 16)? {
            let caplen = u32_at(&buf, start + 8, big) as usize;
            if !fill(&mut buf, &mut start, &mut end, 16 + caplen)? {
                break;
            }
            records += 1;
            start += 16 + caplen;
        }
    }
    Ok((records, total))
}
