//! `capture_loss`: bytes the hosts exchanged that the capture does not hold, per service.
//!
//! Why: a conclusion is only as good as the capture under it. When tcpdump cannot keep up
//! it drops packets (and says so only on its own stderr, "packets dropped by kernel"); a
//! short snaplen keeps each packet's first bytes only; a capture started late joins
//! connections mid-conversation. The TCP analysis sees the holes (the receiver
//! acknowledged bytes the capture never saw: Wireshark's "ACKed unseen segment", each
//! side's `tcp.*.missing_bytes`) and goes on; the HTTP reading cannot skip what it needs
//! and stops, leaving what it would have said unknown rather than guessed. Without this
//! finding a capture that lost the very response announcing a close reads "Nothing
//! wrong". Zeek writes the same measure as `capture_loss.log` and raises its
//! `CaptureLoss::Too_Much_Loss` notice past 10 %; this finding uses that threshold, and
//! warns below it too when the loss hid why an HTTP connection was closed.
//!
//! The worst loss is a whole direction (asymmetric routing, a one-way filter or mirror
//! port): every close then looks unanswered, and the other findings would read the
//! artefact as a leak or a timeout. Such connections are named here and left out of the
//! other findings (`ConnectionReport::captured_one_way` says which).

use super::acc::Members;
use super::{plural, Details, Finding, FindingId, Severity};
use crate::render::diagram::layout::human_bytes;
use closewait_core::http::GiveUp;
use closewait_core::http_close::HttpCloseReason;
use closewait_core::model::{ser_addr, ConnectionReport, PerSide, Side};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Zeek's `CaptureLoss::too_much_loss` default: past this share of missing bytes the
/// finding is a warning whatever it hid.
pub const TOO_MUCH_LOSS_PERCENT: f64 = 10.0;

/// The numbers of a `capture_loss` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaptureLossDetails {
    #[serde(serialize_with = "ser_addr")]
    pub server: SocketAddr,
    /// Connections to the service, with and without losses.
    pub connections: u64,
    /// Sequence space each side sent that the capture never saw, over all of them.
    pub missing_bytes: PerSide<u64>,
    /// Payload bytes each side sent that the capture holds.
    pub captured_bytes: PerSide<u64>,
    /// Missing bytes as a share of all bytes sent (missing and captured), to two decimals.
    pub percent_lost: f64,
    /// Connections with missing bytes.
    pub connections_missing_bytes: u64,
    /// HTTP/1.x conversations a direction of which stopped being read at bytes the
    /// capture does not hold (`http.gave_up.gap`).
    pub http_not_read: u64,
    /// Of those, the ones whose close reason could not be told (`close.http.reason`
    /// `unknown`).
    pub http_close_unknown: u64,
    /// Of the connections this finding lists, those that began before the capture (no
    /// handshake captured): bytes sent before it are not missing but were never there.
    pub began_before_capture: u64,
    /// Connections of which one direction only was captured, by the side whose packets
    /// are there (`ConnectionReport::captured_one_way`). Left out of the other findings.
    pub one_direction: PerSide<u64>,
}

/// Why an HTTP direction met bytes the capture does not hold, as far as the report tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cause {
    /// The side's sequence space has holes: packets not captured.
    Dropped,
    /// No handshake captured: the connection began before the capture.
    JoinedLate,
    /// Every packet captured, not every byte: the snaplen cut them (or the bytes came in
    /// IP fragments, which closewait does not reassemble).
    CutShort,
}

#[derive(Default)]
struct Service {
    members: Members,
    connections: u64,
    missing: [u64; 2],
    captured: [u64; 2],
    connections_missing: u64,
    http_not_read: u64,
    http_close_unknown: u64,
    began_before: u64,
    /// Captured in one direction only: [the client's, the server's].
    one_direction: [u64; 2],
    /// HTTP conversations not read, by the likeliest cause.
    causes: BTreeMap<Cause, u64>,
}

#[derive(Default)]
pub(super) struct Acc {
    services: BTreeMap<SocketAddr, Service>,
}

