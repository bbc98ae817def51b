//! Why a connection that carried HTTP/1.x closed, in HTTP's terms.
//!
//! Why: `classify` says how TCP ended (who sent the first FIN, whether a RST followed) but
//! not whether anybody *meant* it. HTTP says that in its heads: a `Connection: close` (or an
//! HTTP/1.0 response without keep-alive) announces the close (RFC 9112 §9.6); a server that
//! closes a persistent connection some time after its last response, with nothing
//! announced, ran its idle (keep-alive) timeout, which it may have advertised in
//! `Keep-Alive: timeout=N`; and a request written into a connection the server had already
//! closed is answered by RST and lost unless the client retries it, which it may do only
//! for an idempotent method (RFC 9110 §9.2.2).
//!
//! What it does: [`judge`] reads one connection's close verdict ([`Close`]) and its
//! [`HttpConversation`] and returns an [`HttpClose`], kept in the verdict
//! (`close.http`) and worded in its explanation (`explain`).
//!
//! What it may not do: re-read packets or guess. Times are those of the segments that
//! completed each head, as the capture saw them; from the client's side of the network
//! the server's idle time is measured one round trip short or long at most, hence the
//! tolerances of [`VersusAdvertised`].

use serde::Serialize;

use crate::http::{GiveUp, HttpConversation, HttpVersion, UnansweredRequest};
use crate::model::{Close, CloseKind, CloseSignal, PerSide, Side};

/// Below this many seconds between the last response and the close, the close came "right
/// after the exchange" and is not an idle timeout (the same threshold diagnose's
/// `idle_timeout` uses).
pub const MIN_IDLE_SECS: f64 = 0.1;

/// A server closing this much earlier than it advertised breaks its promise (the capture's
/// own timing error is far smaller: one-way delays cancel out, see the module doc).
pub const EARLIER_TOLERANCE_SECS: f64 = 0.1;

/// A server closing up to this much later than it advertised still agrees with it: Tomcat's
/// NIO poller checks keep-alive timeouts about once a second, so it closes after N to N + 1 s.
pub const LATER_TOLERANCE_SECS: f64 = 1.1;

/// What the HTTP conversation says about a close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpCloseReason {
    /// The last exchange said the connection would not persist (see [`Announcement`]).
    Announced,
    /// The side that closed did so with a FIN at least [`MIN_IDLE_SECS`] after the last
    /// response, with no request outstanding and nothing announced (the whole conversation
    /// read): its idle (keep-alive) timeout.
    IdleTimeout,
    /// The server closed (FIN), the client then wrote a request into the connection and the
    /// server answered it with RST: the request was lost.
    RequestHitClosedConnection,
    /// None of these (a close right after a response, with a request outstanding, before
    /// any response, or an abort: RST first), with the whole conversation read.
    Neither,
    /// Part of the conversation was not read (a direction gave up: bytes missing from the
    /// capture, or bytes that are not HTTP/1.x, see [`HttpConversation::gave_up`]) and what
    /// was read proves neither an announced close nor a request that met a closed
    /// connection: a head that was not read may have announced the close, or been a
    /// request still waiting, so neither an idle timeout nor `Neither` is claimed.
    Unknown,
}

impl HttpCloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpCloseReason::Announced => "announced",
            HttpCloseReason::IdleTimeout => "idle_timeout",
            HttpCloseReason::RequestHitClosedConnection => "request_hit_closed_connection",
            HttpCloseReason::Neither => "neither",
            HttpCloseReason::Unknown => "unknown",
        }
    }
}

/// Which head announced a close (RFC 9112 §9.3, §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Announcement {
    /// `Connection: close` on the last response.
    ResponseConnectionClose,
    /// An HTTP/1.0 last response without `Connection: keep-alive`.
    ResponseHttp10,
    /// `Connection: close` on the last request (the server then closes after answering).
    RequestConnectionClose,
}

