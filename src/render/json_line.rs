//! A hand-written compact writer for one `--jsonl` connection line.
//!
//! Why: on big captures serde_json's generic path (a `Serializer` call per key through
//! `#[serde(flatten)]`'s map adapter, a `Formatter` call per punctuation byte) cost about a
//! quarter of the whole run, more than the analysis of the connection. This writer emits
//! the same bytes as `serde_json::to_writer` of the serde-derived `ConnectionLine`
//! (same key order, same number formats: `itoa` for integers, `zmij` shortest round-trip
//! for floats, `null` for non-finite floats, serde_json's string escapes). The tests
//! below, the shipped captures and the big benchmark capture check that byte for byte;
//! change the model and this writer together.

use crate::model::{Close, ConnectionReport, DirectionStats, PerSide, StateChange};
use std::net::SocketAddr;

/// Appends `{"type":"connection",…}` (no newline) for `r` to `out`.
pub fn write_connection_line(out: &mut Vec<u8>, r: &ConnectionReport) {
    let mut w = W(out);
    w.raw(b"{\"type\":\"connection\",\"id\":");
    w.uint(r.id);
    w.raw(b",\"client\":");
    w.addr(&r.client);
    w.raw(b",\"server\":");
    w.addr(&r.server);
    w.raw(b",\"role_inferred\":");
    w.raw(if r.role_inferred { b"true" } else { b"false" });
    w.raw(b",\"start\":");
    w.float(r.start);
    w.raw(b",\"end\":");
    w.float(r.end);
    w.raw(b",\"duration\":");
    w.float(r.duration);
    w.raw(b",\"first_frame\":");
    w.uint(r.first_frame);
    w.raw(b",\"last_frame\":");
    w.uint(r.last_frame);
    w.raw(b",\"packets\":");
    w.per_side_uint(&r.packets);
    w.raw(b",\"bytes\":");
    w.per_side_uint(&r.bytes);
    w.raw(b",\"close\":");
    w.close(&r.close);
    w.raw(b",\"client_state\":");
    w.plain_str(r.client_state.as_str());
    w.raw(b",\"server_state\":");
    w.plain_str(r.server_state.as_str());
    w.raw(b",\"timeline\":{\"client\":");
    w.timeline(&r.timeline.client);
    w.raw(b",\"server\":");
    w.timeline(&r.timeline.server);
    w.raw(b"},\"tcp\":{\"client\":");
    w.stats(&r.tcp.client);
    w.raw(b",\"server\":");
    w.stats(&r.tcp.server);
    w.raw(b"},\"zeek\":{\"conn_state\":");
    w.str(&r.zeek.conn_state);
    w.raw(b",\"history\":");
    w.str(&r.zeek.history);
    w.raw(b"}");
    if let Some(segments) = &r.segments {
        // Only with recording on (diagrams): rare, so serde's path is fine here.
        w.raw(b",\"segments\":");
        serde_json::to_writer(&mut *w.0, segments).expect("writing to memory cannot fail");
    }
    w.raw(b"}");
}

struct W<'a>(&'a mut Vec<u8>);

