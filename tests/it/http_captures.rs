//! The HTTP/1.x conversation of every connection of the shipped HTTP captures, as the
//! analysis reassembles and parses it, against what Wireshark's HTTP dissector says of the
//! same bytes. Each fact below was read with the command in the comment above it
//! (`tshark -r captures/X.pcap -Y http -T fields -e tcp.srcport -e tcp.dstport
//! -e http.request.method -e http.request.uri -e http.response.code -e http.response.line`).

use crate::support::cli::stdout_of;
use crate::support::paths::capture;
use closewait::analyze::{analyze, AnalyzeOptions, RecordSegments};
use closewait::capture::InputSpec;
use closewait::http::{HttpConversation, HttpVersion, RequestLine};
use closewait::model::{ConnectionReport, Side};
use closewait_core::http_close::HttpCloseReason;
use std::collections::BTreeMap;

fn reports_with(name: &str, opts: &AnalyzeOptions) -> Vec<ConnectionReport> {
    let mut reports = Vec::new();
    analyze(&[InputSpec::Path(capture(name))], opts, &mut |r| {
        reports.push(r)
    })
    .expect("analysis");
    reports.sort_by_key(|r| r.id);
    reports
}

fn reports(name: &str) -> Vec<ConnectionReport> {
    reports_with(name, &AnalyzeOptions::default())
}

/// The conversation of each connection, by client port.
fn by_client_port(name: &str) -> BTreeMap<u16, HttpConversation> {
    reports(name)
        .into_iter()
        .map(|r| {
            let http = r
                .http
                .unwrap_or_else(|| panic!("{name}: connection {} has no http", r.id));
            (r.client.port(), *http)
        })
        .collect()
}

fn get(target: &str) -> RequestLine {
    RequestLine {
        method: "GET".into(),
        target: target.into(),
        version: HttpVersion::Http11,
    }
}

/// What every request/response pair of these captures has in common: each request
/// answered by one 200 with `Keep-Alive: timeout=N` (or none), nothing given up.
fn assert_answered(
    http: &HttpConversation,
    requests: u64,
    target: &str,
    keep_alive_timeout: Option<u64>,
) {
    assert_eq!(http.requests, requests, "{http:?}");
    assert_eq!(http.responses, requests, "{http:?}");
    assert_eq!(http.status_codes, BTreeMap::from([(200, requests)]));
    assert_eq!(http.last_status, Some(200));
    assert_eq!(http.last_request, Some(get(target)));
    assert_eq!(http.version, Some(HttpVersion::Http11));
    assert_eq!(
        http.keep_alive.and_then(|k| k.timeout_s),
        keep_alive_timeout
    );
    assert_eq!(http.last_response_persistent, Some(true));
    assert!(!http.last_response_says_close);
    assert_eq!(http.unanswered_requests, Some(0));
    assert_eq!(http.last_unanswered_request, None);
    assert_eq!(http.gave_up, Default::default());
    let (first, last, response) = (
        http.first_request_at.expect("dated"),
        http.last_request_at.expect("dated"),
        http.last_response_at.expect("dated"),
    );
    assert!(first <= last && last < response, "{http:?}");
}

/// 13: one keep-alive connection (client port 34950) reused for three requests.
/// tshark: `GET /1`, `200 … Keep-Alive: timeout=1`, `GET /2`, `200 …`, `GET /3`, `200 …`.
#[test]
fn keepalive_reuse_three_requests_on_one_connection() {
    let http = by_client_port("13-http-keepalive-reuse.pcap");
    assert_eq!(http.keys().copied().collect::<Vec<_>>(), vec![34950]);
    let conversation = &http[&34950];
    assert_answered(conversation, 3, "/3", Some(1));
    assert_eq!(conversation.first_request, Some(get("/1")));
}

