//! Diagnosis of hand-built conversations, run through the real analyzer (testkit).

use super::*;
use crate::render::diagnosis::{render, Format, RenderOptions};
use closewait_core::capture::CaptureStats;
use closewait_core::model::{ConnectionReport, Side};
use closewait_core::testkit::*;

/// Analyzes `w` with the capture ending `tail` seconds after its last segment, and
/// diagnoses it.
fn diag(w: &Wire, tail: f64) -> (Vec<ConnectionReport>, Diagnosis) {
    let reports = w.analyze_with_tail(tail);
    let capture = CaptureStats {
        first_ts: w.segments.first().map(|s| s.ts_ns as f64 / 1e9),
        last_ts: Some((w.ts_ns + (tail * 1e9) as i64) as f64 / 1e9),
        ..CaptureStats::default()
    };
    let d = diagnose(&reports, &capture);
    (reports, d)
}

fn ids_of(d: &Diagnosis) -> Vec<&'static str> {
    d.findings.iter().map(|f| f.id.as_str()).collect()
}

fn only(d: &Diagnosis, id: FindingId) -> &Finding {
    let found: Vec<&Finding> = d.findings.iter().filter(|f| f.id == id).collect();
    assert_eq!(found.len(), 1, "expected one {id}: {:?}", ids_of(d));
    found[0]
}

/// Client port of connection `i`.
fn port(i: u16) -> std::net::SocketAddr {
    format!("10.77.0.1:{}", 40000 + i).parse().unwrap()
}

/// `n` keep-alive connections the server closes after `idle` s; the client acknowledges
/// each FIN and answers with its own only for the indexes in `closes`.
fn pool(n: u16, idle: f64, closes: &[u16]) -> Wire {
    let mut w = Wire::new();
    for i in 0..n {
        w.client = port(i);
        w.exchange()
            .wait(idle)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1101, 5202, 0);
        if closes.contains(&i) {
            w.send(C, FIN | ACK, 1101, 5202, 0)
                .send(S, ACK, 5202, 1102, 0);
        }
    }
    w
}

#[test]
fn pool_leak_is_one_close_wait_finding_per_service() {
    let w = pool(10, 15.0, &[0, 5]);
    let (_, d) = diag(&w, 30.0);
    let leak = only(&d, FindingId::CloseWaitLeak);
    assert_eq!(leak.severity, Severity::Error);
    assert_eq!(leak.count, 8);
    assert_eq!(leak.evidence, vec![1, 2, 3, 4, 6, 7, 8, 9]);
    assert_eq!(
        leak.summary,
        "8 of your 10 connections to 10.77.0.2:8788 were closed by the server after 15.0 s \
         idle and your client never closed them (CLOSE_WAIT)."
    );
    assert!(leak
        .advice
        .starts_with("Your connection pool does not notice server-side closes. Set its idle timeout below 15.0 s"));
    let Details::CloseWaitLeak(det) = &leak.details else {
        panic!("details {:?}", leak.details)
    };
    assert_eq!(det.leaking_side, Side::Client);
    assert_eq!(det.leaking_host.unwrap().to_string(), "10.77.0.1");
    assert_eq!(det.service.to_string(), "10.77.0.2:8788");
    assert_eq!(det.connections_to_service, 10);
    // The last FIN came 30 s before the end of the capture (plus the ACK's 1 ms).
    assert!(
        (det.durations.min - 30.001).abs() < 1e-6,
        "{:?}",
        det.durations
    );
    assert!(det.durations.max > 7.0 * 15.0);
    let idle = det.idle_before_fin.as_ref().unwrap();
    assert!((idle.median - 15.002).abs() < 1e-6, "{idle:?}");
}

#[test]
fn pool_leak_infers_server_keepalive_timeout_and_mismatch() {
    let w = pool(10, 15.0, &[0, 5]);
    let (_, d) = diag(&w, 30.0);
    let idle = only(&d, FindingId::IdleTimeout);
    let Details::IdleTimeout(det) = &idle.details else {
        panic!()
    };
    assert_eq!(det.side, Side::Server);
    assert_eq!(det.samples, 10);
    assert!((det.seconds - 15.0).abs() < 0.01);
    assert!(det.fixed);
    assert!(idle
        .summary
        .starts_with("The server 10.77.0.2:8788 closes idle connections after 15.0 s (n=10"));

    let mm = only(&d, FindingId::TimeoutMismatch);
    assert_eq!(mm.severity, Severity::Warning);
    let Details::TimeoutMismatch(det) = &mm.details else {
        panic!()
    };
    assert_eq!(det.client_seconds, None);
    assert_eq!((det.unanswered, det.leaked), (8, 8));
    assert!(mm.advice.contains("below 15.0 s"));
}

#[test]
fn server_closing_most_connections_holds_time_wait() {
    let w = pool(4, 2.0, &[0, 1, 2, 3]);
    let (_, d) = diag(&w, 1.0);
    assert!(!ids_of(&d).contains(&"close_wait_leak"));
    let tw = only(&d, FindingId::ServerTimeWait);
    let Details::ServerTimeWait(det) = &tw.details else {
        panic!()
    };
    assert_eq!(
        (det.active_closes, det.closed, det.reached_time_wait),
        (4, 4, 4)
    );
    // 4 closes over the ~9 s capture: 3 intervals between the first and the last, too
    // short a span for a projection.
    assert!(
        (det.per_second - 3.0 / det.closes_span).abs() < 1e-3,
        "{det:?}"
    );
    assert_eq!(det.projected_time_wait, None);
    // The clients followed every FIN: informational, and nothing else is wrong.
    assert_eq!(
        only(&d, FindingId::TimeoutMismatch).severity,
        Severity::Info
    );
    assert_eq!(d.worst(), Some(Severity::Info));
    only(&d, FindingId::AllClear);
}

