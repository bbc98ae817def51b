//! `closewait diagnose` on the real-kernel captures in `captures/`: each finding is checked
//! against what the scenario was recorded with (its `.truth.json` settings), not against
//! numbers copied from closewait's own output.

use closewait::diagnose::render::Format;
use closewait::diagnose::{
    diagnose, Details, Diagnosis, Finding, FindingId, KeepaliveDetails, LateWriteDetails, Severity,
};
use closewait::diagnose_cmd::{read, run_to, DiagnoseArgs, FailOn};
use closewait::model::Side;
use serde_json::Value;

use crate::support::paths;
use paths::capture;

fn truth(scenario: &str) -> Value {
    let path = capture(&format!("{scenario}.truth.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("truth file")).expect("JSON")
}

fn diagnosis(file: &str) -> Diagnosis {
    let (reports, stats) = read(&[capture(file)], 60.0).expect("capture reads");
    diagnose(&reports, &stats)
}

fn all(d: &Diagnosis, id: FindingId) -> Vec<&Finding> {
    d.findings.iter().filter(|f| f.id == id).collect()
}

fn one(d: &Diagnosis, id: FindingId) -> &Finding {
    let found = all(d, id);
    let ids: Vec<&str> = d.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(found.len(), 1, "expected one {id} among {ids:?}");
    found[0]
}

fn within_5_percent(measured: f64, configured: f64) -> bool {
    (measured - configured).abs() <= 0.05 * configured
}

#[test]
fn pool_leak_many_is_one_close_wait_leak_with_the_right_count_side_and_server() {
    let t = truth("12-pool-leak-many");
    let d = diagnosis("12-pool-leak-many.pcap");
    let leak = one(&d, FindingId::CloseWaitLeak);
    let Details::CloseWaitLeak(det) = &leak.details else {
        panic!("{:?}", leak.details)
    };
    let leaked = t["settings"]["leaked"].as_u64().unwrap();
    assert_eq!(leak.count, leaked);
    assert_eq!(leak.severity, Severity::Error);
    assert_eq!(det.leaking_side, Side::Client);

    // Evidence: exactly the connections the kernel left in CLOSE_WAIT (truth lists them in
    // capture order, which is closewait's id order).
    let conns = t["connections"].as_array().unwrap();
    let expected: Vec<u64> = conns
        .iter()
        .enumerate()
        .filter(|(_, c)| c["expected"]["client_state"] == "CLOSE_WAIT")
        .map(|(i, _)| i as u64)
        .collect();
    assert_eq!(leak.evidence, expected);
    let server = conns[0]["server"].as_str().unwrap();
    let client_host = conns[0]["client"]
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    assert_eq!(det.service.to_string(), server);
    assert_eq!(det.leaking_host.unwrap().to_string(), client_host);
    assert_eq!(det.connections_to_service, conns.len() as u64);

    let configured = t["settings"]["server_idle_timeout_s"].as_f64().unwrap();
    let idle = det.idle_before_fin.as_ref().unwrap();
    assert!(within_5_percent(idle.median, configured), "{idle:?}");
    assert_eq!(
        leak.summary,
        format!(
            "{leaked} of your {} connections to {server} were closed by the server after \
             {configured:.1} s idle and your client never closed them (CLOSE_WAIT).",
            conns.len()
        )
    );
}

#[test]
fn pool_leak_many_infers_the_server_keepalive_timeout_within_5_percent() {
    let t = truth("12-pool-leak-many");
    let configured = t["settings"]["server_idle_timeout_s"].as_f64().unwrap();
    let d = diagnosis("12-pool-leak-many.pcap");
    let idle = one(&d, FindingId::IdleTimeout);
    let Details::IdleTimeout(det) = &idle.details else {
        panic!()
    };
    assert_eq!(det.side, Side::Server);
    assert_eq!(det.samples, t["settings"]["connections"].as_u64().unwrap());
    assert!(within_5_percent(det.seconds, configured), "{det:?}");
    assert!(within_5_percent(det.p10, configured) && within_5_percent(det.p90, configured));
    assert!(det.fixed);

    let mm = one(&d, FindingId::TimeoutMismatch);
    assert_eq!(mm.severity, Severity::Warning);
    assert!(mm.advice.contains(&format!("below {configured:.1} s")));
}

#[test]
fn single_leak_captures_yield_a_leak_finding() {
    for file in ["02-server-idle-close-client-leak.pcap", "15b-loopback.pcap"] {
        let d = diagnosis(file);
        let leak = one(&d, FindingId::CloseWaitLeak);
        assert_eq!(leak.count, 1, "{file}");
        assert_eq!(leak.evidence, vec![0], "{file}");
        let idle = one(&d, FindingId::IdleTimeout);
        let Details::IdleTimeout(det) = &idle.details else {
            panic!()
        };
        assert!(within_5_percent(det.seconds, 1.0), "{file}: {det:?}");
    }
}

#[test]
fn graceful_captures_yield_no_leak_finding() {
    for file in [
        "01-client-closes-first.pcap",
        "04-server-closes-client-follows.pcap",
        "05-simultaneous-close.pcap",
        "11-half-close.pcap",
        "13-http-keepalive-reuse.pcap",
        "14-port-reuse.pcap",
        "15a-pcapng-nanosecond.pcapng",
        "15c-any-sll2.pcap",
        "15d-pcap-nanosecond.pcap",
    ] {
        let d = diagnosis(file);
        assert!(all(&d, FindingId::CloseWaitLeak).is_empty(), "{file}");
        assert_eq!(d.worst(), Some(Severity::Info), "{file}: {:?}", d.findings);
        one(&d, FindingId::AllClear);
    }
}

#[test]
fn http_keepalive_reuse_measures_the_idle_close_not_the_pauses() {
    let t = truth("13-http-keepalive-reuse");
    let configured = t["settings"]["server_idle_timeout_s"].as_f64().unwrap();
    let d = diagnosis("13-http-keepalive-reuse.pcap");
    let idle = one(&d, FindingId::IdleTimeout);
    let Details::IdleTimeout(det) = &idle.details else {
        panic!()
    };
    assert_eq!((det.side, det.samples), (Side::Server, 1));
    assert!(within_5_percent(det.seconds, configured), "{det:?}");
    // The client followed the server's FIN: the mismatch is only informational.
    assert_eq!(one(&d, FindingId::TimeoutMismatch).severity, Severity::Info);
}

fn keepalive_of(d: &Diagnosis) -> &KeepaliveDetails {
    let f = one(d, FindingId::Keepalive);
    match &f.details {
        Details::Keepalive(k) => k,
        other => panic!("{other:?}"),
    }
}

#[test]
fn keepalive_answered_yields_the_idle_setting() {
    let t = truth("10a-keepalive-answered");
    let ka = &t["settings"]["client_keepalive"];
    let d = diagnosis("10a-keepalive-answered.pcap");
    let k = keepalive_of(&d);
    assert_eq!(k.prober, Side::Client);
    assert_eq!(k.probes_sent, k.probes_answered);
    assert!(k.probes_sent >= 3);
    let idle = ka["TCP_KEEPIDLE"].as_f64().unwrap();
    assert!(
        within_5_percent(k.settings.time.unwrap(), idle),
        "{:?}",
        k.settings
    );
    assert_eq!(k.settings.tcp_keepalive_time, ka["TCP_KEEPIDLE"].as_u64());
    // All answered: the interval and count are not visible.
    assert_eq!((k.settings.intvl, k.settings.probes), (None, None));
    assert!(all(&d, FindingId::DeadPeer).is_empty());
    assert_eq!(d.worst(), Some(Severity::Info));
}

#[test]
fn keepalive_unanswered_yields_all_three_settings_and_a_dead_peer() {
    let t = truth("10b-keepalive-unanswered");
    let ka = &t["settings"]["client_keepalive"];
    let d = diagnosis("10b-keepalive-unanswered.pcap");
    let k = keepalive_of(&d);
    let s = &k.settings;
    assert!(
        within_5_percent(s.time.unwrap(), ka["TCP_KEEPIDLE"].as_f64().unwrap()),
        "{s:?}"
    );
    assert!(
        within_5_percent(s.intvl.unwrap(), ka["TCP_KEEPINTVL"].as_f64().unwrap()),
        "{s:?}"
    );
    assert_eq!(s.probes, ka["TCP_KEEPCNT"].as_u64());
    assert_eq!(
        (
            s.tcp_keepalive_time,
            s.tcp_keepalive_intvl,
            s.tcp_keepalive_probes
        ),
        (
            ka["TCP_KEEPIDLE"].as_u64(),
            ka["TCP_KEEPINTVL"].as_u64(),
            ka["TCP_KEEPCNT"].as_u64()
        )
    );
    let dead = one(&d, FindingId::DeadPeer);
    assert_eq!(dead.evidence, vec![0]);
    assert!(all(&d, FindingId::Resets).is_empty());
}

#[test]
fn late_writes_after_the_servers_fin_are_requests_lost() {
    for (file, crossed) in [
        ("03-fin-timeout-then-rst.pcap", 0),
        ("03b-late-write-rst-in-fin-wait-2.pcap", 0),
    ] {
        let d = diagnosis(file);
        let f = one(&d, FindingId::LateWriteRst);
        let Details::LateWrite(det) = &f.details else {
            panic!()
        };
        assert_eq!(det.closer, Side::Server, "{file}");
        assert_eq!(det.late_data_seen, 1, "{file}");
        assert_eq!(det.crossed_fin, crossed, "{file}");
        assert!(all(&d, FindingId::CloseWaitLeak).is_empty(), "{file}");
        assert!(all(&d, FindingId::Resets).is_empty(), "{file}");
    }
    // 03b: the request went 0.3 s after the FIN.
    let d = diagnosis("03b-late-write-rst-in-fin-wait-2.pcap");
    let Details::LateWrite(det) = &one(&d, FindingId::LateWriteRst).details else {
        panic!()
    };
    assert!((det.fin_to_rst.median - 0.3).abs() < 0.01, "{det:?}");
}

#[test]
fn aborts_are_resets_by_the_side_that_sent_them() {
    for (file, side) in [
        ("06-abort-linger-zero.pcap", Side::Client),
        ("07-close-with-unread-data.pcap", Side::Server),
    ] {
        let d = diagnosis(file);
        let f = one(&d, FindingId::Resets);
        let Details::Resets(det) = &f.details else {
            panic!()
        };
        assert_eq!((det.reset_by, det.aborts), (side, 1), "{file}");
        assert!(all(&d, FindingId::IdleTimeout).is_empty(), "{file}");
    }
}

#[test]
fn refused_and_syn_timeout_captures() {
    let d = diagnosis("08-connection-refused.pcap");
    let f = one(&d, FindingId::Refused);
    assert_eq!((f.count, f.severity), (1, Severity::Error));
    let d = diagnosis("09-syn-timeout.pcap");
    let f = one(&d, FindingId::SynTimeout);
    let Details::Failed(det) = &f.details else {
        panic!()
    };
    assert_eq!(det.attempts, 1);
    assert!(det.syns >= 4, "{det:?}");
}

fn run(file: &str, format: Format, fail_on: Option<FailOn>) -> (i32, String) {
    let mut args = DiagnoseArgs::for_files(&[capture(file)]);
    args.format = Some(format);
    args.fail_on = fail_on;
    let mut out = Vec::new();
    let status = run_to(&args, &mut out).expect("runs");
    (status, String::from_utf8(out).expect("UTF-8"))
}

#[test]
fn run_prints_the_verdict_and_fails_on_request() {
    let (status, text) = run("12-pool-leak-many.pcap", Format::Text, Some(FailOn::Error));
    assert_eq!(status, 1);
    assert!(text.contains(
        "ERROR close_wait_leak: 45 of your 50 connections to 10.77.0.2:8788 were closed by the"
    ));
    assert!(text.contains("Your connection pool does not notice server-side closes."));
    let (status, _) = run(
        "01-client-closes-first.pcap",
        Format::Text,
        Some(FailOn::Warning),
    );
    assert_eq!(status, 0);
    let (status, _) = run(
        "06-abort-linger-zero.pcap",
        Format::Text,
        Some(FailOn::Error),
    );
    assert_eq!(status, 0, "a reset is a warning, not an error");
    let (status, _) = run(
        "06-abort-linger-zero.pcap",
        Format::Text,
        Some(FailOn::Warning),
    );
    assert_eq!(status, 1);
}

#[test]
fn run_json_is_findings_with_slugs() {
    let (_, json) = run("12-pool-leak-many.pcap", Format::Json, None);
    let v: Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "close_wait_leak",
            "timeout_mismatch",
            "advertised_timeout",
            "server_time_wait",
            "idle_timeout",
            "connection_reuse"
        ]
    );
    assert_eq!(v["connections"], 50);
    assert_eq!(v["findings"][0]["durations"]["n"], 45);
}

