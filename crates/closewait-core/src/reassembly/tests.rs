use super::*;

const ISN: u32 = 1000;

fn generous() -> Limits {
    Limits {
        max_buffered: 1 << 20,
        max_stream: u64::MAX,
    }
}

/// Drains `r` and checks the deliveries are contiguous from `from`, non-empty.
fn drain_checked(r: &mut Reassembler, from: u64) -> Vec<Delivery> {
    let out: Vec<Delivery> = r.deliveries().collect();
    let mut at = from;
    for d in &out {
        assert_eq!(d.offset(), at, "deliveries contiguous: {out:?}");
        assert!(!d.is_empty(), "no empty delivery: {out:?}");
        at = d.end();
    }
    assert_eq!(at, r.next_offset());
    out
}

/// The stream as text, gaps written `[gap N]`.
fn text(deliveries: &[Delivery]) -> String {
    deliveries
        .iter()
        .map(|d| match d {
            Delivery::Data { bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
            Delivery::Gap { len, .. } => format!("[gap {len}]"),
        })
        .collect()
}

/// Pushes complete segments (captured = wire) at offsets relative to `ISN`.
fn push_all(r: &mut Reassembler, segments: &[(u32, &str)]) {
    for (offset, s) in segments {
        r.push(ISN.wrapping_add(*offset), s.as_bytes(), s.len() as u32);
    }
}

fn reassembled(segments: &[(u32, &str)]) -> (String, ReassemblyStats) {
    let mut r = Reassembler::new(ISN, generous());
    push_all(&mut r, segments);
    r.finish(None);
    let out = drain_checked(&mut r, 0);
    (text(&out), r.stats())
}

#[test]
fn in_order_segments_are_delivered_as_they_come() {
    let mut r = Reassembler::new(ISN, generous());
    r.push(ISN, b"GET / ", 6);
    assert_eq!(text(&drain_checked(&mut r, 0)), "GET / ");
    r.push(ISN + 6, b"HTTP/1.1", 8);
    let out = drain_checked(&mut r, 6);
    assert_eq!(
        out,
        vec![Delivery::Data {
            offset: 6,
            bytes: b"HTTP/1.1".to_vec()
        }]
    );
    assert_eq!(r.stats().delivered_bytes, 14);
    assert_eq!(r.buffered(), 0);
}

#[test]
fn retransmission_of_delivered_bytes_is_dropped() {
    let (stream, stats) =
        reassembled(&[(0, "abcd"), (0, "abcd"), (4, "ef"), (2, "cdef"), (4, "ef")]);
    assert_eq!(stream, "abcdef");
    assert_eq!(stats.duplicate_bytes, 4 + 4 + 2);
    assert_eq!(
        stats.conflicting_bytes, 0,
        "delivered bytes are not kept to compare"
    );
}

#[test]
fn segment_straddling_the_next_byte_delivers_only_its_new_part() {
    let (stream, stats) = reassembled(&[(0, "abcd"), (2, "cdefg")]);
    assert_eq!(stream, "abcdefg");
    assert_eq!(stats.duplicate_bytes, 2);
}

#[test]
fn overlap_with_the_start_of_a_held_piece() {
    // held [4, 8) "efgh"; new [2, 6) "cdef" overlaps its start.
    let (stream, stats) = reassembled(&[(4, "efgh"), (2, "cdef"), (0, "ab")]);
    assert_eq!(stream, "abcdefgh");
    assert_eq!(stats.duplicate_bytes, 2);
}

#[test]
fn overlap_with_the_end_of_a_held_piece() {
    let (stream, stats) = reassembled(&[(2, "cdef"), (4, "efgh"), (0, "ab")]);
    assert_eq!(stream, "abcdefgh");
    assert_eq!(stats.duplicate_bytes, 2);
}

#[test]
fn segment_inside_a_held_piece() {
    let (stream, stats) = reassembled(&[(2, "cdefgh"), (3, "def"), (0, "ab")]);
    assert_eq!(stream, "abcdefgh");
    assert_eq!(stats.duplicate_bytes, 3);
}

#[test]
fn segment_covering_several_held_pieces_fills_between_them() {
    let (stream, stats) = reassembled(&[(3, "d"), (6, "gh"), (2, "cdefghij"), (0, "ab")]);
    assert_eq!(stream, "abcdefghij");
    assert_eq!(stats.duplicate_bytes, 3);
    assert_eq!(stats.delivered_bytes, 10);
}

#[test]
fn conflicting_overlap_first_copy_wins_and_is_counted() {
    // Like Linux, the bytes that arrived first are the stream; the differing later copy is
    // counted so a caller can say the capture shows two versions of the stream.
    let (stream, stats) = reassembled(&[(4, "EFGH"), (2, "cdeF"), (0, "ab")]);
    assert_eq!(stream, "abcdEFGH");
    assert_eq!(stats.duplicate_bytes, 2);
    assert_eq!(stats.conflicting_bytes, 1, "e≠E; F is the same");
}

#[test]
fn out_of_order_is_held_until_the_hole_fills() {
    let mut r = Reassembler::new(ISN, generous());
    push_all(&mut r, &[(6, "world"), (11, "!")]);
    assert!(drain_checked(&mut r, 0).is_empty());
    assert_eq!(r.buffered(), 5 + 1 + 2 * PIECE_OVERHEAD);
    push_all(&mut r, &[(0, "hello ")]);
    assert_eq!(text(&drain_checked(&mut r, 0)), "hello world!");
    assert_eq!(r.buffered(), 0);
    assert_eq!(r.stats().gap_bytes, 0);
}

#[test]
fn sequence_numbers_wrap_around_two_to_the_32() {
    let first = u32::MAX - 3;
    let mut r = Reassembler::new(first, generous());
    // "abcd" sits at the top of the sequence space, "efgh" at 0 after the wrap, and the
    // out-of-order "ij" straddles nothing but arrives first.
    r.push(4, b"ij", 2);
    r.push(first, b"abcdef", 6);
    r.push(2, b"gh", 2);
    r.push(first.wrapping_sub(2), b"xxab", 4); // behind the next byte: duplicates only
    r.finish(None);
    assert_eq!(text(&drain_checked(&mut r, 0)), "abcdefghij");
    assert_eq!(r.stats().duplicate_bytes, 4);
}

#[test]
fn stream_offsets_keep_counting_past_four_gibibytes() {
    let mut r = Reassembler::new(ISN, generous());
    // Captured with a zero snaplen for the payload: each segment is a gap, cheap to push.
    let step = 60_000u32;
    let mut seq = ISN;
    let mut offset = 0u64;
    while offset <= 1 << 32 {
        r.push(seq, &[], step);
        seq = seq.wrapping_add(step);
        offset += u64::from(step);
    }
    r.push(seq, b"late", 4);
    let out = drain_checked(&mut r, 0);
    assert_eq!(
        out.len(),
        2,
        "the gaps merge into one: {:?}",
        &out[..2.min(out.len())]
    );
    assert_eq!(
        out[1],
        Delivery::Data {
            offset,
            bytes: b"late".to_vec()
        }
    );
    assert!(offset > 1 << 32);
}

#[test]
fn segments_before_the_stream_start_and_empty_segments_are_ignored() {
    let mut r = Reassembler::new(ISN, generous());
    r.push(ISN - 10, b"0123456789", 10); // all before the first data byte (a SYN's seq, say)
    r.push(ISN + 5, b"", 0);
    r.push(ISN, b"", 0);
    assert!(drain_checked(&mut r, 0).is_empty());
    assert_eq!(r.buffered(), 0);
    r.push(ISN - 2, b"89ab", 4);
    assert_eq!(text(&drain_checked(&mut r, 0)), "ab");
    assert_eq!(r.stats().duplicate_bytes, 12);
}

#[test]
fn snaplen_cut_tail_becomes_a_gap() {
    let mut r = Reassembler::new(ISN, generous());
    r.push(ISN, b"GET /ver", 20); // 12 bytes cut off
    r.push(ISN + 20, b"next", 4);
    assert_eq!(text(&drain_checked(&mut r, 0)), "GET /ver[gap 12]next");
    assert_eq!(r.stats().gap_bytes, 12);
}

#[test]
fn snaplen_cut_tail_out_of_order_becomes_a_gap_when_reached() {
    let (stream, stats) = {
        let mut r = Reassembler::new(ISN, generous());
        r.push(ISN + 4, b"ef", 6); // [4, 6) seen, [6, 10) cut
        r.push(ISN + 10, b"k", 1);
        r.push(ISN, b"abcd", 4);
        (text(&drain_checked(&mut r, 0)), r.stats())
    };
    assert_eq!(stream, "abcdef[gap 4]k");
    assert_eq!(stats.gap_bytes, 4);
}

#[test]
fn link_padding_past_the_wire_length_is_ignored() {
    let mut r = Reassembler::new(ISN, generous());
    r.push(ISN, b"ab\0\0\0\0", 2);
    assert_eq!(text(&drain_checked(&mut r, 0)), "ab");
}

#[test]
fn hole_past_the_budget_becomes_a_gap() {
    let limits = Limits {
        max_buffered: 2 * (100 + PIECE_OVERHEAD),
        max_stream: u64::MAX,
    };
    let mut r = Reassembler::new(ISN, limits);
    let piece = [b'x'; 100];
    r.push(ISN + 10, &piece, 100);
    r.push(ISN + 110, &piece, 100);
    assert!(drain_checked(&mut r, 0).is_empty(), "two pieces fit");
    r.push(ISN + 210, &piece, 100); // the third does not: the hole [0, 10) is given up
    let out = drain_checked(&mut r, 0);
    assert_eq!(out[0], Delivery::Gap { offset: 0, len: 10 });
    assert_eq!(r.next_offset(), 310);
    assert_eq!(r.buffered(), 0);
    assert_eq!(r.stats().holes_given_up, 1);
    r.push(ISN, b"too late", 8);
    assert!(drain_checked(&mut r, 310).is_empty());
}

#[test]
fn finishing_with_a_hole_delivers_it_as_a_gap() {
    let mut r = Reassembler::new(ISN, generous());
    push_all(&mut r, &[(0, "ab"), (5, "fg")]);
    r.finish(Some(ISN + 10)); // the FIN's seq: bytes [7, 10) were never seen
    assert_eq!(text(&drain_checked(&mut r, 0)), "ab[gap 3]fg[gap 3]");
}

#[test]
fn finish_at_a_fin_already_reached_adds_nothing() {
    let mut r = Reassembler::new(ISN, generous());
    push_all(&mut r, &[(0, "ab")]);
    r.finish(Some(ISN + 2));
    r.finish(Some(ISN + 1)); // a FIN before the stream end (a bogus one) changes nothing
    assert_eq!(text(&drain_checked(&mut r, 0)), "ab");
}

#[test]
fn past_max_stream_bytes_are_only_counted() {
    let limits = Limits {
        max_buffered: 1024,
        max_stream: 6,
    };
    let mut r = Reassembler::new(ISN, limits);
    push_all(
        &mut r,
        &[(0, "abcd"), (4, "efgh"), (20, "later"), (8, "ij")],
    );
    r.finish(Some(ISN + 100));
    assert_eq!(text(&drain_checked(&mut r, 0)), "abcdef");
    assert_eq!(r.stats().beyond_limit_bytes, 2 + 5 + 2 + 94);
    assert_eq!(r.buffered(), 0);
}

#[test]
fn hostile_tiny_out_of_order_segments_stay_within_the_caps() {
    let limits = Limits::default();
    let mut r = Reassembler::new(ISN, limits);
    let mut delivered = 0u64;
    // 100k one-byte segments, each one byte past a hole, never filling any: every held piece
    // costs its overhead, so the budget gives holes up long before memory grows.
    for i in 0..100_000u32 {
        r.push(ISN.wrapping_add(1 + 2 * i), b"x", 1);
        assert!(r.buffered() <= limits.max_buffered);
        delivered += r.deliveries().map(|d| d.len()).sum::<u64>();
    }
    assert!(r.stats().peak_buffered <= limits.max_buffered);
    assert!(r.stats().holes_given_up > 0);
    r.finish(None);
    delivered += r.deliveries().map(|d| d.len()).sum::<u64>();
    assert_eq!(delivered, r.next_offset());
    assert!(r.next_offset() <= limits.max_stream);
    assert_eq!(
        r.stats().delivered_bytes + r.stats().beyond_limit_bytes,
        100_000,
        "every byte is delivered or counted past the limit"
    );
}

/// xorshift64*: a seeded generator for the property test (no crate needed).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random stream cut into random segments, sent twice with different cuts (retransmission
/// that re-segments), with extra duplicates, shuffled within a bounded distance.
fn scrambled_segments(rng: &mut XorShift, stream: &[u8]) -> Vec<(u64, u64)> {
    let mut segments = Vec::new();
    for _ in 0..2 {
        let mut at = 0u64;
        while at < stream.len() as u64 {
            let len = (1 + rng.below(300)).min(stream.len() as u64 - at);
            segments.push((at, len));
            if rng.below(8) == 0 {
                segments.push((at, len));
            }
            at += len;
        }
    }
    // Shuffle with displacement: swap each segment with one up to 20 places later.
    for i in 0..segments.len() {
        let j = (i + rng.below(20) as usize).min(segments.len() - 1);
        segments.swap(i, j);
    }
    segments
}

#[test]
fn property_scrambled_segments_reassemble_to_the_original_stream() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..200 {
        let len = 1 + rng.below(20_000) as usize;
        let stream: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // First data seq anywhere, often just below the wrap.
        let first = if round % 2 == 0 {
            u32::MAX - rng.below(10_000) as u32
        } else {
            rng.next() as u32
        };
        let mut r = Reassembler::new(first, generous());
        let mut got = Vec::new();
        for (offset, seg_len) in scrambled_segments(&mut rng, &stream) {
            let bytes = &stream[offset as usize..(offset + seg_len) as usize];
            r.push(first.wrapping_add(offset as u32), bytes, seg_len as u32);
            for d in drain_checked(&mut r, got.len() as u64) {
                match d {
                    Delivery::Data { bytes, .. } => got.extend_from_slice(&bytes),
                    Delivery::Gap { .. } => panic!("round {round}: nothing was missing"),
                }
            }
        }
        r.finish(Some(first.wrapping_add(len as u32)));
        assert!(
            r.deliveries().next().is_none(),
            "round {round}: all delivered before finish"
        );
        assert_eq!(got, stream, "round {round}");
        assert_eq!(r.stats().conflicting_bytes, 0);
        assert_eq!(r.buffered(), 0);
    }
}

