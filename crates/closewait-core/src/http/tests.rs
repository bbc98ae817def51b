use super::*;

/// One direction of a connection from a shipped capture, extracted with
/// `tshark -r captures/NN-….pcap -qz follow,tcp,raw,STREAM` (see tests/data/http/README.md).
fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/http")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn parse(client: &[u8], server: &[u8]) -> HttpConversation {
    let mut parser = HttpParser::new();
    parser.feed(Side::Client, client);
    parser.feed(Side::Server, server);
    parser.finish()
}

fn line(method: &str, target: &str, version: HttpVersion) -> RequestLine {
    RequestLine {
        method: method.into(),
        target: target.into(),
        version,
    }
}

fn statuses(pairs: &[(u16, u64)]) -> BTreeMap<u16, u64> {
    pairs.iter().copied().collect()
}

const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

// --- real bytes from the shipped captures ---

/// Capture 24, client port 35432: Tomcat answers one GET with `Keep-Alive: timeout=2`,
/// closes after 2 s idle, and HttpClient (keep-alive strategy off) writes a second GET
/// into the closed connection, answered by a RST.
#[test]
fn tomcat_late_write_second_get_unanswered() {
    let client = fixture("24-tomcat-late-write-client-to-server.bin");
    let server = fixture("24-tomcat-late-write-server-to-client.bin");
    let conversation = parse(&client, &server);
    let get = line("GET", "/?ms=300", HttpVersion::Http11);
    assert_eq!(conversation.requests, 2);
    assert_eq!(conversation.responses, 1);
    assert_eq!(conversation.status_codes, statuses(&[(200, 1)]));
    assert_eq!(conversation.version, Some(HttpVersion::Http11));
    assert_eq!(conversation.first_request, Some(get.clone()));
    assert_eq!(conversation.last_request, Some(get.clone()));
    assert_eq!(
        conversation.keep_alive,
        Some(KeepAliveAdvertised {
            timeout_s: Some(2),
            max: None
        })
    );
    assert!(!conversation.last_response_says_close);
    assert_eq!(conversation.last_response_persistent, Some(true));
    assert_eq!(conversation.unanswered_requests, Some(1));
    assert_eq!(
        conversation.last_unanswered_request,
        Some(UnansweredRequest {
            request: get,
            idempotent: true
        })
    );
    assert_eq!(conversation.gave_up, GiveUps::default());
}

/// The same bytes one at a time (a head split across many pushes) give the same summary.
#[test]
fn tomcat_late_write_byte_by_byte() {
    let client = fixture("24-tomcat-late-write-client-to-server.bin");
    let server = fixture("24-tomcat-late-write-server-to-client.bin");
    let mut parser = HttpParser::new();
    for byte in &client {
        parser.feed(Side::Client, std::slice::from_ref(byte));
    }
    for byte in &server {
        parser.feed(Side::Server, std::slice::from_ref(byte));
    }
    assert_eq!(parser.finish(), parse(&client, &server));
}

/// Capture 26, the first connection: nginx answers Python requests' GET /; nginx sends
/// no `Keep-Alive` header (its keepalive_timeout has no second parameter).
#[test]
fn nginx_requests_answered_no_keep_alive_header() {
    let client = fixture("26-nginx-requests-client-to-server.bin");
    let server = fixture("26-nginx-requests-server-to-client.bin");
    let conversation = parse(&client, &server);
    assert_eq!((conversation.requests, conversation.responses), (1, 1));
    assert_eq!(conversation.status_codes, statuses(&[(200, 1)]));
    assert_eq!(
        conversation.first_request,
        Some(line("GET", "/", HttpVersion::Http11))
    );
    assert_eq!(conversation.keep_alive, None);
    assert_eq!(conversation.last_response_persistent, Some(true));
    assert_eq!(conversation.unanswered_requests, Some(0));
    assert_eq!(conversation.last_unanswered_request, None);
    assert_eq!(conversation.gave_up, GiveUps::default());
}

// --- framing (RFC 9112 §6.3) ---