#[test]
fn run_markdown_has_a_mermaid_ladder_per_finding() {
    let (_, md) = run("12-pool-leak-many.pcap", Format::Markdown, None);
    assert_eq!(md.matches("```mermaid").count(), 6);
    assert!(md.contains("Note left of C: CLOSE_WAIT"));
    assert!(md.contains("Note right of S: FIN_WAIT_2"));
}

#[test]
fn missing_capture_is_an_error_naming_it() {
    let args = DiagnoseArgs::for_files(&[capture("no-such.pcap")]);
    let err = run_to(&args, &mut Vec::new()).unwrap_err();
    assert!(format!("{err:#}").contains("no-such.pcap"), "{err:#}");
}

// ---- Real applications: Tomcat 10.1 and an Apache HttpClient 4.5 pool (captures/record-apps).
// Tomcat's NIO poller checks keep-alive timeouts about once a second, so its idle closes come
// at one instant, after the setting plus up to one check interval.

/// Tomcat's poller wakes at least once a second (NioEndpoint's selector timeout).
const TOMCAT_POLL_SECS: f64 = 1.0;

/// The median of `key` over the truth file's connections that carry it.
fn truth_median(t: &Value, key: &str) -> f64 {
    let mut v: Vec<f64> = t["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c[key].as_f64())
        .collect();
    v.sort_by(f64::total_cmp);
    assert!(!v.is_empty(), "no {key} in the truth file");
    v[v.len() / 2]
}

fn truth_count(t: &Value, pred: impl Fn(&Value) -> bool) -> u64 {
    t["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| pred(c))
        .count() as u64
}

fn truth_indexes(t: &Value, pred: impl Fn(&Value) -> bool) -> Vec<u64> {
    let conns = t["connections"].as_array().unwrap();
    (0..conns.len() as u64)
        .filter(|&i| pred(&conns[i as usize]))
        .collect()
}

/// Tomcat closes after its keepAliveTimeout, late by at most one poller interval.
fn is_tomcat_keepalive_close(seconds: f64, t: &Value) -> bool {
    let configured = t["settings"]["server_idle_timeout_s"].as_f64().unwrap();
    seconds >= configured && seconds <= configured + TOMCAT_POLL_SECS
}

/// The durations ("2.0 s") every finding's advice quotes, to check that a diagnosis names
/// one server idle timeout throughout.
fn advised_seconds(d: &Diagnosis) -> Vec<(FindingId, String)> {
    let mut out = Vec::new();
    for f in &d.findings {
        let words: Vec<&str> = f.advice.split_whitespace().collect();
        for w in words.windows(2) {
            let number = w[0].trim_start_matches('(');
            let unit = w[1].trim_end_matches(['.', ')', ',', ';', ':']);
            if unit == "s" && number.parse::<f64>().is_ok() {
                out.push((f.id, format!("{number} s")));
            }
        }
    }
    out
}

/// The one late-write finding: the connections `reset` picks in the truth file, each a
/// request after the server's FIN answered by a bare RST (its socket orphaned), none crossing
/// the FIN.
fn late_writes_reset_by_the_server<'d>(
    d: &'d Diagnosis,
    t: &Value,
    reset: impl Fn(&Value) -> bool + Copy,
    n: u64,
) -> &'d LateWriteDetails {
    let late = one(d, FindingId::LateWriteRst);
    let Details::LateWrite(lw) = &late.details else {
        panic!("{:?}", late.details)
    };
    assert_eq!(late.evidence, truth_indexes(t, reset));
    assert_eq!(truth_count(t, reset), n);
    assert_eq!(
        (
            lw.closer,
            lw.bare_rst,
            lw.rst_ack,
            lw.late_data_seen,
            lw.crossed_fin
        ),
        (Side::Server, n, 0, n, 0)
    );
    lw
}