/// 23: HttpClient honours Tomcat's `Keep-Alive: timeout=2`. tshark: 16 connections
/// (client ports 50572…50700), each one `GET /?ms=600` answered by
/// `HTTP/1.1 200 … Keep-Alive: timeout=2, Connection: keep-alive`.
#[test]
fn tomcat_keepalive_honoured_one_request_each() {
    let http = by_client_port("23-tomcat-httpclient-keepalive-honoured.pcap");
    assert_eq!(http.len(), 16);
    for conversation in http.values() {
        assert_answered(conversation, 1, "/?ms=600", Some(2));
    }
}

/// 24: the keep-alive strategy off: Tomcat closes after 2 s and the client writes a second
/// GET into one closed connection. tshark: 6 connections with `GET /?ms=300` answered by
/// `200 … Keep-Alive: timeout=2`; on client port 35432 a second `GET /?ms=300` (frame 55)
/// with no response after it.
#[test]
fn tomcat_keepalive_ignored_late_get_unanswered() {
    let http = by_client_port("24-tomcat-httpclient-keepalive-ignored.pcap");
    assert_eq!(http.len(), 6);
    for (port, conversation) in &http {
        if *port == 35432 {
            continue;
        }
        assert_answered(conversation, 1, "/?ms=300", Some(2));
    }
    let late = &http[&35432];
    assert_eq!(late.requests, 2);
    assert_eq!(late.responses, 1);
    assert_eq!(late.status_codes, BTreeMap::from([(200, 1)]));
    assert_eq!(late.keep_alive.and_then(|k| k.timeout_s), Some(2));
    assert_eq!(late.unanswered_requests, Some(1));
    let unanswered = late.last_unanswered_request.as_ref().expect("unanswered");
    assert_eq!(unanswered.request, get("/?ms=300"));
    assert!(unanswered.idempotent);
    // The unanswered request came after the response it follows.
    assert!(late.last_request_at > late.last_response_at);
}

/// 25: an idle evictor closes HttpClient's connections; Tomcat advertises 15 s. tshark:
/// 20 connections, each `GET /?ms=2500` answered by `200 … Keep-Alive: timeout=15`.
#[test]
fn tomcat_idle_evictor_one_request_each() {
    let http = by_client_port("25-tomcat-httpclient-idle-evictor.pcap");
    assert_eq!(http.len(), 20);
    for conversation in http.values() {
        assert_answered(conversation, 1, "/?ms=2500", Some(15));
    }
}

/// 26: nginx and python-requests. tshark: 2 connections, each `GET /` answered by
/// `HTTP/1.1 200 OK` with `Connection: keep-alive` and no `Keep-Alive` header.
#[test]
fn nginx_requests_no_keepalive_advertised() {
    let http = by_client_port("26-nginx-python-requests-late-close.pcap");
    assert_eq!(http.len(), 2);
    for conversation in http.values() {
        assert_answered(conversation, 1, "/", None);
        assert_eq!(conversation.keep_alive, None);
    }
}

/// Connections that carry no HTTP/1.x have no `http` at all (tshark `-Y http` shows no
/// packet of these captures).
#[test]
fn captures_without_http_have_no_http() {
    for name in [
        "05-simultaneous-close.pcap",
        "08-connection-refused.pcap",
        "09-syn-timeout.pcap",
        "11-half-close.pcap",
        "19-simultaneous-server-vantage.pcap",
    ] {
        for r in reports(name) {
            assert_eq!(r.http, None, "{name} connection {}", r.id);
        }
    }
}