#[test]
fn property_under_a_small_budget_delivered_bytes_are_never_wrong() {
    // With a budget too small to wait for every hole, some bytes become gaps, but every byte
    // delivered as data is the sender's byte at that offset.
    let mut rng = XorShift(42);
    for round in 0..100 {
        let len = 1 + rng.below(20_000) as usize;
        let stream: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let first = rng.next() as u32;
        let limits = Limits {
            max_buffered: 500 + rng.below(3000) as usize,
            max_stream: rng.below(25_000),
        };
        let mut r = Reassembler::new(first, limits);
        let mut at = 0u64;
        for (offset, seg_len) in scrambled_segments(&mut rng, &stream) {
            let bytes = &stream[offset as usize..(offset + seg_len) as usize];
            r.push(first.wrapping_add(offset as u32), bytes, seg_len as u32);
            assert!(r.buffered() <= limits.max_buffered, "round {round}");
            for d in drain_checked(&mut r, at) {
                if let Delivery::Data { offset, bytes } = &d {
                    let o = *offset as usize;
                    assert_eq!(bytes[..], stream[o..o + bytes.len()], "round {round}");
                }
                at = d.end();
            }
        }
        r.finish(Some(first.wrapping_add(len as u32)));
        drain_checked(&mut r, at);
        assert_eq!(
            r.next_offset(),
            (len as u64).min(limits.max_stream),
            "round {round}"
        );
    }
}