impl Acc {
    /// Adds a connection; returns whether it was captured in one direction only
    /// (`close.captured_one_way`), for the other findings to leave out.
    pub fn add(&mut self, r: &ConnectionReport) -> bool {
        let s = self.services.entry(r.server).or_default();
        s.connections += 1;
        let missing = [r.tcp.client.missing_bytes, r.tcp.server.missing_bytes];
        s.captured[0] += r.bytes.client;
        s.captured[1] += r.bytes.server;
        s.missing[0] += missing[0];
        s.missing[1] += missing[1];
        let http_gaps = r.http.as_deref().map_or([false; 2], |h| {
            [h.gave_up.client, h.gave_up.server].map(|g| g == Some(GiveUp::Gap))
        });
        let lost = missing[0] + missing[1];
        let one_way = r.close.captured_one_way;
        if lost == 0 && !http_gaps.contains(&true) && one_way.is_none() {
            return false;
        }
        s.members.add(r.id, lost as f64, r.segments.is_some());
        if let Some(side) = one_way {
            s.one_direction[usize::from(side == Side::Server)] += 1;
        }
        s.connections_missing += u64::from(lost > 0);
        s.began_before += u64::from(r.role_inferred);
        if http_gaps.contains(&true) {
            s.http_not_read += 1;
            let dropped = (0..2).any(|i| http_gaps[i] && missing[i] > 0);
            let cause = if dropped {
                Cause::Dropped
            } else if r.role_inferred {
                Cause::JoinedLate
            } else {
                Cause::CutShort
            };
            *s.causes.entry(cause).or_default() += 1;
            let unknown = r
                .close
                .http
                .as_deref()
                .is_some_and(|c| c.reason == HttpCloseReason::Unknown);
            s.http_close_unknown += u64::from(unknown);
        }
        one_way.is_some()
    }

    /// `fragments`: the capture has IP fragments, which closewait skips (they, rather than
    /// the snaplen, may have cut the segments short).
    pub fn finish(self, fragments: bool) -> Vec<Finding> {
        self.services
            .into_iter()
            .filter(|(_, s)| s.members.n > 0)
            .map(|(server, s)| finding(server, s, fragments))
            .collect()
    }
}