/// Zeek's FTP and GridFTP traces: the server greets first (`220 …`), then the client's
/// `USER name` starts like a request (a method is any token) and fails to parse. Neither
/// is HTTP, and none of their connections has an `http` (tshark `-Y http` shows no packet
/// of these traces). Before, the greeting, sent before the parser started, counted as a
/// gap and kept an empty `http` on each control connection.
#[test]
fn server_first_protocols_have_no_http() {
    let traces = crate::support::zeek_corpus::corpus_dir().join("traces");
    for name in [
        "ftp__fake-long-commands.pcap",
        "ftp__ftp-missing-reply-code.pcap",
        "ftp__ftp-missing-space-after-reply-code.pcap",
        "ftp__ipv4.pcap",
        "ftp__ipv6.pcap",
        "globus-url-copy.pcap",
        "pop3__pop3.pcap",
    ] {
        let mut count = 0;
        analyze(
            &[InputSpec::Path(traces.join(name))],
            &AnalyzeOptions::default(),
            &mut |r| {
                count += 1;
                assert_eq!(r.http, None, "{name} connection {}", r.id);
            },
        )
        .expect("analysis");
        assert!(count > 0, "{name}: no connection");
    }
}

/// 21 was captured with `-s 96`: both heads are cut after 30 payload bytes (tshark:
/// `GET /big HTTP/1.1 [Packet size limited during capture]`). The parser does not guess
/// the rest: both directions give up at the gap, and the report says so.
#[test]
fn snaplen_cut_heads_are_given_up_not_guessed() {
    let [report] = &reports("21-bulk-download-then-close.pcap")[..] else {
        panic!("one connection");
    };
    let http = report.http.as_ref().expect("started like HTTP/1.x");
    assert_eq!((http.requests, http.responses), (0, 0));
    assert_eq!(http.gave_up.count(closewait::http::GiveUp::Gap), 2);
}

/// With segment records (diagrams), each head is marked at the frame that began it.
/// tshark (24, client port 35432): `GET /?ms=300` in frames 29 and 55, `HTTP/1.1 200` in
/// frame 41.
#[test]
fn marks_name_each_head_and_its_frame_when_segments_are_recorded() {
    let opts = AnalyzeOptions {
        record_segments: RecordSegments::All,
        ..AnalyzeOptions::default()
    };
    let recorded = reports_with("24-tomcat-httpclient-keepalive-ignored.pcap", &opts);
    let late = recorded
        .iter()
        .find(|r| r.client.port() == 35432)
        .expect("connection");
    let marks: Vec<(u64, Side, &str)> = late
        .http
        .as_ref()
        .expect("http")
        .marks
        .iter()
        .map(|m| (m.frame, m.sender, m.label.as_str()))
        .collect();
    assert_eq!(
        marks,
        vec![
            (29, Side::Client, "GET /?ms=300 HTTP/1.1"),
            (41, Side::Server, "HTTP/1.1 200"),
            (55, Side::Client, "GET /?ms=300 HTTP/1.1"),
        ]
    );
    // Without records, no marks.
    for r in reports("24-tomcat-httpclient-keepalive-ignored.pcap") {
        assert!(r.http.expect("http").marks.is_empty());
    }
}

/// `analyze --jsonl` carries the object, and it is serde_json's rendering of the report's.
#[test]
fn jsonl_carries_the_http_object() {
    let name = "24-tomcat-httpclient-keepalive-ignored.pcap";
    let lines = stdout_of(["analyze", "--jsonl", capture(name).to_str().unwrap()]);
    let mut seen = 0;
    for (line, report) in lines.lines().zip(reports(name)) {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
        // Through text both ways: serde_json's float parsing is not exact.
        let http = serde_json::to_string(report.http.as_ref().expect("http")).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&http).unwrap();
        assert_eq!(value["http"], expected);
        seen += 1;
    }
    assert_eq!(seen, 6);
}