#[test]
fn httpclient_honouring_keep_alive_answers_tomcats_fin_slowly_without_leaking() {
    let name = "23-tomcat-httpclient-keepalive-honoured";
    let t = truth(name);
    let d = diagnosis(&format!("{name}.pcap"));
    assert!(all(&d, FindingId::CloseWaitLeak).is_empty());
    assert!(
        all(&d, FindingId::AllClear).is_empty(),
        "slow answers are not all clear"
    );

    let mm = one(&d, FindingId::TimeoutMismatch);
    assert_eq!(mm.severity, Severity::Warning);
    let Details::TimeoutMismatch(det) = &mm.details else {
        panic!("{:?}", mm.details)
    };
    let closed = truth_count(&t, |c| c["expected"]["initiator"] == "server");
    let slow = truth_count(&t, |c| c["answer_delay_s"].as_f64() >= Some(0.5));
    assert_eq!(
        (det.server_idle_closes, det.unanswered, det.leaked),
        (closed, 0, 0)
    );
    assert_eq!(det.client_seconds, None);
    assert_eq!(det.slow_answers, slow);
    let delay = det.answer_delay.as_ref().expect("answer delays");
    assert_eq!(delay.n, closed);
    assert!(
        within_5_percent(delay.median, truth_median(&t, "answer_delay_s")),
        "{delay:?}"
    );
    assert!(is_tomcat_keepalive_close(det.server_seconds, &t), "{det:?}");

    // Tomcat's idle closes: all at one poller pass (checks.server_fin_times_s).
    let idle = one(&d, FindingId::IdleTimeout);
    let Details::IdleTimeout(det) = &idle.details else {
        panic!()
    };
    assert_eq!((det.side, det.samples), (Side::Server, closed));
    assert!(within_5_percent(
        det.seconds,
        truth_median(&t, "server_idle_before_fin_s")
    ));
    assert_eq!(
        t["checks"]["server_fin_times_s"].as_array().unwrap().len(),
        1
    );
    assert!(det.swept && !det.fixed, "{det:?}");
    // A sweeping server may close after as little as the shortest idle seen: the advice
    // bounds the clients' timeout by that, not by the median.
    let shortest = format!("below {:.1} s", det.min);
    assert!(idle.advice.contains(&shortest), "{}", idle.advice);
    assert!(mm.advice.contains(&shortest), "{}", mm.advice);
    let quoted = advised_seconds(&d);
    assert!(
        quoted
            .iter()
            .all(|(_, s)| *s == format!("{:.1} s", det.min)),
        "{quoted:?}"
    );
}