#[test]
fn content_length_body_skipped_then_next_response() {
    let client = [GET, GET].concat();
    let server = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    let conversation = parse(&client, server);
    assert_eq!(conversation.status_codes, statuses(&[(200, 1), (404, 1)]));
    assert_eq!(conversation.unanswered_requests, Some(0));
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let client = [GET, GET].concat();
    let server = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
        5;name=value;other=\"q\"\r\nhello\r\n\
        A\r\n0123456789\r\n\
        0;last\r\nExpires: never\r\nX-Checksum: 1\r\n\r\n\
        HTTP/1.1 204 No Content\r\n\r\n";
    let conversation = parse(&client, server);
    assert_eq!(conversation.status_codes, statuses(&[(200, 1), (204, 1)]));
    assert_eq!(conversation.gave_up, GiveUps::default());
}

#[test]
fn chunked_body_split_byte_by_byte() {
    let server = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    let mut parser = HttpParser::new();
    parser.feed(Side::Client, &[GET, GET].concat());
    for byte in server {
        parser.feed(Side::Server, &[*byte]);
    }
    let conversation = parser.finish();
    assert_eq!(conversation.status_codes, statuses(&[(200, 2)]));
    assert_eq!(conversation.unanswered_requests, Some(0));
}

#[test]
fn chunk_size_not_hex_gives_up_as_parse_error() {
    let server = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    let conversation = parse(GET, server);
    assert_eq!(conversation.gave_up.count(GiveUp::ParseError), 1);
    assert_eq!(conversation.unanswered_requests, None);
}

#[test]
fn head_and_304_with_content_length_have_no_body() {
    let client = b"HEAD /big HTTP/1.1\r\nHost: x\r\n\r\nGET /cached HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
    let server = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n\
        HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n\
        HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let conversation = parse(client, server);
    assert_eq!(conversation.status_codes, statuses(&[(200, 2), (304, 1)]));
    assert_eq!(conversation.unanswered_requests, Some(0));
    assert_eq!(conversation.gave_up, GiveUps::default());
}

#[test]
fn interim_100_continue_keeps_the_request_waiting() {
    let client = b"PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc";
    let server = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    let conversation = parse(client, server);
    assert_eq!(conversation.status_codes, statuses(&[(100, 1), (201, 1)]));
    assert_eq!(conversation.unanswered_requests, Some(0));
}

#[test]
fn response_without_length_reads_until_close() {
    let server = b"HTTP/1.0 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n\r\nmore body";
    let conversation = parse(b"GET / HTTP/1.0\r\n\r\n", server);
    assert_eq!(
        conversation.responses, 1,
        "the rest is body, not a response"
    );
    assert_eq!(conversation.last_response_persistent, Some(false));
}

#[test]
fn differing_content_lengths_give_up() {
    let server = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc";
    assert_eq!(parse(GET, server).gave_up.count(GiveUp::ParseError), 1);
    let same = b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc";
    assert_eq!(parse(GET, same).gave_up, GiveUps::default());
    let empty = b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n";
    assert_eq!(parse(GET, empty).gave_up.count(GiveUp::ParseError), 1);
}

#[test]
fn request_body_by_content_length_and_chunked() {
    let client = b"POST /orders HTTP/1.1\r\nContent-Length: 4\r\n\r\nGET \
        POST /orders HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nGET \r\n0\r\n\r\n\
        DELETE /orders/1 HTTP/1.1\r\n\r\n";
    let conversation = parse(client, b"");
    assert_eq!(conversation.requests, 3);
    assert_eq!(
        conversation.first_request,
        Some(line("POST", "/orders", HttpVersion::Http11))
    );
    assert_eq!(
        conversation.last_unanswered_request,
        Some(UnansweredRequest {
            request: line("DELETE", "/orders/1", HttpVersion::Http11),
            idempotent: true
        })
    );
    assert_eq!(conversation.unanswered_requests, Some(3));
}

#[test]
fn post_into_a_closed_connection_is_not_idempotent() {
    let client = [GET, b"POST /orders HTTP/1.1\r\nContent-Length: 0\r\n\r\n"].concat();
    let server = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let unanswered = parse(&client, server).last_unanswered_request.unwrap();
    assert_eq!(unanswered.request.method, "POST");
    assert!(!unanswered.idempotent);
}

// --- pipelining and persistence (RFC 9112 §9.3) ---