// --- skip_to: the peer ACKed bytes the capture never saw ---

#[test]
fn an_ack_past_a_hole_turns_it_into_a_gap_and_releases_what_was_held() {
    let mut r = Reassembler::new(ISN, generous());
    push_all(&mut r, &[(0, "ab"), (5, "fg"), (9, "jk")]);
    assert_eq!(text(&drain_checked(&mut r, 0)), "ab");
    // The receiver has everything before offset 7: the hole at 2..5 is lost for good; the
    // piece at 9 stays held, its hole (7..9) still fillable.
    r.skip_to(ISN + 7);
    assert_eq!(text(&drain_checked(&mut r, 2)), "[gap 3]fg");
    r.push(ISN + 7, b"hi", 2);
    assert_eq!(text(&drain_checked(&mut r, 7)), "hijk");
    assert_eq!(r.stats().gap_bytes, 3);
}

#[test]
fn an_ack_past_everything_captured_ends_the_stream_in_a_gap_up_to_it() {
    let mut r = Reassembler::new(ISN, generous());
    push_all(&mut r, &[(0, "abc"), (6, "ghij")]);
    r.skip_to(ISN + 14);
    assert_eq!(text(&drain_checked(&mut r, 0)), "abc[gap 3]ghij[gap 4]");
    assert_eq!(r.next_offset(), 14);
    assert_eq!(r.buffered(), 0);
    // Bytes the ACK covered arrive late: duplicates of what was given up, not data.
    r.push(ISN + 10, b"klmn", 4);
    assert!(drain_checked(&mut r, 14).is_empty());
    assert_eq!(r.stats().duplicate_bytes, 4);
}