#[test]
fn httpclient_ignoring_keep_alive_leaks_close_wait_and_its_next_request_is_reset() {
    let name = "24-tomcat-httpclient-keepalive-ignored";
    let t = truth(name);
    let d = diagnosis(&format!("{name}.pcap"));

    let leak = one(&d, FindingId::CloseWaitLeak);
    let Details::CloseWaitLeak(det) = &leak.details else {
        panic!("{:?}", leak.details)
    };
    let leaked = |c: &Value| c["kernel_end_state"]["client"] == "CLOSE-WAIT";
    assert_eq!(leak.severity, Severity::Error);
    assert_eq!(det.leaking_side, Side::Client);
    assert_eq!(leak.count, truth_count(&t, leaked));
    assert_eq!(leak.evidence, truth_indexes(&t, leaked));
    let idle = det.idle_before_fin.as_ref().unwrap();
    assert!(is_tomcat_keepalive_close(idle.median, &t), "{idle:?}");

    // The request on the stale connection: Tomcat's orphaned FIN_WAIT_2 answered with a bare
    // RST (the client logged NoHttpResponseException).
    assert_eq!(
        t["checks"]["client_exception"],
        "org.apache.http.NoHttpResponseException"
    );
    late_writes_reset_by_the_server(&d, &t, |c| c["expected"]["kind"] == "fin_then_rst", 1);

    let mm = one(&d, FindingId::TimeoutMismatch);
    let Details::TimeoutMismatch(mm) = &mm.details else {
        panic!()
    };
    let closed = truth_count(&t, |c| c["expected"]["first_by"] == "server");
    assert_eq!(
        (mm.unanswered, mm.leaked),
        (closed, truth_count(&t, leaked))
    );
    assert_eq!((mm.answer_delay.as_ref(), mm.slow_answers), (None, 0));
    assert!(is_tomcat_keepalive_close(mm.server_seconds, &t), "{mm:?}");

    // Tomcat's poller sweeps: every finding's advice quotes the idle_timeout finding's
    // bound, the shortest idle seen (not the median the leak or the reset saw).
    let idle = one(&d, FindingId::IdleTimeout);
    let Details::IdleTimeout(idle) = &idle.details else {
        panic!()
    };
    assert!(idle.swept, "{idle:?}");
    let shortest = format!("{:.1} s", idle.min);
    let quoted = advised_seconds(&d);
    for id in [
        FindingId::CloseWaitLeak,
        FindingId::LateWriteRst,
        FindingId::TimeoutMismatch,
        FindingId::IdleTimeout,
    ] {
        assert!(quoted.iter().any(|(f, _)| *f == id), "{id:?}: {quoted:?}");
    }
    assert!(quoted.iter().all(|(_, s)| *s == shortest), "{quoted:?}");
}