/// `--find TEXT` keeps the connections whose reassembled bytes contain the text. tshark:
/// every request of capture 24 is `GET /?ms=300`, of capture 23 `GET /?ms=600`.
#[test]
fn find_selects_connections_by_a_request_target() {
    let count = |name: &str, text: &str| {
        let out = stdout_of([
            "analyze",
            "--jsonl",
            "--find",
            text,
            capture(name).to_str().unwrap(),
        ]);
        out.lines()
            .filter(|l| l.starts_with("{\"type\":\"connection\""))
            .count()
    };
    assert_eq!(
        count("24-tomcat-httpclient-keepalive-ignored.pcap", "/?ms=300"),
        6
    );
    assert_eq!(
        count("23-tomcat-httpclient-keepalive-honoured.pcap", "/?ms=300"),
        0
    );
    // Any protocol, either direction: the server's header.
    assert_eq!(
        count("26-nginx-python-requests-late-close.pcap", "Server: nginx"),
        2
    );
    assert_eq!(count("13-http-keepalive-reuse.pcap", "no such text"), 0);
    // Not HTTP at all (tshark `-qz follow,tcp,ascii,0`: the client of 11 sends
    // `SEND ME EVERYTHING`, both sides of 05 `hello`): searched just the same.
    assert_eq!(count("11-half-close.pcap", "ME EVERYTHING"), 1);
    assert_eq!(count("05-simultaneous-close.pcap", "hello"), 1);
}

/// Text split over two segments is found: in capture 13 the client's first request ends
/// with `Host: 10.77.0.2\r\n\r\n` in one segment and the next starts `GET /2` in the
/// next (tshark `-qz follow,tcp,ascii,0`).
#[test]
fn find_sees_text_across_segment_boundaries() {
    let found = |text: &str| {
        let opts = AnalyzeOptions {
            find: Some(text.as_bytes().to_vec()),
            ..AnalyzeOptions::default()
        };
        let reports = reports_with("13-http-keepalive-reuse.pcap", &opts);
        reports.iter().map(|r| r.found).collect::<Vec<_>>()
    };
    assert_eq!(found("10.77.0.2\r\n\r\nGET /2 HTTP"), vec![true]);
    assert_eq!(found("ok\nHTTP/1.1 200"), vec![true]);
    assert_eq!(found("GET /4"), vec![false]);
    // Without --find nothing is searched, and the HTTP summary is the same either way.
    let plain = reports("13-http-keepalive-reuse.pcap");
    assert!(!plain[0].found);
    let opts = AnalyzeOptions {
        find: Some(b"GET".to_vec()),
        ..AnalyzeOptions::default()
    };
    assert_eq!(
        reports_with("13-http-keepalive-reuse.pcap", &opts)[0].http,
        plain[0].http
    );
}