#[test]
fn a_piece_reaching_past_the_ack_is_delivered_whole() {
    let mut r = Reassembler::new(ISN, generous());
    push_all(&mut r, &[(4, "efgh")]);
    r.skip_to(ISN + 6);
    assert_eq!(text(&drain_checked(&mut r, 0)), "[gap 4]efgh");
    assert_eq!(r.next_offset(), 8);
}

#[test]
fn an_old_or_current_ack_changes_nothing() {
    let mut r = Reassembler::new(ISN, generous());
    push_all(&mut r, &[(0, "abcd"), (8, "ij")]);
    drain_checked(&mut r, 0);
    for ack in [ISN, ISN + 2, ISN + 4, ISN.wrapping_sub(1 << 30)] {
        r.skip_to(ack);
        assert!(drain_checked(&mut r, 4).is_empty(), "ack {ack}");
    }
    assert_eq!(r.next_offset(), 4);
    assert_eq!(r.stats().gap_bytes, 0);
}

#[test]
fn skip_to_counts_modulo_two_to_the_32() {
    // The stream starts 3 bytes below the wrap; the ACK lands past it, at sequence 5.
    let first = u32::MAX - 2;
    let mut r = Reassembler::new(first, generous());
    r.push(first, b"ab", 2);
    r.push(2, b"fg", 2); // offsets 5..7, after the wrap
    r.skip_to(5); // offset 8
    assert_eq!(text(&drain_checked(&mut r, 0)), "ab[gap 3]fg[gap 1]");
    assert_eq!(r.next_offset(), 8);
    r.push(5, b"ijk", 3); // offset 8 follows on
    assert_eq!(text(&drain_checked(&mut r, 8)), "ijk");
}

