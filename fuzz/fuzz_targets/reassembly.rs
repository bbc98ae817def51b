//! The stream reassembler on arbitrary pushes: sequence numbers near the stream and far from
//! it, snaplen-cut segments, copies with different bytes, small caps so the budget and the
//! stream limit both bite. Checks what every caller relies on: the caps hold after every push,
//! deliveries are contiguous from offset 0 and never empty, and when every copy of a byte was
//! the same, a delivered byte is the sender's byte at that offset.
#![no_main]

use closewait_core::reassembly::{Delivery, Limits, Reassembler};
use libfuzzer_sys::fuzz_target;

/// The sender's byte at sequence number `seq`: what an honest copy carries.
fn sender_byte(seq: u32) -> u8 {
    (seq ^ (seq >> 8)) as u8
}

fn take<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = data.split_first_chunk::<N>()?;
    *data = rest;
    Some(*head)
}

fn check(r: &mut Reassembler, at: &mut u64, first: u32, honest: bool) {
    let limits = r.limits();
    assert!(r.buffered() <= limits.max_buffered);
    let next_offset = r.next_offset();
    for d in r.deliveries() {
        assert_eq!(d.offset(), *at, "contiguous");
        assert!(!d.is_empty(), "never empty");
        assert!(d.end() <= limits.max_stream, "nothing past max_stream");
        if let (true, Delivery::Data { offset, bytes }) = (honest, &d) {
            for (i, b) in bytes.iter().enumerate() {
                let seq = first.wrapping_add((offset + i as u64) as u32);
                assert_eq!(*b, sender_byte(seq), "a delivered byte is the sender's");
            }
        }
        *at = d.end();
    }
    assert_eq!(*at, next_offset);
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let Some([a, b, c, d, budget, limit]) = take::<6>(&mut data) else {
        return;
    };
    let first = u32::from_le_bytes([a, b, c, d]);
    let limits = Limits {
        max_buffered: 64 * usize::from(budget),
        max_stream: 256 * u64::from(limit),
    };
    let mut r = Reassembler::new(first, limits);
    let mut at = 0u64;
    let mut honest = true;
    let mut payload = Vec::new();
    while let Some([op, s0, s1, len, cut]) = take::<5>(&mut data) {
        // Mostly near the stream (relative to its start, a little before it too), sometimes
        // anywhere in the 2^32 sequence space.
        let seq = if op & 1 == 0 {
            first
                .wrapping_add(u32::from(u16::from_le_bytes([s0, s1])))
                .wrapping_sub(512)
        } else {
            u32::from_le_bytes([s0, s1, len, cut])
        };
        let wire_len = u32::from(len) * if op & 2 == 0 { 1 } else { 16 };
        let captured_len = if op & 4 == 0 {
            wire_len
        } else {
            wire_len.min(u32::from(cut))
        };
        let lying = op & 8 != 0;
        honest &= !lying;
        payload.clear();
        payload.extend((0..captured_len).map(|i| {
            let byte = sender_byte(seq.wrapping_add(i));
            if lying {
                !byte
            } else {
                byte
            }
        }));
        r.push(seq, &payload, wire_len);
        check(&mut r, &mut at, first, honest);
        if op & 0xf0 == 0xf0 {
            r.finish(Some(seq));
            check(&mut r, &mut at, first, honest);
            assert_eq!(r.buffered(), 0, "finish delivers everything held");
        }
    }
    r.finish(None);
    check(&mut r, &mut at, first, honest);
    let stats = r.stats();
    assert_eq!(stats.delivered_bytes + stats.gap_bytes, at);
    assert!(stats.peak_buffered <= limits.max_buffered);
});