#[test]
fn client_closes_first_is_all_clear_with_counts() {
    let mut w = Wire::new();
    w.exchange()
        .send(C, FIN | ACK, 1101, 5201, 0)
        .send(S, FIN | ACK, 5201, 1102, 0)
        .send(C, ACK, 1102, 5202, 0);
    let (_, d) = diag(&w, 0.0);
    assert_eq!(ids_of(&d), vec!["all_clear"]);
    let f = &d.findings[0];
    assert_eq!(f.count, 1);
    assert!(
        f.summary
            .starts_with("Nothing wrong: 1 connection (1 graceful)"),
        "{}",
        f.summary
    );
}

#[test]
fn client_idle_timeout_shorter_than_servers_is_no_mismatch() {
    let mut w = Wire::new();
    for i in 0..3 {
        w.client = port(i);
        w.exchange()
            .wait(5.0)
            .send(C, FIN | ACK, 1101, 5201, 0)
            .send(S, FIN | ACK, 5201, 1102, 0)
            .send(C, ACK, 1102, 5202, 0);
    }
    let (_, d) = diag(&w, 0.0);
    let idle = only(&d, FindingId::IdleTimeout);
    let Details::IdleTimeout(det) = &idle.details else {
        panic!()
    };
    assert_eq!(det.side, Side::Client);
    assert_eq!(
        det.client_host.map(|h| h.to_string()).as_deref(),
        Some("10.77.0.1")
    );
    assert!((det.seconds - 5.0).abs() < 0.01);
    assert!(!ids_of(&d).contains(&"timeout_mismatch"));
    assert!(!ids_of(&d).contains(&"server_time_wait"));
}

#[test]
fn reused_connection_after_server_fin_is_late_write_rst() {
    let mut w = Wire::new();
    w.exchange()
        .wait(1.0)
        .send(S, FIN | ACK, 5201, 1101, 0)
        .send(C, ACK, 1101, 5202, 0)
        .wait(2.0)
        .send(C, PSH | ACK, 1101, 5202, 36)
        .send(S, RST, 5202, 0, 0);
    let (_, d) = diag(&w, 0.0);
    let f = only(&d, FindingId::LateWriteRst);
    assert_eq!(f.severity, Severity::Warning);
    let Details::LateWrite(det) = &f.details else {
        panic!()
    };
    assert_eq!(det.closer, Side::Server);
    assert_eq!((det.bare_rst, det.rst_ack, det.late_data_seen), (1, 0, 1));
    assert_eq!(det.crossed_fin, 0);
    assert!(
        (det.fin_to_rst.median - 2.003).abs() < 1e-6,
        "{:?}",
        det.fin_to_rst
    );
    // Not also counted as a plain reset.
    assert!(!ids_of(&d).contains(&"resets"));
    assert!(!ids_of(&d).contains(&"close_wait_leak"));
}

#[test]
fn request_crossing_the_fin_is_the_keepalive_race() {
    let mut w = Wire::new();
    w.exchange()
        .wait(1.0)
        .send(S, FIN | ACK, 5201, 1101, 0)
        // The request left before the FIN arrived: it does not acknowledge it.
        .send(C, PSH | ACK, 1101, 5201, 36)
        .send(S, RST, 5202, 0, 0);
    let (_, d) = diag(&w, 0.0);
    let f = only(&d, FindingId::LateWriteRst);
    let Details::LateWrite(det) = &f.details else {
        panic!()
    };
    assert_eq!(det.crossed_fin, 1);
    assert!(f.mechanism.contains("crossed the FIN"));
}

/// Client keep-alive: idle 2 s, interval 1 s; `answered` probes answered, then
/// `unanswered` probes and a RST when `reset`.
fn keepalive(answered: usize, unanswered: usize, reset: bool) -> Wire {
    let mut w = Wire::new();
    w.exchange();
    for _ in 0..answered {
        w.wait(2.0)
            .send(C, ACK, 1100, 5201, 0)
            .send(S, ACK, 5201, 1101, 0);
    }
    for k in 0..unanswered {
        w.wait(if k == 0 { 2.0 } else { 1.0 })
            .send(C, ACK, 1100, 5201, 0);
    }
    if reset {
        w.wait(1.0).send(C, RST | ACK, 1101, 5201, 0);
    }
    w
}

#[test]
fn answered_keepalive_probes_give_the_idle_time() {
    let w = keepalive(3, 0, false);
    let (_, d) = diag(&w, 0.5);
    let f = only(&d, FindingId::Keepalive);
    let Details::Keepalive(det) = &f.details else {
        panic!()
    };
    assert_eq!(
        (det.prober, det.probes_sent, det.probes_answered),
        (Side::Client, 3, 3)
    );
    assert_eq!(det.settings.tcp_keepalive_time, Some(2));
    assert_eq!(det.settings.time_samples, 3);
    assert_eq!(det.settings.intvl, None);
    assert_eq!(det.settings.probes, None);
    assert_eq!(d.worst(), Some(Severity::Info));
}