#[test]
fn pipelined_requests_paired_in_order() {
    let client = b"GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n";
    // The HEAD's response announces a length but has no body: the next bytes are /3's.
    let server = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1\
        HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n\
        HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3";
    let conversation = parse(client, server);
    assert_eq!((conversation.requests, conversation.responses), (3, 3));
    assert_eq!(
        conversation.last_request,
        Some(line("GET", "/3", HttpVersion::Http11))
    );
    assert_eq!(conversation.unanswered_requests, Some(0));
}

#[test]
fn http10_closes_by_default_keep_alive_persists() {
    let closes = parse(
        b"GET / HTTP/1.0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(closes.version, Some(HttpVersion::Http10));
    assert_eq!(closes.last_response_persistent, Some(false));
    assert!(
        !closes.last_response_says_close,
        "no header: the version's default"
    );
    let persists = parse(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(persists.last_response_persistent, Some(true));
    assert_eq!(
        persists.keep_alive,
        Some(KeepAliveAdvertised {
            timeout_s: Some(5),
            max: Some(100)
        })
    );
}

#[test]
fn connection_close_announced_on_the_last_response() {
    let client = [GET, b"GET /b HTTP/1.1\r\nConnection: close\r\n\r\n"].concat();
    let server = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nConnection: upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n";
    let conversation = parse(&client, server);
    assert!(conversation.last_request_says_close);
    assert!(conversation.last_response_says_close);
    assert_eq!(conversation.last_response_persistent, Some(false));
}

#[test]
fn keep_alive_parameters_read_leniently() {
    let mut advertised = KeepAliveAdvertised::default();
    read_keep_alive(" TimeOut = \"20\" ;MAX=7, junk, timeout=x", &mut advertised);
    assert_eq!(
        advertised,
        KeepAliveAdvertised {
            timeout_s: Some(20),
            max: Some(7)
        }
    );
}

#[test]
fn switching_protocols_stops_parsing_both_directions() {
    let client =
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello";
    let server = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi";
    let mut parser = HttpParser::new();
    let (head, frames) = client.split_at(client.len() - 7);
    parser.feed(Side::Client, head);
    parser.feed(Side::Server, server);
    parser.feed(Side::Client, frames);
    let conversation = parser.finish();
    assert!(conversation.switched_protocols);
    assert_eq!((conversation.requests, conversation.responses), (1, 1));
    assert_eq!(conversation.gave_up, GiveUps::default());
}

// --- gaps, hostile and foreign input ---

#[test]
fn gap_inside_a_body_is_skipped() {
    let mut parser = HttpParser::new();
    parser.feed(Side::Client, &[GET, GET].concat());
    parser.feed(
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab",
    );
    parser.gap(Side::Server, 6);
    parser.feed(
        Side::Server,
        b"ijHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let conversation = parser.finish();
    assert_eq!(conversation.status_codes, statuses(&[(200, 2)]));
    assert_eq!(conversation.gave_up, GiveUps::default());
}

#[test]
fn gap_longer_than_the_body_gives_up() {
    let mut parser = HttpParser::new();
    parser.feed(Side::Client, GET);
    parser.feed(
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab",
    );
    parser.gap(Side::Server, 3);
    parser.feed(
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let conversation = parser.finish();
    assert_eq!(conversation.gave_up.count(GiveUp::Gap), 1);
    assert_eq!(
        (conversation.gave_up.client, conversation.gave_up.server),
        (None, Some(GiveUp::Gap)),
        "the responses stopped being read, the requests did not"
    );
    assert_eq!(conversation.responses, 1, "nothing read after the gap");
    assert_eq!(conversation.unanswered_requests, None, "pairing unknown");
}

#[test]
fn gap_inside_a_head_gives_up_and_stays_silent() {
    let mut parser = HttpParser::new();
    parser.feed(Side::Client, b"GET /a HTTP/1.1\r\nHo");
    parser.gap(Side::Client, 10);
    parser.feed(Side::Client, GET);
    parser.gap(Side::Client, 10);
    let conversation = parser.finish();
    assert_eq!(
        conversation.gave_up.count(GiveUp::Gap),
        1,
        "counted once per direction"
    );
    assert_eq!(conversation.requests, 0);
}

#[test]
fn gap_in_a_chunk_is_skipped_but_not_in_its_size_line() {
    let mut parser = HttpParser::new();
    parser.feed(Side::Client, GET);
    parser.feed(
        Side::Server,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nab",
    );
    parser.gap(Side::Server, 6);
    parser.feed(Side::Server, b"\r\n0\r\n\r\n");
    assert_eq!(parser.conversation().gave_up, GiveUps::default());
    assert_eq!(parser.conversation().unanswered_requests, Some(0));
    parser.feed(Side::Client, GET);
    parser.feed(
        Side::Server,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1",
    );
    parser.gap(Side::Server, 2);
    assert_eq!(parser.finish().gave_up.count(GiveUp::Gap), 1);
}

#[test]
fn absurd_head_gives_up_without_growing() {
    let mut parser = HttpParser::new();
    parser.feed(Side::Client, b"GET / HTTP/1.1\r\nX-Big: ");
    let filler = vec![b'a'; 4096];
    for _ in 0..16 {
        parser.feed(Side::Client, &filler);
    }
    assert!(parser.requests.buffer.capacity() == 0, "buffer released");
    let conversation = parser.finish();
    assert_eq!(conversation.gave_up.count(GiveUp::OversizedHead), 1);
    assert_eq!(conversation.requests, 0);
}

#[test]
fn tls_client_hello_is_not_http() {
    // A TLS 1.2 record header (handshake, version 3.1) and the start of a ClientHello.
    let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    let mut parser = HttpParser::new();
    parser.feed(Side::Client, &hello[..1]);
    assert_eq!(
        parser.requests.phase,
        Phase::GaveUp,
        "the first byte is enough"
    );
    parser.feed(Side::Client, &hello[1..]);
    parser.feed(Side::Server, b"\x16\x03\x03\x00\x5a\x02");
    let conversation = parser.finish();
    assert_eq!(conversation.gave_up.count(GiveUp::ParseError), 2);
    let gave_up = conversation.gave_up;
    assert_eq!(
        (gave_up.client, gave_up.server),
        (Some(GiveUp::ParseError), Some(GiveUp::ParseError))
    );
    assert!(!conversation.is_http());
}

#[test]
fn http2_preface_and_ssh_banner_are_not_http1() {
    let preface = parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"");
    assert_eq!(preface.gave_up.count(GiveUp::ParseError), 1);
    assert_eq!(preface.requests, 0);
    let ssh = parse(b"", b"SSH-2.0-OpenSSH_9.2\r\n");
    assert_eq!(ssh.gave_up.count(GiveUp::ParseError), 1);
}

#[test]
fn leading_empty_lines_before_a_request_are_ignored() {
    let conversation = parse(&[b"\r\n\r\n".as_slice(), GET].concat(), b"");
    assert_eq!(conversation.requests, 1);
}

#[test]
fn long_target_and_method_are_cut_at_a_character_boundary() {
    let target = format!("/{}", "é".repeat(300));
    let request = format!("GET {target} HTTP/1.1\r\n\r\n");
    let conversation = parse(request.as_bytes(), b"");
    let kept = conversation.last_request.unwrap().target;
    assert!(kept.len() <= MAX_TARGET_BYTES + '…'.len_utf8());
    assert!(kept.ends_with('…') && target.starts_with(kept.trim_end_matches('…')));
}

#[test]
fn pipeline_overflow_gives_up() {
    let mut parser = HttpParser::new();
    let many = b"GET / HTTP/1.1\r\n\r\n".repeat(MAX_PIPELINED_REQUESTS + 1);
    parser.feed(Side::Client, &many);
    let conversation = parser.finish();
    assert_eq!(conversation.requests, MAX_PIPELINED_REQUESTS as u64);
    assert_eq!(conversation.gave_up.count(GiveUp::PipelineOverflow), 1);
}

#[test]
fn conversation_serialises_for_the_model() {
    let client = fixture("24-tomcat-late-write-client-to-server.bin");
    let server = fixture("24-tomcat-late-write-server-to-client.bin");
    let json = serde_json::to_value(parse(&client, &server)).unwrap();
    assert_eq!(json["version"], "HTTP/1.1");
    assert_eq!(json["status_codes"]["200"], 1);
    assert_eq!(json["keep_alive"]["timeout_s"], 2);
    assert_eq!(json["last_unanswered_request"]["request"]["method"], "GET");
    assert_eq!(json["last_unanswered_request"]["idempotent"], true);
}

// --- any chunking, hostile bytes ---

/// Two responses, one chunked with an extension and a trailer, the other by length.
const CHUNKED_THEN_LENGTH: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n\
    4;ext=1\r\nabcd\r\n0\r\nX-Trailer: t\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop";

/// Cut at every pair of places (three pieces): the same conversation as in one piece.
#[test]
fn any_three_piece_split_gives_the_same_conversation() {
    let client = [GET, GET].concat();
    let whole = parse(&client, CHUNKED_THEN_LENGTH);
    assert_eq!(whole.status_codes, statuses(&[(200, 1), (404, 1)]));
    assert_eq!(whole.keep_alive.and_then(|k| k.timeout_s), Some(5));
    for first in 0..=CHUNKED_THEN_LENGTH.len() {
        for second in first..=CHUNKED_THEN_LENGTH.len() {
            let mut parser = HttpParser::new();
            parser.feed(Side::Client, &client);
            parser.feed(Side::Server, &CHUNKED_THEN_LENGTH[..first]);
            parser.feed(Side::Server, &CHUNKED_THEN_LENGTH[first..second]);
            parser.feed(Side::Server, &CHUNKED_THEN_LENGTH[second..]);
            assert_eq!(parser.finish(), whole, "cut at {first} and {second}");
        }
    }
}

/// A head that goes wrong after its first bytes and never ends: the early check reads the
/// same first bytes wherever the segments cut the head, so the verdict cannot depend on
/// the cuts (it used to read whatever the first chunk held: one piece gave up as a parse
/// error, sixteen bytes then the rest did not).
#[test]
fn a_head_is_judged_the_same_however_it_is_cut() {
    let head: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\x01bad: y\r\n";
    let whole = parse(head, b"");
    assert_eq!(
        whole.gave_up,
        GiveUps::default(),
        "incomplete, not yet wrong"
    );
    for cut in 0..=head.len() {
        let mut parser = HttpParser::new();
        parser.feed(Side::Client, &head[..cut]);
        parser.feed(Side::Client, &head[cut..]);
        assert_eq!(parser.finish(), whole, "cut at {cut}");
    }
}

/// Pseudo-random streams built from HTTP's own pieces (start lines of the sender's kind,
/// framing headers, chunked and plain bodies, now and then a foreign piece or a gap), so
/// the parser gets deep rather than failing at byte one, fed in random cuts: no panic,
/// the head buffer never past its cap, the counts consistent.
#[test]
fn hostile_streams_never_panic_or_outgrow_the_cap() {
    const REQUEST_LINES: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n",
        b"HEAD /h HTTP/1.0\r\n",
        b"POST /p HTTP/1.1\r\n",
        b"CONNECT x:443 HTTP/1.1\r\n",
    ];
    const STATUS_LINES: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 101 Switching\r\n",
        b"HTTP/1.0 304 \r\n",
        b"HTTP/1.1 100 Continue\r\n",
        b"HTTP/1.1 204 \r\n",
    ];
    const HEADERS: &[&[u8]] = &[
        b"Content-Length: 3\r\n",
        b"Content-Length: 99999999999999999999999\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Keep-Alive: timeout=\"1\", max=2\r\n",
        b"Connection: close\r\n",
        b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
    ];
    const BODIES: &[&[u8]] = &[
        b"abc",
        b"5;x=y\r\nhello\r\n",
        b"0\r\n\r\n",
        b"0\r\nT: 1\r\n\r\n",
        b"fffffffffffffffff\r\n",
        b"\r\n",
    ];
    const FOREIGN: &[&[u8]] = &[b"\x16\x03\x01", b"\n", b"zz\r\n", b"\x00"];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |bound: usize| {
        // xorshift64: deterministic, no dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let mut deep = 0;
    for _ in 0..1500 {
        let mut parser = HttpParser::new();
        for _ in 0..next(16) {
            let sender = if next(2) == 0 {
                Side::Client
            } else {
                Side::Server
            };
            if next(30) == 0 {
                parser.gap(sender, next(8) as u64);
            }
            let starts = if sender == Side::Client {
                REQUEST_LINES
            } else {
                STATUS_LINES
            };
            let mut message = starts[next(starts.len())].to_vec();
            for _ in 0..next(4) {
                let header = HEADERS[next(HEADERS.len())];
                message.extend(header.repeat(if next(40) == 0 { 300 } else { 1 }));
            }
            message.extend(b"\r\n");
            let bodies = if next(3) == 0 { next(3) } else { 0 };
            for _ in 0..bodies {
                message.extend(BODIES[next(BODIES.len())]);
            }
            if next(25) == 0 {
                let at = next(message.len() + 1);
                message.splice(at..at, FOREIGN[next(FOREIGN.len())].iter().copied());
            }
            let cut = next(message.len() + 1);
            parser.feed(sender, &message[..cut]);
            parser.feed(sender, &message[cut..]);
            assert!(parser.requests.buffer.len() <= MAX_HEAD_BYTES);
            assert!(parser.responses.buffer.len() <= MAX_HEAD_BYTES);
        }
        let conversation = parser.finish();
        assert_eq!(
            conversation.status_codes.values().sum::<u64>(),
            conversation.responses
        );
        assert_eq!(
            conversation.requests > 0,
            conversation.last_request.is_some()
        );
        deep += usize::from(conversation.requests > 1 && conversation.responses > 1);
    }
    assert!(
        deep > 100,
        "the streams get past their first messages ({deep})"
    );
}

/// The LF-jumping head scan against the byte-by-byte rule it implements, on every string
/// of up to 7 bytes from `a`, CR and LF, from every scan state.
#[test]
fn head_scan_matches_the_byte_by_byte_rule() {
    fn reference(input: &[u8], mut scan: HeadScan) -> (usize, bool, HeadScan) {
        for (at, &byte) in input.iter().enumerate() {
            scan = match (scan, byte) {
                (HeadScan::LineStart | HeadScan::LineStartAfterCr, b'\n') => {
                    return (at + 1, true, HeadScan::LineStart)
                }
                (_, b'\n') => HeadScan::LineStart,
                (HeadScan::LineStart, b'\r') => HeadScan::LineStartAfterCr,
                _ => HeadScan::MidLine,
            };
        }
        (input.len(), false, scan)
    }
    let states = [
        HeadScan::MidLine,
        HeadScan::LineStart,
        HeadScan::LineStartAfterCr,
    ];
    for len in 0..=7u32 {
        for mut code in 0..3usize.pow(len) {
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    let byte = [b'a', b'\r', b'\n'][code % 3];
                    code /= 3;
                    byte
                })
                .collect();
            for scan in states {
                assert_eq!(
                    scan_head(&input, scan),
                    reference(&input, scan),
                    "{input:?} from {scan:?}"
                );
            }
        }
    }
}