/// The truth file and the diagnosis of a capture where nothing is wrong: informational
/// findings only, among them all_clear.
fn all_clear_diagnosis(name: &str) -> (Value, Diagnosis) {
    let d = diagnosis(&format!("{name}.pcap"));
    assert_eq!(d.worst(), Some(Severity::Info), "{name}: {:?}", d.findings);
    one(&d, FindingId::AllClear);
    (truth(name), d)
}

#[test]
fn httpclient_idle_evictor_closes_in_sweeps() {
    let name = "25-tomcat-httpclient-idle-evictor";
    let (t, d) = all_clear_diagnosis(name);

    let idle = one(&d, FindingId::IdleTimeout);
    let Details::IdleTimeout(det) = &idle.details else {
        panic!()
    };
    let setting = t["settings"]["client_max_idle_s"].as_f64().unwrap();
    let sweep = t["settings"]["client_evictor_sleep_s"].as_f64().unwrap();
    assert_eq!(det.side, Side::Client);
    assert_eq!(det.samples, t["settings"]["connections"].as_u64().unwrap());
    assert!(det.swept && !det.fixed, "{det:?}");
    // An evictor closes what has been idle at least its setting, up to one sweep later.
    assert!(det.min >= setting && det.max <= setting + sweep, "{det:?}");
    assert!(within_5_percent(
        det.seconds,
        truth_median(&t, "client_idle_before_fin_s")
    ));
    let sweeps = t["checks"]["client_fin_times_s"].as_array().unwrap().len();
    assert!(sweeps > 1);
    assert!(
        idle.summary
            .contains(&format!("in {sweeps} bursts at one instant each")),
        "{}",
        idle.summary
    );
}