/// 29b is 29 with frame 6 removed (captures/README.md): the first connection's first
/// response (`HTTP/1.1 200 OK`, 150 bytes) never captured, though the client received it
/// and acknowledged it (tshark on 29b: frame 6 `[TCP ACKed unseen segment] Ack=151`, frame
/// 8 `[TCP Previous segment not captured] HTTP/1.1 200 OK`). The client's ACK of the
/// second response proves the first one's bytes exist: they become a gap there. A gap
/// between two messages cannot be skipped by any framing, so that connection's response
/// direction gives up (it never resynchronises on bytes that merely look like a head);
/// its requests are still read, the TCP verdict is the kernel's as in 29, and the second
/// connection reads exactly as in 29.
#[test]
fn response_missing_from_the_capture_is_a_gap_and_the_rest_still_reads() {
    let original = reports("29-nginx-python-requests-keepalive-requests.pcap");
    let derived = reports("29b-nginx-python-requests-response-not-captured.pcap");
    assert_eq!(original.len(), 2);
    assert_eq!(derived.len(), 2);

    // The TCP story does not depend on the missing bytes; the TCP counters say they are
    // missing (Zeek's history gains its content-gap `g`).
    // Frames from 7 on are one lower in 29b: compare everything but frame numbers.
    let tcp = |r: &ConnectionReport| {
        let mut v = serde_json::to_value(r).expect("JSON");
        let close = v["close"].as_object_mut().expect("object");
        for key in ["http", "explanation", "first_frame"] {
            close.remove(key);
        }
        for side in ["client", "server"] {
            for change in v["timeline"][side].as_array_mut().expect("timeline") {
                change.as_object_mut().expect("object").remove("frame");
            }
        }
        let explanation = r.close.explanation.clone();
        let keep = [
            "close",
            "client_state",
            "server_state",
            "timeline",
            "duration",
        ];
        (keep.map(|k| v[k].clone()), explanation)
    };
    for (o, d) in original.iter().zip(&derived) {
        assert_eq!(o.client, d.client);
        assert_eq!(tcp(o), tcp(d), "{}", o.client);
    }
    assert_eq!(derived[0].tcp.server.missing_bytes, 150);
    assert_eq!(original[0].tcp.server.missing_bytes, 0);
    assert_eq!(
        (
            original[0].zeek.history.as_str(),
            derived[0].zeek.history.as_str()
        ),
        ("ShADadfF", "ShADagdfF")
    );

    // 29, first connection: two GETs, two 200s, the second announcing the close.
    let before = original[0].http.as_deref().expect("http");
    assert_answered_then_closed(before);
    assert_eq!(
        original[0].close.http.as_deref().map(|c| c.reason),
        Some(HttpCloseReason::Announced)
    );

    // 29b, first connection: both requests read (same times), the responses given up at
    // the gap, so nothing is known of them or of what the last one announced.
    let after = derived[0].http.as_deref().expect("http");
    assert_eq!((after.requests, after.responses), (2, 0));
    assert_eq!(after.last_request, Some(get("/")));
    assert_eq!(after.first_request_at, before.first_request_at);
    assert_eq!(after.last_request_at, before.last_request_at);
    assert_eq!(after.status_codes, BTreeMap::new());
    assert_eq!(after.last_status, None);
    assert_eq!(after.last_response_at, None);
    assert!(!after.last_response_says_close);
    assert_eq!(after.unanswered_requests, None, "pairing unknown");
    assert_eq!(
        after.gave_up,
        closewait::http::GiveUps {
            client: None,
            server: Some(closewait::http::GiveUp::Gap),
        },
        "the responses stopped being read at the gap; the requests were read to the end"
    );
    // The second response did announce the close (29 says so), but it was not read: the
    // reason is unknown, not "neither".
    let close = derived[0].close.http.as_deref().expect("an HTTP close");
    assert_eq!(
        (close.reason, close.closed_by, close.idle_after_response),
        (HttpCloseReason::Unknown, Side::Server, None)
    );
    let unread = close.unread.as_ref().expect("what was not read");
    assert_eq!(
        (unread.client, unread.server),
        (None, Some(closewait::http::GiveUp::Gap))
    );

    assert_eq!(
        derived[0].close.explained().to_string(),
        "The server closed first and the client answered with its own FIN 0.001 s later. \
         HTTP: why the server closed cannot be told: the server's responses could not be \
         read to the end (bytes missing from the capture), so whether the close was \
         announced is unknown."
    );

    // The second connection is untouched.
    assert_eq!(derived[1].http, original[1].http);
    assert_eq!(derived[1].close.http, original[1].close.http);

    // The bytes held after the gap are still searched: the second response's header.
    let found = |name: &str| {
        let opts = AnalyzeOptions {
            find: Some(b"Connection: close".to_vec()),
            ..AnalyzeOptions::default()
        };
        reports_with(name, &opts)
            .iter()
            .map(|r| r.found)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        found("29b-nginx-python-requests-response-not-captured.pcap"),
        vec![true, true]
    );
}

/// 29's first connection as tshark reads it: `GET /` answered `200` (keep-alive), then
/// `GET /` answered `200` with `Connection: close`.
fn assert_answered_then_closed(http: &HttpConversation) {
    assert_eq!((http.requests, http.responses), (2, 2));
    assert_eq!(http.status_codes, BTreeMap::from([(200, 2)]));
    assert!(http.last_response_says_close);
    assert_eq!(http.unanswered_requests, Some(0));
    assert_eq!(http.gave_up, Default::default());
}
