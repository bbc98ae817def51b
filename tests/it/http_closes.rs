//! The HTTP side of closes, findings, ladders and tables on the real-application captures
//! 23–32 (Tomcat 10.1 + Apache HttpClient 4.5, nginx with Python requests, curl and Go):
//! each assertion is what the scenario was recorded with (its `.truth.json` settings and the
//! application's own log in captures/README.md), not numbers copied from closewait's output.

use closewait::analyze::{analyze, AnalyzeOptions};
use closewait::capture::InputSpec;
use closewait::diagnose::{diagnose, Details, Diagnosis, Finding, FindingId, Severity};
use closewait::model::{CloseKind, ConnectionReport, Side};
use closewait_core::http_close::{HttpClose, HttpCloseReason, VersusAdvertised};
use serde_json::Value;

use crate::support::cli::stdout_of;
use crate::support::paths::capture;

const SERVER: &str = "10.77.0.2:8788";

fn truth(scenario: &str) -> Value {
    let path = capture(&format!("{scenario}.truth.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("truth file")).expect("JSON")
}

fn reports(scenario: &str) -> Vec<ConnectionReport> {
    let mut reports = Vec::new();
    analyze(
        &[InputSpec::Path(capture(&format!("{scenario}.pcap")))],
        &AnalyzeOptions::default(),
        &mut |r| reports.push(r),
    )
    .expect("capture reads");
    reports.sort_by_key(|r| r.id);
    reports
}

fn diagnosis(scenario: &str) -> Diagnosis {
    let (reports, stats) =
        closewait::diagnose_cmd::read(&[capture(&format!("{scenario}.pcap"))], 60.0)
            .expect("capture reads");
    diagnose(&reports, &stats)
}

fn one(d: &Diagnosis, id: FindingId) -> &Finding {
    let found: Vec<&Finding> = d.findings.iter().filter(|f| f.id == id).collect();
    let ids: Vec<&str> = d.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(found.len(), 1, "expected one {id} among {ids:?}");
    found[0]
}

fn http_close(r: &ConnectionReport) -> &HttpClose {
    r.close
        .http
        .as_deref()
        .unwrap_or_else(|| panic!("connection {} has no close.http", r.id))
}

/// The truth's `server_idle_before_fin_s` of the connection with `r`'s client address.
fn truth_idle(t: &Value, r: &ConnectionReport, key: &str) -> f64 {
    t["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .find(|c| c["client"] == r.client.to_string())
        .and_then(|c| c[key].as_f64())
        .unwrap_or_else(|| panic!("truth has {key} for {}", r.client))
}

#[test]
fn tomcat_honoured_keep_alive_closes_are_idle_timeouts_that_agree_with_timeout_2() {
    let t = truth("23-tomcat-httpclient-keepalive-honoured");
    let reports = reports("23-tomcat-httpclient-keepalive-honoured");
    assert_eq!(reports.len(), 16);
    let (closed, open): (Vec<_>, Vec<_>) = reports
        .iter()
        .partition(|r| r.close.kind == CloseKind::Graceful);
    assert_eq!((closed.len(), open.len()), (8, 8));
    for r in &closed {
        let http = http_close(r);
        assert_eq!(http.reason, HttpCloseReason::IdleTimeout, "{}", r.id);
        assert_eq!(http.closed_by, Side::Server);
        assert_eq!(http.advertised_timeout, Some(2));
        assert_eq!(http.versus_advertised, Some(VersusAdvertised::Agrees));
        let idle = http.idle_after_response.expect("idle measured");
        let expected = truth_idle(&t, r, "server_idle_before_fin_s");
        assert!((idle - expected).abs() < 0.01, "{idle} vs {expected}");
        let text = r.close.explained().to_string();
        assert!(
            text.contains("it advertised Keep-Alive: timeout=2, which agrees."),
            "{text}"
        );
    }
    for r in &open {
        assert_eq!(r.close.http, None, "an open connection has no close reason");
        assert_eq!(r.http.as_ref().map(|h| h.requests), Some(1));
    }

    let d = diagnosis("23-tomcat-httpclient-keepalive-honoured");
    let advertised = one(&d, FindingId::AdvertisedTimeout);
    assert_eq!(advertised.severity, Severity::Info);
    let Details::AdvertisedTimeout(a) = &advertised.details else {
        panic!("{:?}", advertised.details)
    };
    assert_eq!(a.advertised, Some(2));
    assert_eq!(a.advertised_values.get(&2), Some(&16));
    assert_eq!((a.agrees, a.earlier, a.later), (8, 0, 0));
    assert_eq!(a.held_past_advertised, 8);
    assert_eq!(a.requests_hit_closed, 0);
    let reuse = one(&d, FindingId::ConnectionReuse);
    let Details::ConnectionReuse(u) = &reuse.details else {
        panic!("{:?}", reuse.details)
    };
    // Two rounds of 8 concurrent requests, 4.5 s apart: the first round's connections
    // expired (2 s) before the second, so each connection carried one request.
    assert_eq!(
        (u.connections, u.requests, u.max_per_connection),
        (16, 16, 1)
    );
    assert_eq!(u.single_request_idle_closed, 8);
}

#[test]
fn request_into_tomcats_closed_connection_is_named_with_its_method() {
    let t = truth("24-tomcat-httpclient-keepalive-ignored");
    let reports = reports("24-tomcat-httpclient-keepalive-ignored");
    let hit: Vec<&ConnectionReport> = reports
        .iter()
        .filter(|r| r.close.kind == CloseKind::FinThenRst)
        .collect();
    assert_eq!(hit.len(), 1, "one stale connection was reused");
    let http = http_close(hit[0]);
    assert_eq!(http.reason, HttpCloseReason::RequestHitClosedConnection);
    let request = http.request.as_ref().expect("the request");
    assert_eq!(
        (
            request.request.method.as_str(),
            request.request.target.as_str()
        ),
        ("GET", "/?ms=300")
    );
    assert!(request.idempotent);
    // The pool sent it 4 s after the first round, 2.0 s after Tomcat's FIN.
    let after = http.written_after_close.expect("measured");
    assert!((after - 2.0).abs() < 0.05, "{after}");
    let text = hit[0].close.explained().to_string();
    assert!(
        text.contains(
            "HTTP: the client wrote GET /?ms=300 into the connection 2.000 s after the server \
             had closed it and the server answered with RST: the request was lost (GET is \
             idempotent: a client may retry it)."
        ),
        "{text}"
    );
    for r in reports
        .iter()
        .filter(|r| r.close.kind == CloseKind::UnansweredFin)
    {
        let http = http_close(r);
        assert_eq!(http.reason, HttpCloseReason::IdleTimeout);
        assert_eq!(http.versus_advertised, Some(VersusAdvertised::Agrees));
        let expected = truth_idle(&t, r, "server_idle_before_fin_s");
        let idle = http.idle_after_response.expect("idle");
        assert!((idle - expected).abs() < 0.01, "{idle} vs {expected}");
    }

    let d = diagnosis("24-tomcat-httpclient-keepalive-ignored");
    let late = one(&d, FindingId::LateWriteRst);
    assert!(
        late.summary.starts_with(&format!(
            "1 request (GET /?ms=300) to {SERVER} was written into a connection the server had \
             already closed: the client saw a reset"
        )),
        "{}",
        late.summary
    );
    for knob in [
        "evictIdleConnections",
        "IdleConnTimeout",
        "Tomcat: keepAliveTimeout",
    ] {
        assert!(late.advice.contains(knob), "{knob}: {}", late.advice);
    }
    let Details::LateWrite(l) = &late.details else {
        panic!("{:?}", late.details)
    };
    let requests = l.http.as_ref().expect("HTTP requests");
    assert_eq!((requests.requests, requests.non_idempotent), (1, 0));

    let advertised = one(&d, FindingId::AdvertisedTimeout);
    assert_eq!(advertised.severity, Severity::Warning);
    let Details::AdvertisedTimeout(a) = &advertised.details else {
        panic!("{:?}", advertised.details)
    };
    assert_eq!(
        (a.advertised, a.agrees, a.requests_hit_closed),
        (Some(2), 6, 1)
    );
    let reuse = one(&d, FindingId::ConnectionReuse);
    let Details::ConnectionReuse(u) = &reuse.details else {
        panic!("{:?}", reuse.details)
    };
    // 6 connections for the first round, one of them reused for the second request.
    assert_eq!((u.connections, u.requests, u.max_per_connection), (6, 7, 2));
}

#[test]
fn idle_evictor_closes_are_the_clients_own_idle_timeouts_below_tomcats_15_s() {
    let t = truth("25-tomcat-httpclient-idle-evictor");
    let reports = reports("25-tomcat-httpclient-idle-evictor");
    assert_eq!(reports.len(), 20);
    for r in &reports {
        let http = http_close(r);
        assert_eq!(http.reason, HttpCloseReason::IdleTimeout, "{}", r.id);
        assert_eq!(http.closed_by, Side::Client);
        assert_eq!(http.advertised_timeout, Some(15));
        assert_eq!(http.versus_advertised, None);
        let expected = truth_idle(&t, r, "client_idle_before_fin_s");
        let idle = http.idle_after_response.expect("idle");
        assert!((idle - expected).abs() < 0.01, "{idle} vs {expected}");
    }
    let d = diagnosis("25-tomcat-httpclient-idle-evictor");
    let advertised = one(&d, FindingId::AdvertisedTimeout);
    assert_eq!(advertised.severity, Severity::Info);
    assert!(
        advertised.summary.starts_with(&format!(
            "{SERVER} advertises Keep-Alive: timeout=15; no idle connection reached it"
        )),
        "{}",
        advertised.summary
    );
    let Details::AdvertisedTimeout(a) = &advertised.details else {
        panic!("{:?}", advertised.details)
    };
    let client_idle = a.client_idle.as_ref().expect("client idle closes");
    assert_eq!(client_idle.n, 20);
    // The evictor (1 s max idle, a sweep each second) closes after 1.0 s to 2.0 s.
    assert!(
        client_idle.min >= 1.0 && client_idle.max < 2.0,
        "{client_idle:?}"
    );
}

#[test]
fn nginx_closes_after_its_keepalive_timeout_without_advertising_it() {
    let t = truth("26-nginx-python-requests-late-close");
    let reports = reports("26-nginx-python-requests-late-close");
    assert_eq!(reports.len(), 2);
    let http = http_close(&reports[0]);
    assert_eq!(http.reason, HttpCloseReason::IdleTimeout);
    assert_eq!(http.closed_by, Side::Server);
    assert_eq!(
        http.advertised_timeout, None,
        "nginx sent no Keep-Alive header"
    );
    let timeout = t["settings"]["server_idle_timeout_s"]
        .as_f64()
        .expect("setting");
    let idle = http.idle_after_response.expect("idle");
    assert!(idle >= timeout && idle < timeout + 0.05, "{idle}");
    assert!(reports[0]
        .close
        .explained()
        .to_string()
        .ends_with("its idle (keep-alive) timeout; it advertised no Keep-Alive timeout."));
    assert_eq!(reports[1].close.http, None);

    let d = diagnosis("26-nginx-python-requests-late-close");
    let advertised = one(&d, FindingId::AdvertisedTimeout);
    assert!(
        advertised.summary.starts_with(&format!(
            "{SERVER} closes idle HTTP connections after 2.0 s without advertising it"
        )),
        "{}",
        advertised.summary
    );
    assert!(advertised
        .advice
        .contains("nginx: keepalive_timeout's second parameter"));
}

#[test]
fn ladder_of_the_stale_request_shows_its_request_line_and_the_earlier_status() {
    let reports = reports("24-tomcat-httpclient-keepalive-ignored");
    let stale = reports
        .iter()
        .find(|r| r.close.kind == CloseKind::FinThenRst)
        .expect("the stale connection");
    let path = capture("24-tomcat-httpclient-keepalive-ignored.pcap");
    let ladder = stdout_of([
        "diagram",
        path.to_str().expect("UTF-8 path"),
        "--conn",
        &stale.id.to_string(),
        "-f",
        "text",
    ]);
    let requests = ladder.matches("GET /?ms=300 HTTP/1.1").count();
    assert_eq!(
        requests, 2,
        "the first request and the stale one:\n{ladder}"
    );
    assert_eq!(ladder.matches("HTTP/1.1 200").count(), 1, "{ladder}");
}

#[test]
fn analyze_table_counts_requests_per_connection() {
    let path = capture("24-tomcat-httpclient-keepalive-ignored.pcap");
    let table = stdout_of(["analyze", path.to_str().expect("UTF-8 path")]);
    let mut lines = table.lines();
    let header = lines.next().expect("header");
    assert!(header.ends_with("idle before close  requests"), "{header}");
    let counts: Vec<&str> = lines
        .take(6)
        .map(|l| l.split_whitespace().last().expect("cell"))
        .collect();
    let twos = counts.iter().filter(|c| **c == "2").count();
    let ones = counts.iter().filter(|c| **c == "1").count();
    assert_eq!((ones, twos), (5, 1), "{table}");
}

/// Captures 27–32 (Tomcat, nginx, HttpClient, requests, curl, Go): each connection's HTTP
/// facts in its `.truth.json` come from tshark and the client's own log (captures/README.md),
/// and closewait's reading of the reassembled streams must say the same: requests,
/// responses, status codes, the advertised keep-alive, and why the connection closed,
/// down to the request that met the server's RST.
#[test]
fn http_facts_of_captures_27_to_32_match_their_truth() {
    let scenarios = [
        "27-tomcat-httpclient-post-into-closed",
        "28-tomcat-httpclient-connection-close",
        "29-nginx-python-requests-keepalive-requests",
        "30-nginx-curl-http10",
        "31-nginx-go-idle-conn-timeout-shorter",
        "32-nginx-go-idle-conn-timeout-longer",
    ];
    let mut checked = 0;
    for scenario in scenarios {
        let t = truth(scenario);
        let reports = reports(scenario);
        for c in t["connections"].as_array().expect("connections") {
            let Some(want) = c.get("http").filter(|h| !h.is_null()) else {
                continue;
            };
            let client = c["client"].as_str().expect("client");
            let at = format!("{scenario} {client}");
            let r = reports
                .iter()
                .find(|r| r.client.to_string() == client)
                .unwrap_or_else(|| panic!("{at}: no such connection"));
            let http = r.http.as_deref().unwrap_or_else(|| panic!("{at}: no http"));
            assert_eq!(Some(http.requests), want["requests"].as_u64(), "{at}");
            assert_eq!(Some(http.responses), want["responses"].as_u64(), "{at}");
            let mut statuses = std::collections::BTreeMap::new();
            for s in want["statuses"].as_array().expect("statuses") {
                *statuses
                    .entry(s.as_u64().expect("status") as u16)
                    .or_insert(0u64) += 1;
            }
            assert_eq!(http.status_codes, statuses, "{at}");
            let advertised = want["keep_alive_advertised"]
                .as_str()
                .and_then(|k| k.strip_prefix("timeout="))
                .map(|n| n.parse::<u64>().expect("seconds"));
            assert_eq!(
                http.keep_alive.and_then(|k| k.timeout_s),
                advertised,
                "{at}"
            );

            let close = &want["close"];
            if close.is_null() {
                continue; // still open at the capture's end
            }
            let got = http_close(r);
            let late_write = &want["late_write"];
            let expected = if !late_write.is_null() {
                HttpCloseReason::RequestHitClosedConnection
            } else if close["announced"] == true {
                HttpCloseReason::Announced
            } else {
                match close["reason"].as_str().expect("reason") {
                    "server_idle_timeout" | "client_idle_timeout" => HttpCloseReason::IdleTimeout,
                    _ => HttpCloseReason::Neither, // curl exiting right after its answer
                }
            };
            assert_eq!(got.reason, expected, "{at}");
            let closed_by = match close["by"].as_str().expect("by") {
                "server" => Side::Server,
                _ => Side::Client,
            };
            assert_eq!(got.closed_by, closed_by, "{at}");
            if !late_write.is_null() {
                let hit = got.request.as_ref().expect("the request that met the RST");
                let line = format!(
                    "{} {} {}",
                    hit.request.method,
                    hit.request.target,
                    hit.request.version.as_str()
                );
                assert_eq!(Some(line.as_str()), late_write["request"].as_str(), "{at}");
                assert_eq!(
                    Some(hit.idempotent),
                    late_write["idempotent"].as_bool(),
                    "{at}"
                );
            }
            checked += 1;
        }
    }
    // 27: 2 late writes (one a POST); 28–30: 7 closes (6 announced, curl's exit); 31, 32:
    // an idle timeout each way.
    assert_eq!(checked, 11);
}
