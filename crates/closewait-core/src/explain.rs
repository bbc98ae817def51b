//! The wording of a close verdict: the sentences of an [`Explanation`], for people.
//!
//! `classify` decides the facts (who closed first, after how long, who stayed silent) and
//! keeps them as an [`Explanation`]; this module words them. It sits beside the model
//! rather than in `render/` because the model serialises an explanation as its text (the
//! JSON contract's `close.explanation`), so every output, JSON included, reads the same
//! sentences from here.

use crate::http::{GiveUp, MAX_HEAD_BYTES, MAX_PIPELINED_REQUESTS};
use crate::http_close::{Announcement, HttpClose, HttpCloseReason, VersusAdvertised};
use crate::model::{Explanation, Side};
use crate::seconds;
use std::fmt;

/// One piece of an explanation's text.
enum Part<'a> {
    Text(&'a str),
    Side(Side),
    /// Seconds with three decimals.
    Secs(f64),
    Count(u64),
}

impl Explanation {
    /// The sentences, for people. Written piece by piece rather than with `write!`: the
    /// JSON lines write one per connection, and `fmt`'s machinery (with a float at three
    /// decimals) cost several times the text itself.
    pub fn write_to<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        use Part::{Count, Secs, Side as S, Text as T};
        match *self {
            Explanation::Refused { after } => write_parts(
                out,
                &[
                    T("The server answered the SYN with RST ("),
                    Secs(after),
                    T(
                        " s after the first SYN): nothing listens on that port, or a firewall \
                       rejects it.",
                    ),
                ],
            ),
            Explanation::SynTimeout { syns, over } => write_parts(
                out,
                &[
                    Count(syns),
                    T(" SYN(s) over "),
                    Secs(over),
                    T(" s got no answer: the server is unreachable or a firewall drops them."),
                ],
            ),
            Explanation::HandshakeReset { by } => write_parts(
                out,
                &[
                    T("The handshake never completed: the "),
                    S(by),
                    T(" reset it."),
                ],
            ),
            Explanation::HandshakeUnfinished => out.write_str(
                "The server answered the SYN but the client never completed the handshake.",
            ),
            Explanation::Open => {
                out.write_str("Still open at the end of the capture: no FIN or RST seen.")
            }
            Explanation::FinThenRst {
                first,
                rst_by,
                after,
                silent,
            } => {
                write_parts(
                    out,
                    &[
                        T("The "),
                        S(first),
                        T(" sent FIN first; the connection was then reset by the "),
                        S(rst_by),
                        T(" "),
                        Secs(after),
                        T(" s later"),
                    ],
                )?;
                if let Some(silent) = silent {
                    write_parts(
                        out,
                        &[T(" (the "), S(silent), T(" had not sent its own FIN)")],
                    )?;
                }
                out.write_str(".")
            }
            Explanation::Abort { by } => write_parts(
                out,
                &[
                    T("The "),
                    S(by),
                    T(" aborted the connection with RST, without a FIN before it."),
                ],
            ),
            Explanation::Simultaneous => out.write_str(
                "Both sides sent FIN before receiving the other's: a simultaneous close (both \
                 go through CLOSING to TIME_WAIT).",
            ),
            Explanation::HalfClose { first } => write_parts(
                out,
                &[
                    T("The "),
                    S(first),
                    T(" closed its direction first; the "),
                    S(first.other()),
                    T(" kept sending data in CLOSE_WAIT before closing too."),
                ],
            ),
            Explanation::Graceful { first, after } => {
                write_parts(
                    out,
                    &[
                        T("The "),
                        S(first),
                        T(" closed first and the "),
                        S(first.other()),
                        T(" answered with its own FIN"),
                    ],
                )?;
                if let Some(after) = after {
                    write_parts(out, &[T(" "), Secs(after), T(" s later")])?;
                }
                out.write_str(".")
            }
            Explanation::UnansweredFin {
                first,
                idle,
                close_wait,
            } => {
                write_parts(out, &[T("The "), S(first), T(" sent FIN")])?;
                if let Some(idle) = idle {
                    write_parts(out, &[T(" after "), Secs(idle), T(" s idle")])?;
                }
                write_parts(
                    out,
                    &[
                        T("; the "),
                        S(first.other()),
                        T(" acknowledged it but never sent its own FIN: "),
                    ],
                )?;
                // The capture often ends with the acknowledgement itself (a pcap does not
                // record when tcpdump was stopped).
                if close_wait < 0.0005 {
                    out.write_str("it was in CLOSE_WAIT when the capture ended.")
                } else {
                    write_parts(
                        out,
                        &[
                            T("CLOSE_WAIT for "),
                            Secs(close_wait),
                            T(" s until the end of the capture."),
                        ],
                    )
                }
            }
            Explanation::UnacknowledgedFin { first } => write_parts(
                out,
                &[
                    T("The "),
                    S(first),
                    T(" sent FIN; the "),
                    S(first.other()),
                    T(" never acknowledged it nor sent its own."),
                ],
            ),
            Explanation::Text(ref text) => out.write_str(text),
        }
    }
}