impl Announcement {
    /// The JSON spelling (`close.http.announcement`), also the Parquet column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Announcement::ResponseConnectionClose => "response_connection_close",
            Announcement::ResponseHttp10 => "response_http10",
            Announcement::RequestConnectionClose => "request_connection_close",
        }
    }
}

/// How a server's idle close compares with the `Keep-Alive: timeout=N` it advertised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersusAdvertised {
    /// Within N − [`EARLIER_TOLERANCE_SECS`] … N + [`LATER_TOLERANCE_SECS`].
    Agrees,
    /// Before N: a client trusting the advertisement writes into closed connections.
    Earlier,
    /// Well after N: harmless for clients that honour N, but N is not the real timeout.
    Later,
}

impl VersusAdvertised {
    /// The JSON spelling (`close.http.versus_advertised`), also the Parquet column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            VersusAdvertised::Agrees => "agrees",
            VersusAdvertised::Earlier => "earlier",
            VersusAdvertised::Later => "later",
        }
    }

    /// The comparison of an observed idle close after `idle` seconds with `advertised`.
    pub fn of(idle: f64, advertised: u64) -> VersusAdvertised {
        let advertised = advertised as f64;
        if idle < advertised - EARLIER_TOLERANCE_SECS {
            VersusAdvertised::Earlier
        } else if idle > advertised + LATER_TOLERANCE_SECS {
            VersusAdvertised::Later
        } else {
            VersusAdvertised::Agrees
        }
    }
}

/// The HTTP side of one close verdict: JSON `close.http`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpClose {
    pub reason: HttpCloseReason,
    /// Who sent the first FIN or RST.
    pub closed_by: Side,
    /// For `announced`: which head said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announcement: Option<Announcement>,
    /// Seconds from the last response head to the first FIN or RST; `null` when no
    /// response came before the close.
    pub idle_after_response: Option<f64>,
    /// The server's advertised `Keep-Alive: timeout`, seconds.
    pub advertised_timeout: Option<u64>,
    /// For a server's idle close (`idle_timeout`, or the close a request then hit) with an
    /// advertised timeout: how the two compare.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versus_advertised: Option<VersusAdvertised>,
    /// For `request_hit_closed_connection`: the request the RST answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<UnansweredRequest>,
    /// For `request_hit_closed_connection`: seconds from the server's FIN to that request
    /// (negative when the request left before the FIN arrived: they crossed on the wire).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_after_close: Option<f64>,
    /// For `unknown`: per side, why its messages stopped being read (`None`: read to the
    /// end), from [`HttpConversation::gave_up`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<PerSide<Option<GiveUp>>>,
}

/// Seconds between two epoch times, to the microsecond (a capture's resolution), so the
/// JSON carries no float noise.
fn between(from: f64, to: f64) -> f64 {
    ((to - from) * 1e6).round() / 1e6
}