#[test]
fn unanswered_keepalive_probes_give_interval_count_and_dead_peer() {
    let w = keepalive(1, 4, true);
    let (_, d) = diag(&w, 0.0);
    let f = only(&d, FindingId::Keepalive);
    let Details::Keepalive(det) = &f.details else {
        panic!()
    };
    assert_eq!((det.probes_sent, det.probes_answered), (5, 1));
    let s = &det.settings;
    assert_eq!(
        (
            s.tcp_keepalive_time,
            s.tcp_keepalive_intvl,
            s.tcp_keepalive_probes
        ),
        (Some(2), Some(1), Some(4))
    );
    assert!(
        f.summary.contains("giving up after 4 unanswered"),
        "{}",
        f.summary
    );

    let dead = only(&d, FindingId::DeadPeer);
    assert_eq!(dead.severity, Severity::Warning);
    let Details::DeadPeer(det) = &dead.details else {
        panic!()
    };
    assert_eq!((det.reset, det.unanswered_at_end), (1, 0));
    assert_eq!(det.peer.to_string(), "10.77.0.2:8788");
    // 2 s idle + 4 probes 1 s apart (the last interval ends with the RST).
    let silent = det.silent_before_reset.as_ref().unwrap().median;
    assert!((silent - 6.0).abs() < 0.01, "{silent}");
    // The keep-alive RST is neither a plain reset nor an idle close.
    assert!(!ids_of(&d).contains(&"resets"));
    assert!(!ids_of(&d).contains(&"idle_timeout"));
}

#[test]
fn keepalive_counts_without_segment_records() {
    let w = keepalive(0, 3, true);
    let (mut reports, _) = diag(&w, 0.0);
    for r in &mut reports {
        r.segments = None;
    }
    let d = diagnose(&reports, &CaptureStats::default());
    let f = only(&d, FindingId::Keepalive);
    let Details::Keepalive(det) = &f.details else {
        panic!()
    };
    assert_eq!(det.probes_sent, 3);
    assert_eq!(det.settings.time, None);
    assert!(f.mechanism.contains("only the counts"));
    let dead = only(&d, FindingId::DeadPeer);
    assert_eq!(dead.count, 1);
}

#[test]
fn refused_and_syn_timeouts_are_grouped_per_server() {
    let mut w = Wire::new();
    w.client = port(1);
    w.send(C, SYN, 1000, 0, 0).send(S, RST | ACK, 0, 1001, 0);
    w.client = port(2);
    w.send(C, SYN, 1000, 0, 0).send(S, RST | ACK, 0, 1001, 0);
    w.client = port(3);
    w.exchange();
    w.server = "10.77.0.3:443".parse().unwrap();
    w.client = port(4);
    w.send(C, SYN, 1000, 0, 0)
        .wait(1.0)
        .send(C, SYN, 1000, 0, 0)
        .wait(2.0)
        .send(C, SYN, 1000, 0, 0);
    let (_, d) = diag(&w, 1.0);
    let refused = only(&d, FindingId::Refused);
    assert_eq!(
        refused.severity,
        Severity::Warning,
        "one connection did succeed"
    );
    assert_eq!(refused.evidence, vec![0, 1]);
    let Details::Failed(det) = &refused.details else {
        panic!()
    };
    assert_eq!((det.attempts, det.established, det.syns), (2, 1, 2));

    let t = only(&d, FindingId::SynTimeout);
    assert_eq!(t.severity, Severity::Error, "nothing reached 10.77.0.3:443");
    let Details::Failed(det) = &t.details else {
        panic!()
    };
    assert_eq!(det.server.to_string(), "10.77.0.3:443");
    assert_eq!(det.syns, 3);
    assert!(
        t.summary.contains("3 SYNs over up to 3.0 s"),
        "{}",
        t.summary
    );
    // Errors first.
    assert_eq!(d.findings[0].id, FindingId::SynTimeout);
}

#[test]
fn bare_rst_answering_data_is_half_open() {
    let mut w = Wire::new();
    w.exchange()
        .wait(30.0)
        .send(C, PSH | ACK, 1101, 5201, 50)
        .send(S, RST, 5201, 0, 0);
    let (_, d) = diag(&w, 0.0);
    let f = only(&d, FindingId::HalfOpen);
    let Details::HalfOpen(det) = &f.details else {
        panic!()
    };
    assert_eq!(det.forgot, Side::Server);
    assert!(!ids_of(&d).contains(&"resets"));
}

#[test]
fn linger_zero_abort_is_a_reset_by_the_client() {
    let mut w = Wire::new();
    w.exchange().send(C, RST | ACK, 1101, 5201, 0);
    let (_, d) = diag(&w, 0.0);
    let f = only(&d, FindingId::Resets);
    let Details::Resets(det) = &f.details else {
        panic!()
    };
    assert_eq!(
        (det.reset_by, det.aborts, det.after_fin),
        (Side::Client, 1, 0)
    );
    assert_eq!(
        f.summary,
        "The client 10.77.0.1 aborted 1 connection to 10.77.0.2:8788 with RST instead of \
         closing with FIN."
    );
}

#[test]
fn server_never_closing_after_client_fin_is_server_side_leak() {
    let mut w = Wire::new();
    w.exchange()
        .send(C, FIN | ACK, 1101, 5201, 0)
        .send(S, ACK, 5201, 1102, 0);
    let (_, d) = diag(&w, 5.0);
    let f = only(&d, FindingId::CloseWaitLeak);
    let Details::CloseWaitLeak(det) = &f.details else {
        panic!()
    };
    assert_eq!(det.leaking_side, Side::Server);
    assert_eq!(det.remote, "10.77.0.1");
    assert!(
        f.summary.contains("your server never closed it"),
        "{}",
        f.summary
    );
    assert!(f.advice.contains("read() returns 0"));
}

#[test]
fn no_connections_is_said_plainly() {
    let d = diagnose(&[], &CaptureStats::default());
    assert_eq!(ids_of(&d), vec!["all_clear"]);
    assert_eq!(d.findings[0].count, 0);
    assert!(d.findings[0].summary.contains("no TCP connections"));
}