impl HttpClose {
    /// The HTTP sentence of a close, after the TCP ones (`Close::explained`). Only
    /// connections that carried HTTP have one, so `write!` is cheap enough here.
    pub fn write_to<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        let secs = seconds::three_decimals_string;
        let by = self.closed_by;
        match self.reason {
            HttpCloseReason::Announced => out.write_str(match self.announcement {
                Some(Announcement::ResponseHttp10) => {
                    "HTTP: the last response was HTTP/1.0 without keep-alive, which announces the \
                     close."
                }
                Some(Announcement::RequestConnectionClose) => {
                    "HTTP: the last request announced the close (Connection: close)."
                }
                _ => "HTTP: the last response announced the close (Connection: close).",
            }),
            HttpCloseReason::IdleTimeout => {
                let idle = secs(self.idle_after_response.unwrap_or(0.0));
                match by {
                    Side::Server => {
                        write!(
                            out,
                            "HTTP: the server closed {idle} s after its last response, nothing \
                             announced: its idle (keep-alive) timeout"
                        )?;
                        self.write_advertised(out)?;
                        out.write_str(".")
                    }
                    Side::Client => {
                        write!(
                            out,
                            "HTTP: the client closed {idle} s after the last response: its own \
                             idle timeout"
                        )?;
                        if let Some(advertised) = self.advertised_timeout {
                            write!(
                                out,
                                " (the server advertised Keep-Alive: timeout={advertised})"
                            )?;
                        }
                        out.write_str(".")
                    }
                }
            }
            HttpCloseReason::RequestHitClosedConnection => {
                let line = self
                    .request
                    .as_ref()
                    .map(|r| format!("{} {}", r.request.method, r.request.target))
                    .unwrap_or_else(|| "a request".to_string());
                match self.written_after_close {
                    Some(after) if after >= 0.0 => write!(
                        out,
                        "HTTP: the client wrote {line} into the connection {} s after the server \
                         had closed it",
                        secs(after)
                    )?,
                    _ => write!(
                        out,
                        "HTTP: the client wrote {line} as the server closed the connection (the \
                         request crossed the server's FIN)"
                    )?,
                }
                out.write_str(" and the server answered with RST: the request was lost")?;
                match &self.request {
                    Some(r) if r.idempotent => write!(
                        out,
                        " ({} is idempotent: a client may retry it)",
                        r.request.method
                    )?,
                    Some(r) => write!(
                        out,
                        " ({} is not idempotent: a client must not retry it automatically)",
                        r.request.method
                    )?,
                    None => {}
                }
                if let Some(idle) = self.idle_after_response {
                    write!(
                        out,
                        ". The server had closed {} s after its last response",
                        secs(idle)
                    )?;
                    self.write_advertised(out)?;
                }
                out.write_str(".")
            }
            HttpCloseReason::Neither => match self.idle_after_response {
                Some(idle) if idle < crate::http_close::MIN_IDLE_SECS => write!(
                    out,
                    "HTTP: the {by} closed {} s after the last response, nothing announced: \
                     done with the connection, not an idle timeout.",
                    secs(idle)
                ),
                Some(idle) => write!(
                    out,
                    "HTTP: the close was neither announced nor an idle timeout (the {by} closed \
                     {} s after the last response).",
                    secs(idle)
                ),
                // No response came (the whole conversation was read: a direction that gave
                // up makes the reason `unknown`).
                None => write!(
                    out,
                    "HTTP: the close was neither announced nor an idle timeout (no response \
                     came before the {by} closed)."
                ),
            },
            HttpCloseReason::Unknown => {
                write!(out, "HTTP: why the {by} closed cannot be told: ")?;
                let unread = self.unread.as_ref();
                match unread.map(|u| (u.client, u.server)).unwrap_or_default() {
                    (None, Some(why)) => write!(
                        out,
                        "the server's responses could not be read to the end ({})",
                        unread_because(why)
                    )?,
                    (Some(why), None) => write!(
                        out,
                        "the client's requests could not be read to the end ({})",
                        unread_because(why)
                    )?,
                    (Some(client), Some(server)) => write!(
                        out,
                        "neither side's messages could be read to the end (the client's: {}; \
                         the server's: {})",
                        unread_because(client),
                        unread_because(server)
                    )?,
                    // `judge` always names a side; a verdict made elsewhere may not.
                    (None, None) => out.write_str(
                        "part of the conversation could not be read (bytes missing from the \
                         capture, or not HTTP/1.x)",
                    )?,
                }
                out.write_str(", so whether the close was announced is unknown.")
            }
        }
    }

    /// `; it advertised Keep-Alive: timeout=2, which agrees`, or that it advertised none.
    fn write_advertised<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        let Some(advertised) = self.advertised_timeout else {
            return out.write_str("; it advertised no Keep-Alive timeout");
        };
        write!(out, "; it advertised Keep-Alive: timeout={advertised}")?;
        out.write_str(match self.versus_advertised {
            Some(VersusAdvertised::Agrees) => ", which agrees",
            Some(VersusAdvertised::Earlier) => ", and closed earlier than that",
            Some(VersusAdvertised::Later) => ", and closed well after that",
            None => "",
        })
    }
}