/// What `http` says about `close`; `None` when the connection carried no HTTP/1.x or has
/// not closed (no FIN or RST).
pub fn judge(close: &Close, http: &HttpConversation) -> Option<HttpClose> {
    if !http.is_http() {
        return None;
    }
    let (closed_by, closed_at) = (close.first_by?, close.first_at?);
    let idle_after_response = http
        .last_response_at
        .filter(|&at| at <= closed_at)
        .map(|at| between(at, closed_at));
    let advertised_timeout = http.keep_alive.and_then(|k| k.timeout_s);
    let versus_advertised = match (closed_by, idle_after_response, advertised_timeout) {
        (Side::Server, Some(idle), Some(advertised)) if idle >= MIN_IDLE_SECS => {
            Some(VersusAdvertised::of(idle, advertised))
        }
        _ => None,
    };
    let mut verdict = HttpClose {
        reason: HttpCloseReason::Neither,
        closed_by,
        announcement: None,
        idle_after_response,
        advertised_timeout,
        versus_advertised: None,
        request: None,
        written_after_close: None,
        unread: None,
    };
    // The server sent FIN first and later reset the connection, and the last request was
    // never answered: Linux answers data for a socket its application has closed with RST
    // (RFC 9293 §3.10.7.4 for a closed socket's orphan, `TCPAbortOnData`), so that request
    // met a closed connection.
    let server_closed_then_reset = close.kind == CloseKind::FinThenRst
        && close.first == Some(CloseSignal::Fin)
        && closed_by == Side::Server
        && close.rst_by == Some(Side::Server);
    if let (true, Some(request)) = (server_closed_then_reset, &http.last_unanswered_request) {
        verdict.reason = HttpCloseReason::RequestHitClosedConnection;
        verdict.versus_advertised = versus_advertised;
        verdict.request = Some(request.clone());
        verdict.written_after_close = http.last_request_at.map(|at| between(closed_at, at));
        return Some(verdict);
    }
    // RFC 9112 §9.3: the connection does not persist after a response with `close`, or an
    // HTTP/1.0 response without `keep-alive`; §9.6: a client that sends `close` "MUST NOT
    // send further requests on that connection" and the server closes after answering.
    verdict.announcement = if http.last_response_persistent == Some(false) {
        Some(
            if http.last_response_says_close || http.version != Some(HttpVersion::Http10) {
                Announcement::ResponseConnectionClose
            } else {
                Announcement::ResponseHttp10
            },
        )
    } else if http.last_request_says_close {
        Some(Announcement::RequestConnectionClose)
    } else {
        None
    };
    if verdict.announcement.is_some() {
        verdict.reason = HttpCloseReason::Announced;
        return Some(verdict);
    }
    // An abort (RST first) is not an idle timeout even after idleness: TCP keep-alive
    // giving up on a dead peer, or a linger-0 close, say nothing about HTTP's timers.
    // "Nothing outstanding" and "nothing announced" are claims about every head: with a
    // direction given up, a head that was not read may have been a request still waiting,
    // or announced the close. Neither an idle timeout nor `neither` is then proved.
    if http.gave_up.any() {
        verdict.reason = HttpCloseReason::Unknown;
        verdict.unread = Some(PerSide {
            client: http.gave_up.client,
            server: http.gave_up.server,
        });
        return Some(verdict);
    }
    let nothing_outstanding = http.unanswered_requests == Some(0);
    let fin_first = close.first == Some(CloseSignal::Fin);
    if fin_first
        && nothing_outstanding
        && idle_after_response.is_some_and(|idle| idle >= MIN_IDLE_SECS)
    {
        verdict.reason = HttpCloseReason::IdleTimeout;
        verdict.versus_advertised = versus_advertised;
    }
    Some(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{KeepAliveAdvertised, RequestLine};
    use crate::model::{Explanation, Initiator};

    const FIN_AT: f64 = 1000.0;

    fn close_by(kind: CloseKind, first_by: Side, rst_by: Option<Side>) -> Close {
        Close {
            kind,
            initiator: Initiator::from(first_by),
            first: Some(CloseSignal::Fin),
            first_by: Some(first_by),
            first_at: Some(FIN_AT),
            first_frame: Some(10),
            idle_before_close: None,
            rst_by,
            who_failed_to_respond: None,
            waiting_since: None,
            waiting_for: None,
            explanation: Explanation::Open,
            http: None,
            captured_one_way: None,
        }
    }

    fn get(target: &str) -> RequestLine {
        RequestLine {
            method: "GET".into(),
            target: target.into(),
            version: HttpVersion::Http11,
        }
    }

    /// One keep-alive exchange answered at `FIN_AT - idle`, Tomcat's `Keep-Alive:
    /// timeout=2` on it.
    fn kept_alive(idle: f64) -> HttpConversation {
        HttpConversation {
            requests: 1,
            responses: 1,
            version: Some(HttpVersion::Http11),
            first_request: Some(get("/")),
            last_request: Some(get("/")),
            last_response_persistent: Some(true),
            keep_alive: Some(KeepAliveAdvertised {
                timeout_s: Some(2),
                max: None,
            }),
            unanswered_requests: Some(0),
            first_request_at: Some(FIN_AT - idle - 0.3),
            last_request_at: Some(FIN_AT - idle - 0.3),
            last_response_at: Some(FIN_AT - idle),
            last_status: Some(200),
            ..HttpConversation::default()
        }
    }

    #[test]
    fn tomcat_closes_after_its_advertised_timeout_is_an_agreeing_idle_timeout() {
        let close = close_by(CloseKind::Graceful, Side::Server, None);
        let verdict = judge(&close, &kept_alive(2.26)).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::IdleTimeout);
        assert_eq!(verdict.idle_after_response, Some(2.26));
        assert_eq!(verdict.advertised_timeout, Some(2));
        assert_eq!(verdict.versus_advertised, Some(VersusAdvertised::Agrees));
    }

    #[test]
    fn server_closing_before_its_advertised_timeout_disagrees() {
        let close = close_by(CloseKind::UnansweredFin, Side::Server, None);
        let verdict = judge(&close, &kept_alive(1.0)).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::IdleTimeout);
        assert_eq!(verdict.versus_advertised, Some(VersusAdvertised::Earlier));
        let late = judge(&close, &kept_alive(5.0)).expect("closed HTTP");
        assert_eq!(late.versus_advertised, Some(VersusAdvertised::Later));
    }

    #[test]
    fn client_pool_closing_idle_connection_is_an_idle_timeout_without_comparison() {
        let close = close_by(CloseKind::Graceful, Side::Client, None);
        let verdict = judge(&close, &kept_alive(1.3)).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::IdleTimeout);
        assert_eq!(verdict.closed_by, Side::Client);
        assert_eq!(verdict.versus_advertised, None);
    }

    #[test]
    fn late_post_answered_by_rst_hit_a_closed_connection() {
        let close = close_by(CloseKind::FinThenRst, Side::Server, Some(Side::Server));
        let post = RequestLine {
            method: "POST".into(),
            target: "/orders".into(),
            version: HttpVersion::Http11,
        };
        let mut http = kept_alive(2.15);
        http.requests = 2;
        http.last_request = Some(post.clone());
        http.last_request_at = Some(FIN_AT + 2.0);
        http.unanswered_requests = Some(1);
        http.last_unanswered_request = Some(UnansweredRequest {
            request: post,
            idempotent: false,
        });
        let verdict = judge(&close, &http).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::RequestHitClosedConnection);
        let request = verdict.request.expect("the request");
        assert_eq!(
            (request.request.method.as_str(), request.idempotent),
            ("POST", false)
        );
        assert_eq!(verdict.written_after_close, Some(2.0));
        assert_eq!(verdict.versus_advertised, Some(VersusAdvertised::Agrees));
    }

    #[test]
    fn connection_close_on_the_response_is_announced() {
        let close = close_by(CloseKind::Graceful, Side::Server, None);
        let mut http = kept_alive(0.0);
        http.last_response_says_close = true;
        http.last_response_persistent = Some(false);
        let verdict = judge(&close, &http).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::Announced);
        assert_eq!(
            verdict.announcement,
            Some(Announcement::ResponseConnectionClose)
        );
    }

    #[test]
    fn http_1_0_response_without_keep_alive_is_announced() {
        let close = close_by(CloseKind::Graceful, Side::Server, None);
        let mut http = kept_alive(0.0);
        http.version = Some(HttpVersion::Http10);
        http.last_response_persistent = Some(false);
        let verdict = judge(&close, &http).expect("closed HTTP");
        assert_eq!(verdict.announcement, Some(Announcement::ResponseHttp10));
    }

    #[test]
    fn close_right_after_the_response_is_neither() {
        let close = close_by(CloseKind::Graceful, Side::Client, None);
        let verdict = judge(&close, &kept_alive(0.01)).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::Neither);
    }

    #[test]
    fn abort_after_idleness_is_neither() {
        let mut close = close_by(CloseKind::Abort, Side::Client, Some(Side::Client));
        close.first = Some(CloseSignal::Rst);
        let verdict = judge(&close, &kept_alive(4.0)).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::Neither);
    }

    /// 29b's first connection: the responses gave up at bytes the capture lost, so the
    /// last response (which did announce the close) was never read.
    #[test]
    fn a_close_after_an_unread_response_is_unknown_not_neither() {
        let close = close_by(CloseKind::Graceful, Side::Server, None);
        let mut http = kept_alive(0.0);
        http.responses = 0;
        http.last_response_at = None;
        http.last_response_persistent = None;
        http.unanswered_requests = None;
        http.gave_up.server = Some(GiveUp::Gap);
        let verdict = judge(&close, &http).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::Unknown);
        assert_eq!(verdict.idle_after_response, None);
        // Which side's messages were not read, and why, goes with the verdict.
        let unread = PerSide {
            client: None,
            server: Some(GiveUp::Gap),
        };
        assert_eq!(verdict.unread, Some(unread));
        // What was read still decides when it proves something: a head that announced
        // the close was seen.
        let mut announced = http.clone();
        announced.last_request_says_close = true;
        let verdict = judge(&close, &announced).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::Announced);
        assert_eq!(
            verdict.unread, None,
            "only an unknown reason says what was unread"
        );
        // An idle time is not an idle timeout when a request may have gone unread (the
        // request direction gave up), and an abort is not "neither".
        let mut idle = kept_alive(4.0);
        idle.gave_up.client = Some(GiveUp::ParseError);
        let verdict = judge(&close, &idle).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::Unknown);
        assert_eq!(verdict.versus_advertised, None);
        let mut abort = close_by(CloseKind::Abort, Side::Client, Some(Side::Client));
        abort.first = Some(CloseSignal::Rst);
        let verdict = judge(&abort, &idle).expect("closed HTTP");
        assert_eq!(verdict.reason, HttpCloseReason::Unknown);
    }

    #[test]
    fn spellings_are_the_json_ones() {
        fn json(value: &impl Serialize) -> String {
            match serde_json::to_value(value).expect("serialises") {
                serde_json::Value::String(s) => s,
                other => panic!("not a string: {other}"),
            }
        }
        for reason in [
            HttpCloseReason::Announced,
            HttpCloseReason::IdleTimeout,
            HttpCloseReason::RequestHitClosedConnection,
            HttpCloseReason::Neither,
            HttpCloseReason::Unknown,
        ] {
            assert_eq!(json(&reason), reason.as_str());
        }
        for announcement in [
            Announcement::ResponseConnectionClose,
            Announcement::ResponseHttp10,
            Announcement::RequestConnectionClose,
        ] {
            assert_eq!(json(&announcement), announcement.as_str());
        }
        for versus in [
            VersusAdvertised::Agrees,
            VersusAdvertised::Earlier,
            VersusAdvertised::Later,
        ] {
            assert_eq!(json(&versus), versus.as_str());
        }
        for why in [
            GiveUp::Gap,
            GiveUp::OversizedHead,
            GiveUp::ParseError,
            GiveUp::PipelineOverflow,
        ] {
            assert_eq!(json(&why), why.as_str());
        }
    }

    #[test]
    fn open_connection_or_no_http_has_no_verdict() {
        let mut open = close_by(CloseKind::Open, Side::Server, None);
        open.first_by = None;
        open.first_at = None;
        assert_eq!(judge(&open, &kept_alive(1.0)), None);
        let close = close_by(CloseKind::Graceful, Side::Server, None);
        assert_eq!(judge(&close, &HttpConversation::default()), None);
    }
}
