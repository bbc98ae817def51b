//! Segments of an HTTP conversation through the reassembler into the HTTP parser, the way
//! the flow layer uses them. The input is
//! `[segment count] [client ISN] [server ISN] [split: 2 bytes] [cover] [segments: 4 bytes each] [payload…]`:
//! the payload, cut at `split`, is what the client and the server sent; each segment is a
//! direction, a stream offset and a length, possibly a copy with different bytes, possibly
//! cut by the snaplen, possibly an ACK that moves past what was captured
//! (`Reassembler::skip_to`); `cover` then optionally sends each whole stream again in
//! segments of one size, forwards or backwards. ISNs sit just below 2^32 so streams wrap.
//!
//! Checks: every delivery starts where the last one ended (never overlapping, never out of
//! order, never empty); when no copy lied, a delivered byte is the sender's byte; and when
//! nothing conflicted (no lying copies, no snaplen cuts, no skipped bytes, no hole given up
//! to the budget), the segments sent in stream order give the same stream and the same
//! HTTP conversation as sent shuffled.
#![no_main]

use closewait_core::http::{HttpConversation, HttpParser};
use closewait_core::model::Side;
use closewait_core::reassembly::{Delivery, Limits, Reassembler};
use libfuzzer_sys::fuzz_target;

/// One segment as the fuzzer chose it.
#[derive(Clone, Copy)]
struct Segment {
    server: bool,
    offset: usize,
    len: usize,
    lying: bool,
    cut: bool,
    /// Not data: the other side ACKs everything before `offset`.
    ack: bool,
}

/// One direction: the bytes the sender sent, its reassembler, and what came out.
struct Direction<'a> {
    sent: &'a [u8],
    isn: u32,
    reassembler: Reassembler,
    delivered: Vec<Delivery>,
    honest: bool,
}

impl<'a> Direction<'a> {
    fn new(sent: &'a [u8], isn: u32) -> Self {
        Direction {
            sent,
            isn,
            reassembler: Reassembler::new(isn, Limits::default()),
            delivered: Vec::new(),
            honest: true,
        }
    }

    fn push(&mut self, segment: Segment) {
        let seq = self.isn.wrapping_add(segment.offset as u32);
        if segment.ack {
            self.reassembler.skip_to(seq);
            return;
        }
        let mut bytes = self.sent[segment.offset..segment.offset + segment.len].to_vec();
        if segment.lying {
            self.honest = false;
            bytes.iter_mut().for_each(|b| *b = !*b);
        }
        let captured = if segment.cut {
            segment.len / 2
        } else {
            segment.len
        };
        self.reassembler
            .push(seq, &bytes[..captured], segment.len as u32);
    }

    /// Takes what is ready, checking it continues the stream; returns the new deliveries.
    fn drain(&mut self) -> &[Delivery] {
        let before = self.delivered.len();
        let mut at = self.delivered.last().map_or(0, Delivery::end);
        for delivery in self.reassembler.deliveries() {
            assert_eq!(delivery.offset(), at, "contiguous, in order, no overlap");
            assert!(!delivery.is_empty());
            if let (true, Delivery::Data { offset, bytes }) = (self.honest, &delivery) {
                let offset = *offset as usize;
                assert_eq!(
                    bytes.as_slice(),
                    &self.sent[offset..offset + bytes.len()],
                    "a delivered byte is the sender's"
                );
            }
            at = delivery.end();
            self.delivered.push(delivery);
        }
        assert_eq!(at, self.reassembler.next_offset());
        &self.delivered[before..]
    }
}

fn feed(parser: &mut HttpParser, side: Side, deliveries: &[Delivery]) {
    for delivery in deliveries {
        match delivery {
            Delivery::Data { bytes, .. } => parser.feed(side, bytes),
            Delivery::Gap { len, .. } => parser.gap(side, *len),
        }
    }
}

/// The stream as runs: adjacent data joined, adjacent gaps joined.
fn runs(deliveries: &[Delivery]) -> Vec<Delivery> {
    let mut out: Vec<Delivery> = Vec::new();
    for delivery in deliveries.iter().cloned() {
        match (out.last_mut(), delivery) {
            (Some(Delivery::Data { bytes, .. }), Delivery::Data { bytes: more, .. }) => {
                bytes.extend_from_slice(&more)
            }
            (Some(Delivery::Gap { len, .. }), Delivery::Gap { len: more, .. }) => *len += more,
            (_, delivery) => out.push(delivery),
        }
    }
    out
}