#[test]
fn held_end_is_where_the_captured_stream_stops_modulo_two_to_the_32() {
    let first = u32::MAX - 2;
    let mut r = Reassembler::new(first, generous());
    r.push(first, b"ab", 2);
    assert_eq!(r.held_end_seq(), None, "in order: nothing held");
    r.push(2, b"fg", 2); // offsets 5..7, after the wrap
    r.push(first.wrapping_add(3), b"d", 1); // offset 3, inside the hole
    assert_eq!(r.held_end_seq(), Some(4));
    // A snaplen-cut tail is held as known missing: the capture saw it on the wire.
    r.push(6, b"x", 4); // offsets 9..13, one byte captured
    assert_eq!(r.held_end_seq(), Some(10));
    r.skip_to(10);
    assert_eq!(r.held_end_seq(), None);
}

#[test]
fn skip_to_stops_at_the_stream_limit() {
    let mut r = Reassembler::new(
        ISN,
        Limits {
            max_buffered: 1 << 20,
            max_stream: 10,
        },
    );
    push_all(&mut r, &[(0, "ab")]);
    r.skip_to(ISN + 1_000_000);
    r.skip_to(ISN + 2_000_000);
    assert_eq!(text(&drain_checked(&mut r, 0)), "ab[gap 8]");
    assert_eq!(r.next_offset(), 10);
}

/// The reason for `skip_to`: a response body the capture lost in the middle. Once the
/// client ACKs past it, the parser skips the rest of the body by its Content-Length and
/// reads the next response instead of waiting for the connection to end.
#[test]
fn a_parser_skips_a_lost_body_once_the_peer_acks_it() {
    use crate::http::HttpParser;
    use crate::model::Side;
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    let next = "HTTP/1.1 204 No Content\r\n\r\n";
    let mut r = Reassembler::new(ISN, generous());
    let mut parser = HttpParser::new();
    parser.feed(
        Side::Client,
        b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
    );
    let feed = |r: &mut Reassembler, parser: &mut HttpParser| {
        for delivery in r.deliveries() {
            match delivery {
                Delivery::Data { bytes, .. } => parser.feed(Side::Server, &bytes),
                Delivery::Gap { len, .. } => parser.gap(Side::Server, len),
            }
        }
    };
    // The head and the first 100 body bytes were captured; the other 900 were not.
    r.push(ISN, head.as_bytes(), head.len() as u32);
    r.push(ISN + head.len() as u32, &[b'x'; 100], 100);
    feed(&mut r, &mut parser);
    let after_body = ISN + head.len() as u32 + 1000;
    r.push(after_body, next.as_bytes(), next.len() as u32);
    feed(&mut r, &mut parser);
    assert_eq!(
        parser.conversation().responses,
        1,
        "the 204 waits behind the hole"
    );
    r.skip_to(after_body);
    feed(&mut r, &mut parser);
    let conversation = parser.finish();
    assert_eq!(conversation.responses, 2);
    assert_eq!(
        conversation.status_codes,
        crate::http::StatusCodes::from([(200, 1), (204, 1)])
    );
    assert_eq!(conversation.unanswered_requests, Some(0));
    assert_eq!(conversation.gave_up, Default::default());
}