#[test]
fn known_fields_are_recognised_in_any_case_and_only_exactly() {
    for (name, field) in [
        ("Connection", KnownField::Connection),
        ("CONNECTION", KnownField::Connection),
        ("keep-alive", KnownField::KeepAlive),
        ("Keep-Alive", KnownField::KeepAlive),
        ("content-length", KnownField::ContentLength),
        ("Content-Length", KnownField::ContentLength),
        ("Transfer-Encoding", KnownField::TransferEncoding),
        ("transfer-ENCODING", KnownField::TransferEncoding),
    ] {
        assert_eq!(KnownField::of(name), Some(field), "{name}");
    }
    for name in [
        "Connectiom",
        "Keep-Alivf",
        "Content-Type",
        "Content-Lengths",
        "Transfer-Encodinh",
        "Date",
        "",
        "Proxy-Connection",
    ] {
        assert_eq!(KnownField::of(name), None, "{name}");
    }
}

#[test]
fn digits_parse_to_their_number_and_nothing_else_does() {
    assert_eq!(parse_digits("0"), Some(0));
    assert_eq!(parse_digits("0049"), Some(49));
    assert_eq!(parse_digits("18446744073709551615"), Some(u64::MAX));
    for text in [
        "",
        "18446744073709551616",
        "+5",
        "-1",
        "4 9",
        "4a",
        "٣",
        "0x10",
    ] {
        assert_eq!(parse_digits(text), None, "{text:?}");
    }
}
