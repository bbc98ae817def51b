//! The HTTP/1.x parser on arbitrary bytes in arbitrary chunks, both directions interleaved,
//! with holes. The input is `[op count] [ops…] [payload…]`: each op picks a direction and
//! what to do with the payload's next bytes (feed a chunk of a chosen size, feed one chunk
//! many times over, feed a hostile fragment from a fixed list, or report missing bytes of
//! a chosen length); when the ops run out the rest of the payload goes to the client.
//! Repeated chunks and fragments reach what a 64 KiB input cannot spell out: heads far
//! past `MAX_HEAD_BYTES`, endless chunk-size lines, bodies of 2^64 − 1 bytes.
//!
//! Checks after every op: nothing panics, the live heap stays bounded (a counting
//! allocator: the parser holds at most one head per direction, never a body), and the
//! counts are ones the bytes could have produced (a head takes at least
//! [`MIN_HEAD_BYTES`] bytes, every response has a status, a direction gives up once).
#![no_main]

use closewait_core::http::{HttpConversation, HttpParser, MAX_HEAD_BYTES, MAX_TARGET_BYTES};
use closewait_core::model::Side;
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live now.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What the parser may hold between calls: a head buffer per direction (a growing vector
/// may reach twice what it holds), the pipelining queue (4096 one-byte entries), at most
/// 900 distinct status codes in a map, and a few cut request lines.
const MEMORY_BOUND: usize = 2 * 2 * MAX_HEAD_BYTES + 16 * 1024 + 64 * 1024 + 4 * 1024;

/// The shortest head `httparse` completes: `HTTP/1.1 200\n\n` or `A / HTTP/1.1\n\n`
/// (14 bytes); 12 leaves room for leniencies.
const MIN_HEAD_BYTES: u64 = 12;

/// Chunk sizes an op may pick: around TCP segment sizes and the head cap.
const SIZES: [usize; 16] = [
    1, 2, 3, 7, 16, 64, 100, 536, 1448, 1460, 4096, 8192, 16383, 16384, 16385, 65535,
];

/// How many times a repeated chunk is fed.
const REPEATS: [u32; 8] = [2, 10, 100, 1_000, 4_100, 5_000, 20_000, 70_000];

/// Lengths of missing runs: empty, tiny, body-sized, past any body, absurd.
const GAPS: [u64; 8] = [0, 1, 2, 100, 1460, 1 << 32, u64::MAX / 2, u64::MAX];

/// Hostile fragments: framing an attacker or a broken peer writes.
const FRAGMENTS: [&[u8]; 32] = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HEAD / HTTP/1.1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
    b"CONNECT example:443 HTTP/1.1\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\n",
    b"POST /orders HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"Content-Length: 18446744073709551615\r\n",
    b"Content-Length: 99999999999999999999999\r\n",
    b"Content-Length: 5, 6\r\n",
    b"Content-Length: -1\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Transfer-Encoding: chunked, gzip\r\n",
    b"Connection: close\r\n",
    b"Keep-Alive: timeout=5, max=100\r\n",
    b"Keep-Alive: timeout=99999999999999999999999\r\n",
    b"ffffffffffffffff\r\n",
    b"fffffffffffffffffffffffffffffff\r\n",
    b"5;ext=\"x\"\r\nhello\r\n",
    b"0\r\n\r\n",
    b"0\r\nTrailer: x\r\n\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
];

fn check(conversation: &HttpConversation, fed: [u64; 2]) {
    let [client_bytes, server_bytes] = fed;
    assert!(conversation.requests.saturating_mul(MIN_HEAD_BYTES) <= client_bytes);
    assert!(conversation.responses.saturating_mul(MIN_HEAD_BYTES) <= server_bytes);
    assert_eq!(
        conversation.status_codes.values().sum::<u64>(),
        conversation.responses
    );
    assert_eq!(
        conversation.first_request.is_some(),
        conversation.requests > 0
    );
    assert_eq!(
        conversation.last_request.is_some(),
        conversation.requests > 0
    );
    if let Some(unanswered) = conversation.unanswered_requests {
        assert!(unanswered <= conversation.requests);
        assert_eq!(
            conversation.last_unanswered_request.is_some(),
            unanswered > 0
        );
    }
    for line in conversation
        .first_request
        .iter()
        .chain(&conversation.last_request)
    {
        assert!(line.target.len() <= MAX_TARGET_BYTES + '…'.len_utf8());
    }
    // Responses that stopped being read leave the pairing of requests unknown.
    if conversation.gave_up.server.is_some() {
        assert_eq!(conversation.unanswered_requests, None);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&op_count, rest)) = data.split_first() else {
        return;
    };
    let op_count = usize::from(op_count).min(rest.len());
    let (ops, mut payload) = rest.split_at(op_count);
    let baseline = LIVE.load(Ordering::Relaxed);
    let mut parser = HttpParser::new();
    let mut fed = [0u64; 2];
    let feed =
        |parser: &mut HttpParser, fed: &mut [u64; 2], side: Side, bytes: &[u8], times: u32| {
            for _ in 0..times {
                parser.feed(side, bytes);
            }
            fed[usize::from(side == Side::Server)] += bytes.len() as u64 * u64::from(times);
        };
    for &op in ops {
        let side = if op & 1 == 0 {
            Side::Client
        } else {
            Side::Server
        };
        let choice = usize::from(op >> 3);
        match (op >> 1) & 3 {
            0 => {
                let (chunk, rest) = payload.split_at(SIZES[choice % 16].min(payload.len()));
                payload = rest;
                feed(&mut parser, &mut fed, side, chunk, 1);
            }
            1 => {
                let (chunk, rest) = payload.split_at((1 + choice % 4).min(payload.len()));
                payload = rest;
                // A one-to-four-byte chunk many times: a flood of `a`, `f`, NUL or CRs.
                feed(&mut parser, &mut fed, side, chunk, REPEATS[choice / 4 % 8]);
            }
            2 => feed(&mut parser, &mut fed, side, FRAGMENTS[choice % 32], 1),
            _ => parser.gap(side, GAPS[choice % 8]),
        }
        let live = LIVE.load(Ordering::Relaxed).saturating_sub(baseline);
        assert!(live <= MEMORY_BOUND, "parser holds {live} bytes");
        check(&parser.conversation(), fed);
    }
    feed(&mut parser, &mut fed, Side::Client, payload, 1);
    check(&parser.finish(), fed);
});