#[test]
fn json_has_stable_ids_and_flattened_numbers() {
    let w = pool(3, 15.0, &[]);
    let (reports, d) = diag(&w, 10.0);
    let json: serde_json::Value = serde_json::from_str(&render(
        Format::Json,
        &d,
        &reports,
        &RenderOptions::default(),
    ))
    .unwrap();
    let findings = json["findings"].as_array().unwrap();
    let leak = &findings[0];
    assert_eq!(leak["id"], "close_wait_leak");
    assert_eq!(leak["severity"], "error");
    assert_eq!(leak["count"], 3);
    assert_eq!(leak["evidence"], serde_json::json!([0, 1, 2]));
    assert_eq!(leak["leaking_side"], "client");
    assert_eq!(leak["leaking_host"], "10.77.0.1");
    assert_eq!(leak["remote"], "10.77.0.2:8788");
    assert_eq!(leak["durations"]["n"], 3);
    assert!(leak.get("facts").is_none());
    let idle = findings.iter().find(|f| f["id"] == "idle_timeout").unwrap();
    assert_eq!(idle["server"], "10.77.0.2:8788");
    assert_eq!(idle["samples"], 3);
    for key in ["seconds", "p10", "p90"] {
        assert!(
            idle[key]
                .as_f64()
                .is_some_and(|x| (x - 15.002).abs() < 1e-6),
            "{key}"
        );
    }
}

#[test]
fn output_does_not_depend_on_report_order() {
    let w = pool(6, 3.0, &[2]);
    let (mut reports, d) = diag(&w, 2.0);
    reports.reverse();
    let capture = CaptureStats {
        first_ts: d.capture_start,
        last_ts: d.capture_end,
        ..CaptureStats::default()
    };
    let again = diagnose(&reports, &capture);
    let opts = RenderOptions::default();
    for format in [Format::Json, Format::Text, Format::Markdown] {
        assert_eq!(
            render(format, &d, &reports, &opts),
            render(format, &again, &reports, &opts)
        );
    }
}

#[test]
fn markdown_draws_the_example_connection() {
    let w = pool(3, 15.0, &[]);
    let (reports, d) = diag(&w, 10.0);
    let md = render(Format::Markdown, &d, &reports, &RenderOptions::default());
    assert!(md.starts_with("## closewait diagnosis\n"));
    assert!(md.contains("| 1 | error | `close_wait_leak` | 3 |"));
    assert!(md.contains("```mermaid\nsequenceDiagram\n"));
    assert!(md.contains("S->>C: FIN, ACK"));
    assert!(md.contains("Note left of C: CLOSE_WAIT"));
    assert!(md.contains("15.0 s idle"));
}

#[test]
fn text_lists_verdict_numbers_evidence_mechanism_advice() {
    let w = pool(20, 15.0, &[]);
    let (reports, d) = diag(&w, 10.0);
    let text = render(
        Format::Text,
        &d,
        &reports,
        &RenderOptions {
            max_ids: 5,
            capture: None,
        },
    );
    assert!(text.starts_with("closewait diagnose: 20 TCP connections over "));
    assert!(text.contains("\nERROR close_wait_leak: All 20 of your connections to 10.77.0.2:8788"));
    assert!(text.contains("  evidence  0 1 2 3 4 … (20 in all); example: tcp.stream eq "));
    assert!(text.contains("\n  why       "));
    assert!(text.contains("\n  advice    Your connection pool"));
    assert!(text.lines().all(|l| l.chars().count() <= 100));
}

/// What `--fail-on` compares with (the exit status itself is the command's, tested in
/// tests/diagnose_captures.rs on real captures).
#[test]
fn worst_is_the_most_severe_finding() {
    let (_, leak) = diag(&pool(2, 5.0, &[]), 1.0);
    let (_, fine) = diag(&pool(2, 5.0, &[0, 1]), 1.0);
    assert_eq!(leak.worst(), Some(super::Severity::Error));
    assert!(fine.worst() < Some(super::Severity::Warning));
}

#[test]
fn representative_prefers_the_median_with_segments() {
    let w = pool(5, 1.0, &[]);
    let (mut reports, _) = diag(&w, 1.0);
    let pick = |reports: &[ConnectionReport]| {
        let mut m = super::acc::Members::default();
        for r in reports {
            m.add(r.id, r.id as f64, r.segments.is_some());
        }
        m.example()
    };
    assert_eq!(pick(&reports), Some(2));
    reports[2].segments = None;
    reports[1].segments = None;
    assert_eq!(pick(&reports), Some(3));
}

/// A server-side capture: `clients` client hosts each open `per` keep-alive connections to
/// each of `services` services; every server closes them after 5 s idle and no client
/// ever answers the FIN.
fn server_side(clients: u8, services: u8, per: u16) -> Wire {
    let mut w = Wire::new();
    for s in 0..services {
        w.server = format!("10.1.0.5:{}", 8000 + s as u16).parse().unwrap();
        for c in 0..clients {
            for i in 0..per {
                w.client = format!("10.2.0.{}:{}", c + 1, 40000 + i).parse().unwrap();
                w.exchange()
                    .wait(5.0)
                    .send(S, FIN | ACK, 5201, 1101, 0)
                    .send(C, ACK, 1101, 5202, 0);
            }
        }
    }
    w
}