impl W<'_> {
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    fn uint(&mut self, v: u64) {
        self.raw(itoa::Buffer::new().format(v).as_bytes());
    }

    /// serde_json: non-finite floats are `null`, finite ones zmij's shortest form.
    fn float(&mut self, v: f64) {
        if v.is_finite() {
            self.raw(zmij::Buffer::new().format_finite(v).as_bytes());
        } else {
            self.raw(b"null");
        }
    }

    fn opt_float(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.float(v),
            None => self.raw(b"null"),
        }
    }

    fn opt_uint(&mut self, v: Option<u64>) {
        match v {
            Some(v) => self.uint(v),
            None => self.raw(b"null"),
        }
    }

    fn opt_str(&mut self, v: Option<&str>) {
        match v {
            Some(s) => self.plain_str(s),
            None => self.raw(b"null"),
        }
    }

    /// A string known to need no escaping (enum names, states).
    fn plain_str(&mut self, s: &str) {
        debug_assert!(!s.bytes().any(needs_escape));
        self.0.push(b'"');
        self.raw(s.as_bytes());
        self.0.push(b'"');
    }

    /// Any string, escaped as serde_json does.
    fn str(&mut self, s: &str) {
        if s.bytes().any(needs_escape) {
            serde_json::to_writer(&mut *self.0, s).expect("writing to memory cannot fail");
        } else {
            self.plain_str(s);
        }
    }

    fn addr(&mut self, a: &SocketAddr) {
        match a {
            SocketAddr::V4(v4) => {
                self.0.push(b'"');
                let mut buf = itoa::Buffer::new();
                for (i, octet) in v4.ip().octets().iter().enumerate() {
                    if i > 0 {
                        self.0.push(b'.');
                    }
                    self.raw(buf.format(*octet).as_bytes());
                }
                self.0.push(b':');
                self.raw(buf.format(v4.port()).as_bytes());
                self.0.push(b'"');
            }
            SocketAddr::V6(_) => {
                use std::io::Write;
                self.0.push(b'"');
                write!(self.0, "{a}").expect("writing to memory cannot fail");
                self.0.push(b'"');
            }
        }
    }

    fn per_side_uint(&mut self, p: &PerSide<u64>) {
        self.raw(b"{\"client\":");
        self.uint(p.client);
        self.raw(b",\"server\":");
        self.uint(p.server);
        self.raw(b"}");
    }

    fn close(&mut self, c: &Close) {
        self.raw(b"{\"kind\":");
        self.plain_str(c.kind.as_str());
        self.raw(b",\"initiator\":");
        self.plain_str(c.initiator.as_str());
        self.raw(b",\"first\":");
        self.opt_str(c.first.map(|s| s.as_str()));
        self.raw(b",\"first_by\":");
        self.opt_str(c.first_by.map(|s| s.as_str()));
        self.raw(b",\"first_at\":");
        self.opt_float(c.first_at);
        self.raw(b",\"first_frame\":");
        self.opt_uint(c.first_frame);
        self.raw(b",\"idle_before_close\":");
        self.opt_float(c.idle_before_close);
        self.raw(b",\"rst_by\":");
        self.opt_str(c.rst_by.map(|s| s.as_str()));
        self.raw(b",\"who_failed_to_respond\":");
        self.opt_str(c.who_failed_to_respond.map(|s| s.as_str()));
        self.raw(b",\"waiting_since\":");
        self.opt_float(c.waiting_since);
        self.raw(b",\"waiting_for\":");
        self.opt_float(c.waiting_for);
        self.raw(b",\"explanation\":");
        self.str(&c.explanation);
        self.raw(b"}");
    }

    fn timeline(&mut self, changes: &[StateChange]) {
        self.0.push(b'[');
        for (i, c) in changes.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            self.raw(b"{\"state\":");
            self.plain_str(c.state.as_str());
            self.raw(b",\"at\":");
            self.float(c.at);
            self.raw(b",\"frame\":");
            self.opt_uint(c.frame);
            self.0.push(b'}');
        }
        self.0.push(b']');
    }

    fn stats(&mut self, s: &DirectionStats) {
        let fields: [(&[u8], u64); 9] = [
            (b"{\"retransmissions\":", s.retransmissions),
            (b",\"out_of_order\":", s.out_of_order),
            (b",\"keepalives\":", s.keepalives),
            (b",\"keepalive_acks\":", s.keepalive_acks),
            (b",\"zero_windows\":", s.zero_windows),
            (b",\"missing_bytes\":", s.missing_bytes),
            (b",\"ignored_rsts\":", s.ignored_rsts),
            (b",\"fins\":", s.fins),
            (b",\"rsts\":", s.rsts),
        ];
        for (key, v) in fields {
            self.raw(key);
            self.uint(v);
        }
        self.0.push(b'}');
    }
}

/// Bytes serde_json escapes in strings: `"`, `\` and control characters.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CloseSignal, SegmentNote, SegmentRecord, Side};
    use crate::state::TcpState;
    use crate::testutil::ReportBuilder;

    /// What serde_json writes for the same line (the reference this writer must match).
    fn serde_line(r: &ConnectionReport) -> String {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            t: &'static str,
            #[serde(flatten)]
            c: &'a ConnectionReport,
        }
        serde_json::to_string(&Line {
            t: "connection",
            c: r,
        })
        .expect("serialise")
    }

    fn fast_line(r: &ConnectionReport) -> String {
        let mut out = Vec::new();
        write_connection_line(&mut out, r);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn graceful_and_leak_reports_match_serde_json_byte_for_byte() {
        let reports = [
            ReportBuilder::new(0).build(),
            ReportBuilder::new(7)
                .server("10.77.0.2:8788")
                .unanswered_fin_by_server(42.5)
                .build(),
        ];
        for r in &reports {
            assert_eq!(fast_line(r), serde_line(r));
        }
    }

    #[test]
    fn odd_values_match_serde_json_byte_for_byte() {
        let mut r = ReportBuilder::new(3).build();
        r.id = u64::MAX;
        r.client = "[2001:db8::1]:443".parse().expect("v6");
        r.server = "[::ffff:10.0.0.1]:65535".parse().expect("v6");
        r.role_inferred = true;
        r.start = 1_700_000_000.123_456_7;
        r.end = f64::NAN;
        r.duration = f64::INFINITY;
        r.close.first = Some(CloseSignal::Rst);
        r.close.first_by = Some(Side::Server);
        r.close.rst_by = Some(Side::Client);
        r.close.first_at = Some(-0.0);
        r.close.idle_before_close = Some(1e-7);
        r.close.waiting_for = Some(f64::NEG_INFINITY);
        r.close.first_frame = Some(0);
        r.close.explanation =
            "quote \" backslash \\ newline \n tab \t nul \u{0} del \u{7f} é ✓".into();
        r.zeek.history = "Sh\"\u{1}".into();
        r.timeline.client.push(StateChange {
            state: TcpState::TimeWait,
            at: 1e21,
            frame: None,
        });
        r.timeline.server.clear();
        r.tcp.server.missing_bytes = u64::MAX;
        assert_eq!(fast_line(&r), serde_line(&r));

        r.segments = Some(vec![SegmentRecord {
            frame: 3,
            ts: 1.5,
            from: Side::Client,
            flags: "FIN, ACK".into(),
            seq: 1,
            ack: None,
            abs_seq: 9,
            abs_ack: 10,
            len: 0,
            window: 65535,
            notes: vec![SegmentNote::Retransmission],
            client_state: TcpState::FinWait1,
            server_state: TcpState::Established,
        }]);
        assert_eq!(fast_line(&r), serde_line(&r));
        r.segments = Some(Vec::new());
        assert_eq!(fast_line(&r), serde_line(&r));
    }
}