#[test]
fn python_requests_answers_nginx_fin_at_the_next_request() {
    // nginx's keepalive_timeout is a timer per connection (no sweep): the idle close is the
    // setting itself; urllib3 closes the dropped connection only when the next request
    // takes it from the pool.
    let name = "26-nginx-python-requests-late-close";
    let t = truth(name);
    let configured = t["settings"]["server_idle_timeout_s"].as_f64().unwrap();
    let d = diagnosis(&format!("{name}.pcap"));
    assert!(all(&d, FindingId::CloseWaitLeak).is_empty());
    let mm = one(&d, FindingId::TimeoutMismatch);
    assert_eq!(mm.severity, Severity::Warning);
    let Details::TimeoutMismatch(det) = &mm.details else {
        panic!()
    };
    let slow = truth_count(&t, |c| c["answer_delay_s"].as_f64() >= Some(0.5));
    assert_eq!((det.slow_answers, det.unanswered, det.leaked), (slow, 0, 0));
    let delay = det.answer_delay.as_ref().unwrap();
    assert!(within_5_percent(
        delay.median,
        truth_median(&t, "answer_delay_s")
    ));
    let idle = one(&d, FindingId::IdleTimeout);
    let Details::IdleTimeout(det) = &idle.details else {
        panic!()
    };
    assert_eq!(det.side, Side::Server);
    assert!(within_5_percent(det.seconds, configured), "{det:?}");
    assert!(!det.swept, "{det:?}");
}