fn finding(server: SocketAddr, s: Service, fragments: bool) -> Finding {
    let missing = s.missing[0] + s.missing[1];
    let sent = missing + s.captured[0] + s.captured[1];
    let percent = if sent == 0 {
        0.0
    } else {
        (missing as f64 * 100.0 / sent as f64 * 100.0).round() / 100.0
    };
    let one_way = s.one_direction[0] + s.one_direction[1];
    let severity = if one_way > 0 || s.http_close_unknown > 0 || percent >= TOO_MUCH_LOSS_PERCENT {
        Severity::Warning
    } else {
        Severity::Info
    };
    let of_all = |n: u64| {
        format!(
            "{n} of {}",
            plural(s.connections, "connection", "connections")
        )
    };

    // The headline: the whole directions missing, then the bytes, then what HTTP lost.
    let mut clauses = Vec::new();
    if one_way > 0 {
        let each = if one_way == 1 { "the" } else { "each" };
        let whose = match s.one_direction {
            [_, 0] => {
                format!("the client's packets only, though {each} client completed its handshake")
            }
            [0, _] => format!(
                "the server's packets only, though {each} server sent data after its SYN,ACK"
            ),
            _ => "one side's packets only, though the other side's provably existed".to_string(),
        };
        let (they, are) = if one_way == 1 {
            ("it", "is")
        } else {
            ("they", "are")
        };
        clauses.push(format!(
            "Only one direction of {} to {server} was captured ({whose}): how {they} closed \
             cannot be told, and {they} {are} left out of the other findings",
            of_all(one_way)
        ));
    }
    if missing > 0 {
        let by = match (s.missing[0] > 0, s.missing[1] > 0) {
            (true, false) => " sent by the client",
            (false, true) => " sent by the server",
            _ => "",
        };
        let start = if clauses.is_empty() {
            "The capture missed"
        } else {
            "the capture also missed"
        };
        let to = if clauses.is_empty() {
            format!(" to {server}")
        } else {
            String::new()
        };
        clauses.push(format!(
            "{start} {}{by} on {}{to} ({percent:.2} % of the bytes sent)",
            human_bytes(missing),
            of_all(s.connections_missing),
        ));
    }
    if s.http_not_read > 0 {
        let mut clause = if clauses.is_empty() {
            let only = |cause: Cause| s.causes.keys().all(|c| *c == cause);
            let why = if only(Cause::CutShort) {
                "the capture holds the packets but not all their bytes"
            } else if only(Cause::JoinedLate) && s.http_not_read == 1 {
                "the capture began after it did"
            } else if only(Cause::JoinedLate) {
                "the capture began after they did"
            } else {
                "the capture does not hold all their bytes"
            };
            format!(
                "HTTP to {server} could not be read to the end on {}: {why}",
                of_all(s.http_not_read),
            )
        } else {
            format!(
                "HTTP could not be read to the end on {}",
                plural(s.http_not_read, "connection", "connections")
            )
        };
        if s.http_close_unknown > 0 {
            let which = match (s.http_close_unknown, s.http_not_read) {
                (1, 1) => "it was".to_string(),
                (k, n) if k == n => "they were".to_string(),
                (1, _) => "1 of them was".to_string(),
                (k, _) => format!("{k} of them were"),
            };
            let sep = if clauses.is_empty() { ";" } else { ":" };
            clause += &format!("{sep} why {which} closed cannot be told");
        }
        clauses.push(clause);
    }
    let summary = clauses.join("; ") + ".";

    let mut facts = Vec::new();
    if one_way > 0 {
        facts.push(format!(
            "one direction only: {} with the client's packets alone, {} with the server's \
             alone; left out of the other findings",
            plural(s.one_direction[0], "connection", "connections"),
            s.one_direction[1],
        ));
    }
    if missing > 0 {
        facts.push(format!(
            "missing: {} from the client, {} from the server ({percent:.2} % of all bytes \
             sent); captured: {} and {}",
            human_bytes(s.missing[0]),
            human_bytes(s.missing[1]),
            human_bytes(s.captured[0]),
            human_bytes(s.captured[1]),
        ));
    }
    let cut_by = if fragments {
        "by the snaplen or in IP fragments"
    } else {
        "by the snaplen"
    };
    if s.http_not_read > 0 {
        let count = |c| s.causes.get(&c).copied().unwrap_or(0);
        facts.push(format!(
            "HTTP not read to the end: {} ({} after packets not captured, {} begun before \
             the capture, {} cut short {cut_by}); close reason unknown on {}",
            plural(s.http_not_read, "conversation", "conversations"),
            count(Cause::Dropped),
            count(Cause::JoinedLate),
            count(Cause::CutShort),
            s.http_close_unknown,
        ));
    }
    let mut mechanism = String::new();
    if one_way > 0 {
        mechanism += "A capture point that sees one direction only (asymmetric routing sends \
            the two directions different ways; a capture filter, `tcpdump -Q`, or a mirror \
            port set to copy only rx or tx) shows every close as unanswered and every \
            connection as never established or never closed by the other side. ";
    }
    if missing > 0 || s.http_not_read > 0 {
        mechanism += "The hosts sent bytes the capture does not hold: tcpdump dropped packets \
            it could not keep up with (it prints \"packets dropped by kernel\" when it stops), \
            a mirror port or tap dropped them, the snaplen cut each packet short (or IP \
            fragments, which closewait does not reassemble, carried the rest), or the \
            connection began before the capture. The TCP states are read from the segments \
            that are there (the acknowledgements show the hole, Wireshark's \"ACKed unseen \
            segment\"); HTTP that cannot be read is left unknown, never guessed, so requests, \
            statuses and close reasons on these connections may be missing.";
    }
    let mechanism = mechanism.trim_end().to_string();
    let only_cut = one_way == 0 && missing == 0 && s.causes.keys().all(|c| *c == Cause::CutShort);
    let advice = if one_way > 0 {
        "Capture where both directions pass: on one of the two hosts, or on every path of an \
         asymmetric route and give closewait all the files (it merges them by time, as \
         mergecap does); check that the capture filter or `tcpdump -Q` keeps both \
         directions and that a mirror port copies both rx and tx."
            .to_string()
    } else if only_cut && fragments {
        "The segments came in IP fragments (the capture's warning says so), which closewait \
         does not reassemble: capture where the datagrams are whole (on the hosts, or past \
         the tunnel's end), or give the tunnel a path MTU that needs no fragmenting."
            .to_string()
    } else if only_cut {
        format!(
            "Capture whole packets: `tcpdump -s 0` (the default since tcpdump 4.0; a short \
             `-s` keeps only the headers), with a filter on the service (`tcp port {}`).",
            server.port()
        )
    } else {
        format!(
            "Capture again with room to keep up: `tcpdump -s 0 -B 16384 -w FILE 'tcp port {}'` \
             (a filter on the service, a bigger kernel buffer, a local disk), check that \
             tcpdump reports 0 packets dropped by kernel, and start it before the connections \
             of interest open. Until then, read these connections' results with care.",
            server.port()
        )
    };
    Finding {
        id: FindingId::CaptureLoss,
        severity,
        summary,
        count: s.members.n,
        evidence: s.members.ids(),
        example: s.members.example(),
        mechanism,
        advice,
        details: Details::CaptureLoss(CaptureLossDetails {
            server,
            connections: s.connections,
            missing_bytes: PerSide {
                client: s.missing[0],
                server: s.missing[1],
            },
            captured_bytes: PerSide {
                client: s.captured[0],
                server: s.captured[1],
            },
            percent_lost: percent,
            connections_missing_bytes: s.connections_missing,
            http_not_read: s.http_not_read,
            http_close_unknown: s.http_close_unknown,
            began_before_capture: s.began_before,
            one_direction: PerSide {
                client: s.one_direction[0],
                server: s.one_direction[1],
            },
        }),
        facts,
        group: server.to_string(),
    }
}