#[test]
fn server_side_leak_is_one_finding_per_service_with_a_host_table() {
    let (_, d) = diag(&server_side(20, 3, 2), 30.0);
    let leaks: Vec<&Finding> = d
        .findings
        .iter()
        .filter(|f| f.id == FindingId::CloseWaitLeak)
        .collect();
    assert_eq!(leaks.len(), 3, "one per service");
    for f in &leaks {
        assert_eq!(f.count, 40);
        assert!(
            f.summary
                .starts_with("40 of the 40 connections to 10.1.0.5:80")
                && f.summary.contains(" (from 20 client hosts) were closed"),
            "{}",
            f.summary
        );
        let Details::CloseWaitLeak(l) = &f.details else {
            panic!("leak details")
        };
        assert_eq!(l.leaking_host, None);
        let t = l.leaking_hosts.as_ref().expect("host table");
        assert_eq!((t.hosts, t.top.len(), t.others), (20, 5, 30));
        assert!(f
            .facts
            .iter()
            .any(|x| x.contains("and 15 more hosts (30 connections)")));
    }
    // The servers' idle timeouts stay one per service.
    let idle = d.findings.iter().filter(|f| f.id == FindingId::IdleTimeout);
    assert_eq!(idle.count(), 3);
}

#[test]
fn client_side_leak_stays_per_leaking_host() {
    let (_, d) = diag(&server_side(2, 1, 3), 30.0);
    let leaks: Vec<&Finding> = d
        .findings
        .iter()
        .filter(|f| f.id == FindingId::CloseWaitLeak)
        .collect();
    assert_eq!(leaks.len(), 2, "a few client hosts: one finding each");
    assert!(leaks[0]
        .summary
        .starts_with("3 of your 6 connections to 10.1.0.5:8000"));
}

/// `n` keep-alive connections the server closes after 2 s idle, each answered by the
/// client's FIN `answer` s later (a pool that closes a connection when it next hands it out).
fn late_answers(n: u16, answer: f64) -> Wire {
    let mut w = Wire::new();
    for i in 0..n {
        w.client = port(i);
        w.exchange()
            .wait(2.0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1101, 5202, 0)
            .wait(answer)
            .send(C, FIN | ACK, 1101, 5202, 0)
            .send(S, ACK, 5202, 1102, 0);
    }
    w
}

#[test]
fn late_answers_to_the_servers_fin_are_a_warning_not_all_clear() {
    let (_, d) = diag(&late_answers(6, 1.9), 5.0);
    let m = only(&d, FindingId::TimeoutMismatch);
    assert_eq!(m.severity, Severity::Warning);
    assert!(
        m.summary.contains("answer its FIN late: 6 of 6 answers"),
        "{}",
        m.summary
    );
    let Details::TimeoutMismatch(det) = &m.details else {
        panic!("mismatch details")
    };
    assert_eq!(det.slow_answers, 6);
    assert!((det.answer_delay.as_ref().unwrap().median - 1.9).abs() < 0.01);
    assert!(!ids_of(&d).contains(&"all_clear"));
}

#[test]
fn prompt_answers_stay_informational() {
    let (_, d) = diag(&late_answers(6, 0.01), 5.0);
    let m = only(&d, FindingId::TimeoutMismatch);
    assert_eq!(m.severity, Severity::Info);
    assert!(m.summary.ends_with("and the clients follow its FIN."));
}

#[test]
fn steady_server_closes_over_a_minute_are_projected() {
    // 31 closes, one every 3 s: 90 s of closes at 1/3 per second → 20 in TIME_WAIT.
    let mut w = Wire::new();
    for i in 0..31 {
        w.client = port(i);
        w.exchange()
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, FIN | ACK, 1101, 5202, 0)
            .send(S, ACK, 5202, 1102, 0)
            .wait(3.0);
    }
    let (_, d) = diag(&w, 1.0);
    let Details::ServerTimeWait(det) = &only(&d, FindingId::ServerTimeWait).details else {
        panic!("time-wait details")
    };
    let p = det.projected_time_wait.expect("projected");
    assert!((p - 20.0).abs() < 0.5, "{det:?}");
}

#[test]
fn a_burst_of_server_closes_is_not_projected() {
    // 20 server closes within a second: a count, not a rate.
    let (_, d) = diag(&pool(20, 0.0, &(0..20).collect::<Vec<_>>()), 1.0);
    let tw = only(&d, FindingId::ServerTimeWait);
    let Details::ServerTimeWait(det) = &tw.details else {
        panic!("time-wait details")
    };
    assert_eq!(det.projected_time_wait, None);
    assert!(tw.summary.ends_with("20 sockets in 0.000 s.") || !tw.summary.contains("about"));
}

#[test]
fn an_evictor_sweep_is_not_a_fixed_timeout() {
    // A client pool with a 1 s idle setting swept once a second: 20 connections opened
    // 25 ms apart, closed by the client in two sweeps, after 1.0–1.5 s of idleness.
    let mut w = Wire::new();
    let mut conns = Vec::new();
    for i in 0..20u16 {
        w.client = port(i);
        w.exchange();
        conns.push((w.client, w.ts_ns));
        w.wait(0.025);
    }
    let start = conns[0].1;
    for (k, sweep_at) in [(0..10, 1.5), (10..20, 2.0)] {
        w.ts_ns = start + (sweep_at * 1e9) as i64;
        for i in k {
            w.client = conns[i].0;
            w.send(C, FIN | ACK, 1101, 5201, 0)
                .send(S, FIN | ACK, 5201, 1102, 0)
                .send(C, ACK, 1102, 5202, 0);
            w.ts_ns += 100_000;
        }
    }
    let (_, d) = diag(&w, 1.0);
    let f = d
        .findings
        .iter()
        .find(|f| f.id == FindingId::IdleTimeout)
        .expect("idle_timeout");
    let Details::IdleTimeout(det) = &f.details else {
        panic!("idle details")
    };
    assert!(det.swept && !det.fixed, "{det:?}");
    assert!(f.summary.contains("in sweeps, after ≥ "), "{}", f.summary);
    assert!(f.summary.contains("in 2 bursts"), "{}", f.summary);
}

