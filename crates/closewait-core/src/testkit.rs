//! Test support: hand-built segments between a client and a server, run through the real
//! pipeline (flow table, state machine, classifier). Used by unit tests only; every unit
//! test that builds a [`Segment`] starts from [`segment`].

use crate::analyze::{AnalyzeOptions, Analyzer, RecordSegments};
use crate::model::ConnectionReport;
use crate::segment::{Segment, TcpFlags};
use std::net::SocketAddr;

pub const SYN: u8 = TcpFlags::SYN;
pub const ACK: u8 = TcpFlags::ACK;
pub const FIN: u8 = TcpFlags::FIN;
pub const RST: u8 = TcpFlags::RST;
pub const PSH: u8 = TcpFlags::PSH;

/// Client 10.77.0.1:40000, server 10.77.0.2:8788 unless changed.
pub struct Wire {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub segments: Vec<Segment>,
    pub ts_ns: i64,
}

impl Default for Wire {
    fn default() -> Wire {
        Wire::new()
    }
}

/// A segment from `src` to `dst` with `len` payload bytes, all captured, no TCP options, a
/// 502-byte window, at time 0, frame 0: tests change the fields they are about with
/// `Segment { ts_ns, ..segment(…) }`.
pub fn segment(
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
) -> Segment {
    Segment {
        ts_ns: 0,
        frame: 0,
        src,
        dst,
        seq,
        ack,
        flags: TcpFlags(flags),
        window: 502,
        window_scale: None,
        mss: None,
        timestamps: None,
        sack_permitted: false,
        payload_len: len,
        captured_payload_len: len,
    }
}

pub const C: bool = true;
pub const S: bool = false;

impl Wire {
    pub fn new() -> Wire {
        Wire {
            client: "10.77.0.1:40000".parse().unwrap(),
            server: "10.77.0.2:8788".parse().unwrap(),
            segments: Vec::new(),
            ts_ns: 1_700_000_000_000_000_000,
        }
    }

    /// Advances the clock by `secs`.
    pub fn wait(&mut self, secs: f64) -> &mut Wire {
        self.ts_ns += (secs * 1e9) as i64;
        self
    }

    /// A segment from the client (`C`) or the server (`S`), 1 ms after the previous one.
    pub fn send(
        &mut self,
        from_client: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        len: u32,
    ) -> &mut Wire {
        self.ts_ns += 1_000_000;
        let (src, dst) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        self.segments.push(Segment {
            ts_ns: self.ts_ns,
            frame: self.segments.len() as u64 + 1,
            window_scale: if flags & SYN != 0 { Some(7) } else { None },
            ..segment(src, dst, flags, seq, ack, len)
        });
        self
    }

    /// Handshake (client ISN 1000, server ISN 5000), a 100-byte request and a 200-byte
    /// response: client next seq 1101, server next seq 5201.
    pub fn exchange(&mut self) -> &mut Wire {
        self.send(C, SYN, 1000, 0, 0)
            .send(S, SYN | ACK, 5000, 1001, 0)
            .send(C, ACK, 1001, 5001, 0)
            .send(C, PSH | ACK, 1001, 5001, 100)
            .send(S, ACK, 5001, 1101, 0)
            .send(S, PSH | ACK, 5001, 1101, 200)
            .send(C, ACK, 1101, 5201, 0)
    }

    /// Runs the segments through the analyzer; the capture ends `tail` seconds after the
    /// last segment.
    pub fn analyze_with_tail(&self, tail: f64) -> Vec<ConnectionReport> {
        let opts = AnalyzeOptions {
            record_segments: RecordSegments::All,
            ..AnalyzeOptions::default()
        };
        let mut analyzer = Analyzer::new(&opts);
        let mut out = Vec::new();
        for s in &self.segments {
            analyzer.push(s, &mut |r| out.push(r));
        }
        let end = self.ts_ns + (tail * 1e9) as i64;
        analyzer.finish(end, &mut |r| out.push(r));
        out.sort_by_key(|r| r.id);
        out
    }

    pub fn analyze(&self) -> Vec<ConnectionReport> {
        self.analyze_with_tail(0.0)
    }

    pub fn only(&self) -> ConnectionReport {
        let mut all = self.analyze();
        assert_eq!(all.len(), 1, "expected one connection: {all:#?}");
        all.remove(0)
    }
}