/// The `http` facts of every connection in a truth file (captures 27 on).
fn truth_http(t: &Value) -> Vec<&Value> {
    t["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["http"])
        .collect()
}

#[test]
fn a_post_and_a_get_written_into_connections_tomcat_closed_are_both_reset() {
    // HttpClient retried the GET and lost the POST (its log); on the wire both are the same
    // late write: a request after the server's FIN, answered by its orphaned socket's bare RST.
    let name = "27-tomcat-httpclient-post-into-closed";
    let t = truth(name);
    assert_eq!(t["checks"]["lost_requests"][0], "POST /orders HTTP/1.1");
    let d = diagnosis(&format!("{name}.pcap"));
    let reset = |c: &Value| !c["http"]["late_write"].is_null();
    let lw = late_writes_reset_by_the_server(&d, &t, reset, 2);
    let mut fin_to_rst: Vec<f64> = t["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| reset(c))
        .map(|c| {
            c["http"]["late_write"]["rst_at_s"].as_f64().unwrap()
                - c["server_fin_at_s"].as_f64().unwrap()
        })
        .collect();
    fin_to_rst.sort_by(f64::total_cmp);
    assert!(within_5_percent(lw.fin_to_rst.min, fin_to_rst[0]), "{lw:?}");
    assert!(within_5_percent(lw.fin_to_rst.max, fin_to_rst[1]), "{lw:?}");
    // the retry's new connection is idle at the end, nothing leaks
    assert!(all(&d, FindingId::CloseWaitLeak).is_empty());
}

#[test]
fn announced_closes_put_time_wait_on_the_server_and_nothing_else() {
    // Tomcat maxKeepAliveRequests 1, nginx keepalive_requests 2: each close is announced by
    // `Connection: close` and made by the server right after its answer.
    for name in [
        "28-tomcat-httpclient-connection-close",
        "29-nginx-python-requests-keepalive-requests",
    ] {
        let (t, d) = all_clear_diagnosis(name);
        let announced = truth_http(&t)
            .iter()
            .filter(|h| h["close"]["announced"] == true && h["close"]["by"] == "server")
            .count() as u64;
        let tw = one(&d, FindingId::ServerTimeWait);
        let Details::ServerTimeWait(det) = &tw.details else {
            panic!()
        };
        let at_end = truth_count(&t, |c| c["kernel_end_state"]["server"] == "TIME-WAIT");
        assert_eq!(
            (det.active_closes, det.closed, det.in_time_wait_at_end),
            (announced, announced, at_end),
            "{name}"
        );
        assert!(all(&d, FindingId::IdleTimeout).is_empty(), "{name}");
    }
}

#[test]
fn http10_closes_are_clean_whoever_closes() {
    let (t, _) = all_clear_diagnosis("30-nginx-curl-http10");
    let by: Vec<&Value> = truth_http(&t).iter().map(|h| &h["close"]["by"]).collect();
    assert_eq!(by, ["server", "client"]);
}

#[test]
fn go_idle_conn_timeout_shorter_than_nginx_closes_first_at_its_setting() {
    let (t, d) = all_clear_diagnosis("31-nginx-go-idle-conn-timeout-shorter");
    let setting = t["settings"]["client_idle_conn_timeout_ms"]
        .as_f64()
        .unwrap()
        / 1000.0;
    let idle = one(&d, FindingId::IdleTimeout);
    let Details::IdleTimeout(det) = &idle.details else {
        panic!()
    };
    assert_eq!((det.side, det.samples), (Side::Client, 1));
    assert!(within_5_percent(det.seconds, setting), "{det:?}");
    assert!(all(&d, FindingId::TimeoutMismatch).is_empty());
}

#[test]
fn go_idle_conn_timeout_longer_than_nginx_answers_its_fin_at_once() {
    // Go's read loop sees the EOF: the client's FIN follows nginx's within a millisecond,
    // so the server closes first but nothing is slow, unanswered or leaked.
    let (t, d) = all_clear_diagnosis("32-nginx-go-idle-conn-timeout-longer");
    let configured = t["settings"]["server_idle_timeout_s"].as_f64().unwrap();
    assert!(truth_median(&t, "answer_delay_s") < 0.001);
    assert!(all(&d, FindingId::CloseWaitLeak).is_empty());
    let mm = one(&d, FindingId::TimeoutMismatch);
    let Details::TimeoutMismatch(mm) = &mm.details else {
        panic!()
    };
    assert_eq!((mm.unanswered, mm.leaked, mm.slow_answers), (0, 0, 0));
    assert!(within_5_percent(mm.server_seconds, configured), "{mm:?}");
    let idle = one(&d, FindingId::IdleTimeout);
    let Details::IdleTimeout(det) = &idle.details else {
        panic!()
    };
    assert_eq!(det.side, Side::Server);
    assert!(
        within_5_percent(det.seconds, configured) && !det.swept,
        "{det:?}"
    );
}

fn capture_loss_of(f: &Finding) -> &closewait::diagnose::CaptureLossDetails {
    let Details::CaptureLoss(d) = &f.details else {
        panic!("{:?}", f.details)
    };
    d
}

/// 29b is 29 with the first connection's first response (150 bytes) removed, as if the
/// capturing host had dropped it (captures/README.md). tshark on 29b: frame 6 `[TCP ACKed
/// unseen segment] Ack=151`; `tcp.len` sums to 580 bytes from the client and 440 from the
/// server. The lost response hid why the server closed that connection: a warning, and no
/// "Nothing wrong".
#[test]
fn a_response_the_capture_dropped_is_capture_loss_that_hides_the_close_reason() {
    let d = diagnosis("29b-nginx-python-requests-response-not-captured.pcap");
    let loss = one(&d, FindingId::CaptureLoss);
    assert_eq!(loss.severity, Severity::Warning);
    assert_eq!((loss.count, loss.evidence.clone()), (1, vec![0]));
    let n = capture_loss_of(loss);
    assert_eq!(n.server.to_string(), "10.77.0.2:8788");
    assert_eq!(n.connections, 2);
    assert_eq!((n.missing_bytes.client, n.missing_bytes.server), (0, 150));
    assert_eq!(
        (n.captured_bytes.client, n.captured_bytes.server),
        (580, 440)
    );
    assert_eq!(n.percent_lost, 12.82); // 150 of 1 170
    assert_eq!((n.http_not_read, n.http_close_unknown), (1, 1));
    assert_eq!(n.began_before_capture, 0);
    assert!(all(&d, FindingId::AllClear).is_empty());
    // The same capture whole (29): nothing missing, nothing said.
    assert!(all(
        &diagnosis("29-nginx-python-requests-keepalive-requests.pcap"),
        FindingId::CaptureLoss
    )
    .is_empty());
}

/// 21 was captured with `-s 96` (capinfos: packet size limit 96 bytes): every packet is
/// there, the heads are cut short. Information, with the snaplen as the cause and its fix.
#[test]
fn a_short_snaplen_is_capture_loss_information_with_its_fix() {
    let d = diagnosis("21-bulk-download-then-close.pcap");
    let loss = one(&d, FindingId::CaptureLoss);
    assert_eq!(loss.severity, Severity::Info);
    let n = capture_loss_of(loss);
    assert_eq!((n.missing_bytes.client, n.missing_bytes.server), (0, 0));
    assert_eq!((n.http_not_read, n.http_close_unknown), (1, 0));
    assert!(
        loss.facts[0].contains("1 cut short by the snaplen"),
        "{:?}",
        loss.facts
    );
    assert!(loss.advice.contains("tcpdump -s 0"), "{}", loss.advice);
}

/// Every other shipped capture was recorded whole: no `capture_loss`.
#[test]
fn captures_recorded_whole_have_no_capture_loss() {
    let dir = paths::root().join("captures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("captures/") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("UTF-8");
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng"))
            || name.starts_with("21-")
            || name.starts_with("29b-")
        {
            continue;
        }
        let d = diagnosis(&name);
        assert!(all(&d, FindingId::CaptureLoss).is_empty(), "{name}");
        checked += 1;
    }
    assert!(checked >= 30, "{checked}");
}

/// Zeek's traces captured on one leg of a route: Zeek's conn.log (tests/data/zeek) is the
/// judge. Every connection whose rows show one side with no packet, and a handshake that
/// proves that side's packets existed (`S` then the originator's ACK or data: the client
/// had the SYN,ACK; `h` then the responder's data: the server had the ACK), is named by
/// `capture_loss` as captured one way, under its service, by the side that was captured;
/// and no other finding reads those connections (before, the client-side trace read
/// "Nothing wrong: 20 unanswered_fin" and the server-side one had two timeout warnings).
#[test]
fn one_way_captures_are_named_as_zeek_shows_them_and_nothing_else_is_concluded() {
    use crate::support::zeek_corpus::{corpus_dir, load_rows};
    use std::collections::BTreeSet;
    let rows = load_rows(&corpus_dir()).expect("expected.jsonl");
    for (trace, captured) in [
        ("ssh__ssh.client-side-half-duplex.pcap", Side::Client),
        ("ssh__ssh.server-side-half-duplex.pcap", Side::Server),
        ("mixed-vlan-mpls.pcap", Side::Client),
    ] {
        // Zeek: (client, server) of each connection captured one way.
        let mut zeek = BTreeSet::new();
        for r in rows.iter().filter(|r| r.trace == trace) {
            let (orig_silent, resp_silent) = (r.orig_pkts == "0", r.resp_pkts == "0");
            let h = r.history.trim_start_matches('^');
            let client_only =
                resp_silent && !orig_silent && h.starts_with('S') && h[1..].contains(['A', 'D']);
            let server_only = orig_silent && !resp_silent && h.starts_with('h') && h.contains('d');
            if client_only || server_only {
                // A flipped row (`^`) already names the originator Zeek settled on.
                zeek.insert((r.orig, r.resp));
            }
        }
        assert!(!zeek.is_empty(), "{trace}");

        let path = corpus_dir().join("traces").join(trace);
        let (reports, stats) = read(&[path], 60.0).expect("trace reads");
        let d = diagnose(&reports, &stats);
        let mut ours = BTreeSet::new();
        for f in all(&d, FindingId::CaptureLoss) {
            let n = capture_loss_of(f);
            let (client_side, server_side) = (n.one_direction.client, n.one_direction.server);
            match captured {
                Side::Client => assert_eq!(server_side, 0, "{trace}"),
                Side::Server => assert_eq!(client_side, 0, "{trace}"),
            }
            assert_eq!(f.severity, Severity::Warning);
            for id in &f.evidence {
                let r = &reports[*id as usize];
                assert_eq!(r.id, *id);
                ours.insert((r.client, r.server));
            }
        }
        assert_eq!(ours, zeek, "{trace}");
        // Each connection's explanation says so, and no other's does.
        for r in &reports {
            let explained = r.close.explained().to_string();
            assert_eq!(
                explained.contains("packets were captured, though"),
                ours.contains(&(r.client, r.server)),
                "{trace} {}: {explained}",
                r.id
            );
        }
        // Nothing else is concluded from those connections.
        let one_way: BTreeSet<u64> = all(&d, FindingId::CaptureLoss)
            .iter()
            .flat_map(|f| f.evidence.iter().copied())
            .collect();
        for f in d.findings.iter().filter(|f| f.id != FindingId::CaptureLoss) {
            assert!(
                f.evidence.iter().all(|id| !one_way.contains(id)),
                "{trace}: {} reads a one-way connection",
                f.id
            );
        }
    }
}