/// Hand-built reports of connections that carried HTTP (the analyzer fills `http` from
/// the payload; these say what each conversation was).
mod http {
    use super::*;
    use closewait_core::http::{
        HttpConversation, HttpVersion, KeepAliveAdvertised, RequestLine, UnansweredRequest,
    };
    use closewait_core::model::{CloseKind, CloseSignal, Initiator};
    use closewait_core::testutil::ReportBuilder;

    fn line(method: &str, target: &str) -> RequestLine {
        RequestLine {
            method: method.into(),
            target: target.into(),
            version: HttpVersion::Http11,
        }
    }

    /// `requests` answered requests, the last response `idle` s before the FIN at
    /// `fin_at`, the server advertising `timeout`.
    fn conversation(
        requests: u64,
        fin_at: f64,
        idle: f64,
        timeout: Option<u64>,
    ) -> HttpConversation {
        HttpConversation {
            requests,
            responses: requests,
            version: Some(HttpVersion::Http11),
            last_request: Some(line("GET", "/")),
            last_response_persistent: Some(true),
            keep_alive: timeout.map(|t| KeepAliveAdvertised {
                timeout_s: Some(t),
                max: None,
            }),
            unanswered_requests: Some(0),
            last_response_at: Some(fin_at - idle),
            ..HttpConversation::default()
        }
    }

    /// The server closed after `idle` s; nobody answered its FIN.
    fn server_idle_close(id: u64, idle: f64, timeout: Option<u64>) -> ConnectionReport {
        let fin_at = ReportBuilder::new(id).build().end - 0.5;
        ReportBuilder::new(id)
            .unanswered_fin_by_server(0.5)
            .first_close(CloseSignal::Fin, Side::Server, fin_at, None)
            .http(conversation(1, fin_at, idle, timeout))
            .build()
    }

    /// The server closed after `idle` s; the client then wrote `method target` and the
    /// server answered with RST.
    fn request_into_closed(id: u64, method: &str, target: &str, timeout: u64) -> ConnectionReport {
        let fin_at = ReportBuilder::new(id).build().start + 0.3;
        let mut http = conversation(2, fin_at, 2.1, Some(timeout));
        http.last_request = Some(line(method, target));
        http.last_request_at = Some(fin_at + 0.5);
        http.unanswered_requests = Some(1);
        http.last_unanswered_request = Some(UnansweredRequest {
            request: line(method, target),
            idempotent: line(method, target).is_idempotent(),
        });
        let mut r = ReportBuilder::new(id)
            .kind(CloseKind::FinThenRst, Initiator::Server)
            .first_close(CloseSignal::Fin, Side::Server, fin_at, Some(Side::Server))
            .http(http)
            .build();
        r.close.who_failed_to_respond = Some(Side::Client);
        r
    }

    fn diagnosed(reports: &[ConnectionReport]) -> Diagnosis {
        diagnose(reports, &CaptureStats::default())
    }

    #[test]
    fn requests_into_closed_connections_name_the_non_idempotent_ones() {
        let d = diagnosed(&[
            request_into_closed(0, "POST", "/orders", 2),
            request_into_closed(1, "GET", "/status", 2),
            request_into_closed(2, "POST", "/orders", 2),
        ]);
        let late = only(&d, FindingId::LateWriteRst);
        assert!(
            late.summary.starts_with(
                "3 requests (2 non-idempotent: POST /orders) to 10.0.0.2:80 \
                 were written into connections the server had already closed: the client saw a \
                 reset"
            ),
            "{}",
            late.summary
        );
        assert!(late
            .advice
            .contains("2 of these requests cannot be retried safely"));
        assert!(late.advice.contains("evictIdleConnections"));
        assert!(late.advice.contains("Tomcat: keepAliveTimeout"));
        let Details::LateWrite(details) = &late.details else {
            panic!("late write details");
        };
        let http = details.http.as_ref().expect("HTTP requests");
        assert_eq!((http.requests, http.non_idempotent), (3, 2));
    }

    #[test]
    fn server_closing_before_its_advertised_timeout_is_a_warning() {
        let d = diagnosed(&[
            server_idle_close(0, 2.0, Some(15)),
            server_idle_close(1, 2.1, Some(15)),
        ]);
        let advertised = only(&d, FindingId::AdvertisedTimeout);
        assert_eq!(advertised.severity, Severity::Warning);
        assert!(
            advertised.summary.starts_with(
                "10.0.0.2:80 advertises Keep-Alive: timeout=15 but closed 2 of 2 idle \
                 connections before that, after 2.0 s to 2.1 s"
            ),
            "{}",
            advertised.summary
        );
        let Details::AdvertisedTimeout(details) = &advertised.details else {
            panic!("advertised details");
        };
        assert_eq!((details.earlier, details.agrees), (2, 0));
    }

    #[test]
    fn server_keeping_its_advertised_timeout_is_information() {
        let d = diagnosed(&[
            server_idle_close(0, 2.05, Some(2)),
            server_idle_close(1, 2.3, Some(2)),
        ]);
        let advertised = only(&d, FindingId::AdvertisedTimeout);
        assert_eq!(advertised.severity, Severity::Info);
        assert!(
            advertised.summary.contains(
                "after 2.0 s to 2.3 s, as it says; the clients held 2 connections idle past 2 s"
            ),
            "{}",
            advertised.summary
        );
    }