/// Why a direction of an HTTP conversation stopped being read, in words.
fn unread_because(why: GiveUp) -> String {
    match why {
        GiveUp::Gap => "bytes missing from the capture".to_string(),
        GiveUp::ParseError => "not HTTP/1.x".to_string(),
        GiveUp::OversizedHead => format!("a head longer than {} KiB", MAX_HEAD_BYTES / 1024),
        GiveUp::PipelineOverflow => {
            format!("more than {MAX_PIPELINED_REQUESTS} requests ahead of their responses")
        }
    }
}

fn write_parts<W: fmt::Write>(out: &mut W, parts: &[Part<'_>]) -> fmt::Result {
    for part in parts {
        match *part {
            Part::Text(text) => out.write_str(text)?,
            Part::Side(side) => out.write_str(side.as_str())?,
            Part::Secs(v) => seconds::three_decimals(out, v)?,
            Part::Count(n) => out.write_str(itoa::Buffer::new().format(n))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::{PerSide, Side};

    /// Every wording, with and without its optional parts: the sentences `format!` wrote
    /// before explanations were kept as facts.
    #[test]
    fn explanations_read_as_before() {
        use crate::model::Explanation as E;
        use Side::{Client as C, Server as S};
        let cases = [
            (
                E::Refused { after: 0.000_25 },
                "The server answered the SYN with RST (0.000 s after the first SYN): nothing \
                 listens on that port, or a firewall rejects it.",
            ),
            (
                E::SynTimeout { syns: 3, over: 3.0 },
                "3 SYN(s) over 3.000 s got no answer: the server is unreachable or a firewall \
                 drops them.",
            ),
            (
                E::HandshakeReset { by: C },
                "The handshake never completed: the client reset it.",
            ),
            (
                E::HandshakeUnfinished,
                "The server answered the SYN but the client never completed the handshake.",
            ),
            (
                E::Open,
                "Still open at the end of the capture: no FIN or RST seen.",
            ),
            (
                E::FinThenRst {
                    first: S,
                    rst_by: S,
                    after: 4.0015,
                    silent: Some(C),
                },
                "The server sent FIN first; the connection was then reset by the server 4.002 s \
                 later (the client had not sent its own FIN).",
            ),
            (
                E::FinThenRst {
                    first: C,
                    rst_by: S,
                    after: 12345.6789,
                    silent: None,
                },
                "The client sent FIN first; the connection was then reset by the server \
                 12345.679 s later.",
            ),
            (
                E::Abort { by: S },
                "The server aborted the connection with RST, without a FIN before it.",
            ),
            (
                E::Simultaneous,
                "Both sides sent FIN before receiving the other's: a simultaneous close (both go \
                 through CLOSING to TIME_WAIT).",
            ),
            (
                E::HalfClose { first: C },
                "The client closed its direction first; the server kept sending data in \
                 CLOSE_WAIT before closing too.",
            ),
            (
                E::Graceful {
                    first: S,
                    after: Some(0.0004),
                },
                "The server closed first and the client answered with its own FIN 0.000 s later.",
            ),
            (
                E::Graceful {
                    first: C,
                    after: None,
                },
                "The client closed first and the server answered with its own FIN.",
            ),
            (
                E::UnansweredFin {
                    first: S,
                    idle: Some(15.002),
                    close_wait: 105.0,
                },
                "The server sent FIN after 15.002 s idle; the client acknowledged it but never \
                 sent its own FIN: CLOSE_WAIT for 105.000 s until the end of the capture.",
            ),
            (
                E::UnansweredFin {
                    first: C,
                    idle: None,
                    close_wait: 0.0004,
                },
                "The client sent FIN; the server acknowledged it but never sent its own FIN: it \
                 was in CLOSE_WAIT when the capture ended.",
            ),
            (
                E::UnacknowledgedFin { first: C },
                "The client sent FIN; the server never acknowledged it nor sent its own.",
            ),
            (E::Text("any \"text\"".into()), "any \"text\""),
        ];
        for (explanation, text) in cases {
            assert_eq!(explanation.to_string(), text);
            assert_eq!(
                serde_json::to_string(&explanation).expect("serialise"),
                serde_json::to_string(text).expect("serialise")
            );
        }
    }

    /// The HTTP sentence of each close reason, as `Close::explained` appends it.
    #[test]
    fn http_close_sentences() {
        use crate::http::{GiveUp, HttpVersion, RequestLine, UnansweredRequest};
        use crate::http_close::{
            Announcement, HttpClose, HttpCloseReason as R, VersusAdvertised as V,
        };
        let base = HttpClose {
            reason: R::IdleTimeout,
            closed_by: Side::Server,
            announcement: None,
            idle_after_response: Some(2.1544),
            advertised_timeout: Some(2),
            versus_advertised: Some(V::Agrees),
            request: None,
            written_after_close: None,
            unread: None,
        };
        let post = UnansweredRequest {
            request: RequestLine {
                method: "POST".into(),
                target: "/orders".into(),
                version: HttpVersion::Http11,
            },
            idempotent: false,
        };
        let cases = [
            (
                base.clone(),
                "HTTP: the server closed 2.154 s after its last response, nothing announced: its \
                 idle (keep-alive) timeout; it advertised Keep-Alive: timeout=2, which agrees.",
            ),
            (
                HttpClose {
                    advertised_timeout: None,
                    versus_advertised: None,
                    ..base.clone()
                },
                "HTTP: the server closed 2.154 s after its last response, nothing announced: its \
                 idle (keep-alive) timeout; it advertised no Keep-Alive timeout.",
            ),
            (
                HttpClose {
                    closed_by: Side::Client,
                    advertised_timeout: Some(15),
                    versus_advertised: None,
                    ..base.clone()
                },
                "HTTP: the client closed 2.154 s after the last response: its own idle timeout \
                 (the server advertised Keep-Alive: timeout=15).",
            ),
            (
                HttpClose {
                    reason: R::RequestHitClosedConnection,
                    request: Some(post),
                    written_after_close: Some(2.0),
                    ..base.clone()
                },
                "HTTP: the client wrote POST /orders into the connection 2.000 s after the server \
                 had closed it and the server answered with RST: the request was lost (POST is \
                 not idempotent: a client must not retry it automatically). The server had \
                 closed 2.154 s after its last response; it advertised Keep-Alive: timeout=2, \
                 which agrees.",
            ),
            (
                HttpClose {
                    reason: R::Announced,
                    announcement: Some(Announcement::ResponseConnectionClose),
                    ..base.clone()
                },
                "HTTP: the last response announced the close (Connection: close).",
            ),
            (
                HttpClose {
                    reason: R::Neither,
                    closed_by: Side::Client,
                    idle_after_response: Some(0.004),
                    ..base.clone()
                },
                "HTTP: the client closed 0.004 s after the last response, nothing announced: \
                 done with the connection, not an idle timeout.",
            ),
            (
                HttpClose {
                    reason: R::Unknown,
                    idle_after_response: None,
                    ..base.clone()
                },
                "HTTP: why the server closed cannot be told: part of the conversation could \
                 not be read (bytes missing from the capture, or not HTTP/1.x), so whether the \
                 close was announced is unknown.",
            ),
            (
                HttpClose {
                    reason: R::Unknown,
                    unread: Some(PerSide {
                        client: None,
                        server: Some(GiveUp::Gap),
                    }),
                    ..base.clone()
                },
                "HTTP: why the server closed cannot be told: the server's responses could not \
                 be read to the end (bytes missing from the capture), so whether the close was \
                 announced is unknown.",
            ),
            (
                HttpClose {
                    reason: R::Unknown,
                    closed_by: Side::Client,
                    unread: Some(PerSide {
                        client: Some(GiveUp::OversizedHead),
                        server: None,
                    }),
                    ..base.clone()
                },
                "HTTP: why the client closed cannot be told: the client's requests could not \
                 be read to the end (a head longer than 16 KiB), so whether the close was \
                 announced is unknown.",
            ),
            (
                HttpClose {
                    reason: R::Unknown,
                    unread: Some(PerSide {
                        client: Some(GiveUp::PipelineOverflow),
                        server: Some(GiveUp::ParseError),
                    }),
                    ..base
                },
                "HTTP: why the server closed cannot be told: neither side's messages could be \
                 read to the end (the client's: more than 4096 requests ahead of their \
                 responses; the server's: not HTTP/1.x), so whether the close was announced is \
                 unknown.",
            ),
        ];
        for (http, text) in cases {
            let mut out = String::new();
            http.write_to(&mut out).expect("writing to a String");
            assert_eq!(out, text);
        }
    }
}