/// Both directions' streams through one parser, the client's first.
fn conversation(client: &[Delivery], server: &[Delivery]) -> HttpConversation {
    let mut parser = HttpParser::new();
    feed(&mut parser, Side::Client, client);
    feed(&mut parser, Side::Server, server);
    parser.finish()
}

/// Sends `segments` through fresh reassemblers and finishes them.
fn reassemble<'a>(
    sent: [&'a [u8]; 2],
    isns: [u32; 2],
    segments: &[Segment],
    live: Option<&mut HttpParser>,
) -> [Direction<'a>; 2] {
    let mut directions = [
        Direction::new(sent[0], isns[0]),
        Direction::new(sent[1], isns[1]),
    ];
    let mut live = live;
    for segment in segments {
        let index = usize::from(segment.server);
        let direction = &mut directions[index];
        direction.push(*segment);
        let fresh = direction.drain();
        if let Some(parser) = live.as_deref_mut() {
            let side = if segment.server {
                Side::Server
            } else {
                Side::Client
            };
            feed(parser, side, fresh);
        }
    }
    for direction in &mut directions {
        direction.reassembler.finish(None);
        direction.drain();
    }
    directions
}

fuzz_target!(|data: &[u8]| {
    let Some((&[count, isn_client, isn_server, split_lo, split_hi, cover], rest)) =
        data.split_first_chunk::<6>()
    else {
        return;
    };
    let count = usize::from(count).min(rest.len() / 4);
    let (ops, payload) = rest.split_at(count * 4);
    let split = usize::from(u16::from_le_bytes([split_lo, split_hi])) % (payload.len() + 1);
    let sent = [&payload[..split], &payload[split..]];
    let isns = [isn_client, isn_server].map(|b| u32::MAX - u32::from(b) * 16);

    let mut segments = Vec::new();
    for op in ops.chunks_exact(4) {
        let [flags, a, b, len] = [op[0], op[1], op[2], op[3]];
        let server = flags & 1 != 0;
        let stream = sent[usize::from(server)];
        let offset = usize::from(u16::from_le_bytes([a, b])) % (stream.len() + 1);
        let len = usize::from(len) * if flags & 8 != 0 { 16 } else { 1 };
        segments.push(Segment {
            server,
            offset,
            len: len.min(stream.len() - offset),
            lying: flags & 2 != 0,
            cut: flags & 4 != 0,
            ack: flags & 0x70 == 0x70,
        });
    }
    if cover != 0 {
        let size = usize::from(cover >> 1) * 16 + 1;
        for (index, stream) in sent.iter().enumerate() {
            let mut offsets: Vec<usize> = (0..stream.len()).step_by(size).collect();
            if cover & 1 != 0 {
                offsets.reverse();
            }
            segments.extend(offsets.into_iter().map(|offset| Segment {
                server: index == 1,
                offset,
                len: size.min(stream.len() - offset),
                lying: false,
                cut: false,
                ack: false,
            }));
        }
    }

    let mut live = HttpParser::new();
    let shuffled = reassemble(sent, isns, &segments, Some(&mut live));
    let live = live.finish();
    let sent_len = |index: usize| shuffled[index].reassembler.stats().delivered_bytes;
    assert!(live.requests * 12 <= sent_len(0) && live.responses * 12 <= sent_len(1));

    let conflicted = segments.iter().any(|s| s.lying || s.cut || s.ack)
        || shuffled
            .iter()
            .any(|d| d.reassembler.stats().holes_given_up > 0);
    if conflicted {
        return;
    }
    let mut in_order = segments.clone();
    in_order.sort_by_key(|s| (s.server, s.offset));
    let ordered = reassemble(sent, isns, &in_order, None);
    for (a, b) in shuffled.iter().zip(&ordered) {
        assert_eq!(runs(&a.delivered), runs(&b.delivered), "same stream");
    }
    assert_eq!(
        conversation(&shuffled[0].delivered, &shuffled[1].delivered),
        conversation(&ordered[0].delivered, &ordered[1].delivered),
        "same conversation in order as shuffled"
    );
});