    #[test]
    fn unadvertised_server_timeout_is_said() {
        let d = diagnosed(&[server_idle_close(0, 2.002, None)]);
        let advertised = only(&d, FindingId::AdvertisedTimeout);
        assert!(advertised
            .summary
            .contains("closes idle HTTP connections after 2.0 s without advertising it"));
        assert!(advertised
            .advice
            .contains("nginx: keepalive_timeout's second parameter"));
    }

    #[test]
    fn requests_per_connection_is_a_number() {
        let mut reports = vec![
            server_idle_close(0, 2.0, Some(2)),
            server_idle_close(1, 2.0, Some(2)),
        ];
        let mut busy = server_idle_close(2, 2.0, Some(2));
        busy.http.as_mut().expect("http").requests = 7;
        reports.push(busy);
        let d = diagnosed(&reports);
        let reuse = only(&d, FindingId::ConnectionReuse);
        assert_eq!(
            reuse.summary,
            "9 HTTP requests to 10.0.0.2:80 over 3 connections: 3.00 per connection (at most 7); \
             2 connections carried a single request."
        );
        let Details::ConnectionReuse(details) = &reuse.details else {
            panic!("reuse details");
        };
        assert_eq!(
            (details.single_request, details.single_request_idle_closed),
            (2, 2)
        );
    }
}

mod capture_loss {
    use super::*;
    use closewait_core::http::{GiveUp, GiveUps, HttpConversation, HttpVersion};
    use closewait_core::http_close::HttpCloseReason;
    use closewait_core::model::CloseSignal;
    use closewait_core::testutil::ReportBuilder;

    /// A connection to `server` whose sides sent `captured` payload bytes the capture
    /// holds and `missing` it never saw.
    fn sent(id: u64, server: &str, captured: [u64; 2], missing: [u64; 2]) -> ConnectionReport {
        let mut r = ReportBuilder::new(id).server(server).build();
        r.bytes.client = captured[0];
        r.bytes.server = captured[1];
        r.tcp.client.missing_bytes = missing[0];
        r.tcp.server.missing_bytes = missing[1];
        r
    }

    /// One request read; the server's responses given up at a gap; the server closed.
    fn response_lost(id: u64, missing: u64) -> ConnectionReport {
        let fin_at = ReportBuilder::new(id).build().end - 0.5;
        let http = HttpConversation {
            requests: 1,
            version: Some(HttpVersion::Http11),
            gave_up: GiveUps {
                client: None,
                server: Some(GiveUp::Gap),
            },
            ..HttpConversation::default()
        };
        let mut r = ReportBuilder::new(id)
            .first_close(CloseSignal::Fin, Side::Server, fin_at, None)
            .http(http)
            .build();
        r.bytes.client = 100;
        r.bytes.server = 9_900 - missing;
        r.tcp.server.missing_bytes = missing;
        r
    }

    fn details(f: &Finding) -> &CaptureLossDetails {
        let Details::CaptureLoss(d) = &f.details else {
            panic!("capture_loss details: {f:?}");
        };
        d
    }

    /// Per service: the bytes missing against all the service's bytes, the connections
    /// that lost some; a service that lost nothing has no finding. Past Zeek's 10 % it is a
    /// warning; below, with no HTTP hidden, information.
    #[test]
    fn missing_bytes_are_summed_per_service_against_all_its_bytes() {
        let d = diagnose(
            &[
                sent(0, "10.0.0.2:80", [100, 800], [0, 300]),
                sent(1, "10.0.0.2:80", [100, 1000], [0, 0]),
                sent(2, "10.0.0.3:5432", [500, 500], [0, 0]),
                sent(3, "10.0.0.4:6379", [100, 8000], [0, 50]),
                sent(4, "10.0.0.4:6379", [100, 1000], [0, 0]),
            ],
            &CaptureStats::default(),
        );
        let found: Vec<&Finding> = d
            .findings
            .iter()
            .filter(|f| f.id == FindingId::CaptureLoss)
            .collect();
        assert_eq!(found.len(), 2, "{:?}", ids_of(&d));
        let (web, cache) = (found[0], found[1]);
        assert_eq!(web.severity, Severity::Warning);
        assert_eq!((web.count, web.evidence.clone()), (1, vec![0]));
        let w = details(web);
        assert_eq!(w.server, "10.0.0.2:80".parse().unwrap());
        assert_eq!(w.connections, 2);
        assert_eq!((w.missing_bytes.client, w.missing_bytes.server), (0, 300));
        assert_eq!(
            (w.captured_bytes.client, w.captured_bytes.server),
            (200, 1800)
        );
        // 300 of 2 300 bytes sent: past Zeek's 10 %.
        assert_eq!(w.percent_lost, 13.04);
        assert_eq!(w.connections_missing_bytes, 1);
        assert!(
            web.summary.starts_with(
                "The capture missed 300 B sent by the server on 1 of 2 connections to \
                 10.0.0.2:80 (13.04 % of the bytes sent)."
            ),
            "{}",
            web.summary
        );
        // 50 of 9 250 bytes, and no HTTP hidden: information.
        assert!(details(cache).percent_lost < TOO_MUCH_LOSS_PERCENT);
        assert_eq!(cache.severity, Severity::Info);
        assert_eq!(details(cache).percent_lost, 0.54);
    }

    /// Loss below the threshold that hid why the server closed an HTTP connection (its
    /// response was not captured) is a warning: the close reason is `unknown`.
    #[test]
    fn loss_that_hides_an_http_close_is_a_warning() {
        let lost = response_lost(0, 150);
        assert_eq!(
            lost.close.http.as_ref().map(|c| c.reason),
            Some(HttpCloseReason::Unknown)
        );
        let d = diagnose(&[lost], &CaptureStats::default());
        let f = only(&d, FindingId::CaptureLoss);
        assert_eq!(f.severity, Severity::Warning);
        let n = details(f);
        assert_eq!((n.http_not_read, n.http_close_unknown), (1, 1));
        assert_eq!(n.percent_lost, 1.5);
        assert!(
            f.summary.ends_with(
                "HTTP could not be read to the end on 1 connection: why it was closed cannot \
                 be told."
            ),
            "{}",
            f.summary
        );
        assert!(
            f.facts[1].contains("1 after packets not captured"),
            "{:?}",
            f.facts
        );
        assert!(f.advice.contains("-B 16384"), "{}", f.advice);
        // A warning: no all_clear.
        assert!(!ids_of(&d).contains(&"all_clear"));
    }

    /// HTTP given up at a gap with every packet captured: cut short (the snaplen, or IP
    /// fragments when the capture has them), or begun before the capture. Information,
    /// with advice for the cause.
    #[test]
    fn http_cut_short_without_missing_bytes_names_the_cause() {
        let mut cut = response_lost(0, 0);
        cut.close.http = None;
        let d = diagnose(std::slice::from_ref(&cut), &CaptureStats::default());
        let f = only(&d, FindingId::CaptureLoss);
        assert_eq!(f.severity, Severity::Info);
        assert!(
            f.summary.starts_with(
                "HTTP to 10.0.0.2:80 could not be read to the end on 1 of 1 connection: the \
                 capture holds the packets but not all their bytes."
            ),
            "{}",
            f.summary
        );
        assert!(
            f.facts[0].contains("1 cut short by the snaplen)"),
            "{:?}",
            f.facts
        );
        assert!(f
            .advice
            .starts_with("Capture whole packets: `tcpdump -s 0`"));

        let mut fragmented = CaptureStats::default();
        fragmented
            .packets
            .skipped
            .insert("ip_fragment".to_string(), 3);
        let d = diagnose(std::slice::from_ref(&cut), &fragmented);
        let f = only(&d, FindingId::CaptureLoss);
        assert!(f.facts[0].contains("cut short by the snaplen or in IP fragments"));
        assert!(f.advice.contains("IP fragments"), "{}", f.advice);

        let mut late = cut;
        late.role_inferred = true;
        let d = diagnose(&[late], &CaptureStats::default());
        let f = only(&d, FindingId::CaptureLoss);
        assert!(
            f.facts[0].contains("1 begun before the capture"),
            "{:?}",
            f.facts
        );
        assert_eq!(details(f).began_before_capture, 1);
        assert!(
            f.summary
                .ends_with("on 1 of 1 connection: the capture began after it did."),
            "{}",
            f.summary
        );
        assert!(f.advice.contains("start it before"), "{}", f.advice);
    }

    /// A whole exchange and close, keeping only one side's segments: what a capture point
    /// on one leg of an asymmetric route records.
    fn one_way(keep_client: bool) -> Wire {
        let mut full = Wire::new();
        full.exchange()
            .send(C, FIN | ACK, 1101, 5201, 0)
            .send(S, FIN | ACK, 5201, 1102, 0)
            .send(C, ACK, 1102, 5202, 0);
        let client = full.client;
        let mut w = Wire::new();
        w.ts_ns = full.ts_ns;
        w.segments = full
            .segments
            .into_iter()
            .filter(|seg| (seg.src == client) == keep_client)
            .collect();
        w
    }

    /// One direction captured, with proof the other existed (the client's ACK after its
    /// SYN; the server's data after its SYN,ACK): named, a warning, and left out of every
    /// other finding (the client-only one would otherwise read as an unanswered FIN).
    #[test]
    fn one_direction_is_named_and_left_out_of_the_other_findings() {
        for (keep_client, side) in [(true, Side::Client), (false, Side::Server)] {
            let w = one_way(keep_client);
            let (reports, d) = diag(&w, 1.0);
            assert_eq!(reports[0].captured_one_way(), Some(side));
            // The connection's own explanation says it too (analyze, JSON, diagrams).
            let explained = reports[0].close.explained().to_string();
            let sentence = if keep_client {
                "Only the client's packets were captured, though it completed its handshake: \
                 the server's are missing from the capture, not absent."
            } else {
                "Only the server's packets were captured, though it sent data after its \
                 SYN,ACK: the client's are missing from the capture, not absent."
            };
            assert!(explained.ends_with(sentence), "{explained}");
            assert_eq!(ids_of(&d), ["capture_loss"], "{side:?}");
            let f = &d.findings[0];
            assert_eq!(f.severity, Severity::Warning);
            let n = details(f);
            let expected = if keep_client { (1, 0) } else { (0, 1) };
            assert_eq!((n.one_direction.client, n.one_direction.server), expected);
            assert!(
                f.summary.starts_with(
                    "Only one direction of 1 of 1 connection to 10.77.0.2:8788 was captured"
                ),
                "{}",
                f.summary
            );
            assert!(f.advice.contains("both directions"), "{}", f.advice);
        }
    }

    /// A peer silent without proof that it sent anything is not a capture artefact: a SYN
    /// never answered is a connect timeout, which its own finding reports.
    #[test]
    fn a_silent_peer_without_proof_is_not_one_direction() {
        let mut w = Wire::new();
        w.send(C, SYN, 1000, 0, 0)
            .wait(1.0)
            .send(C, SYN, 1000, 0, 0)
            .wait(2.0)
            .send(C, SYN, 1000, 0, 0);
        let (reports, d) = diag(&w, 5.0);
        assert_eq!(reports[0].captured_one_way(), None);
        assert!(!ids_of(&d).contains(&"capture_loss"), "{:?}", ids_of(&d));
    }
}
