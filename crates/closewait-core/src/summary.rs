//! Aggregates across connections: how many ended each way, who started the close, and a
//! netstat-like table of the states each side was left in, per server endpoint.
//!
//! A [`Summary`] is computed from a slice of [`ConnectionReport`]s and from nothing else, so
//! it always describes exactly the connections it was given: pass the filtered list and the
//! counts are the filtered counts. It is a plain serialisable value shared by every output
//! (text, JSON, and later `diagnose`/`diagram`); it may not print, and it iterates no hash
//! map, so the same connections always give the same summary.

use crate::model::{CloseKind, ConnectionReport, Initiator, Side};
use crate::state::TcpState;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Aggregates over a set of connections.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Number of connections summarised.
    pub connections: u64,
    /// Connections per close kind, every kind present (zeros included), in
    /// [`CloseKind::ALL`] order.
    pub by_kind: KindCounts,
    /// Connections per close initiator.
    pub by_initiator: InitiatorCounts,
    /// How many connections left each side in each state, per server endpoint: the
    /// netstat view of the capture. Sorted by side (client first), state (RFC order),
    /// then server address.
    pub end_states: Vec<EndStateRow>,
    /// The connection whose non-answering side has sat in CLOSE_WAIT the longest at the
    /// end of the capture, if any side was left in CLOSE_WAIT.
    pub longest_close_wait: Option<LongestCloseWait>,
}

/// A count per [`CloseKind`], indexed in [`CloseKind::ALL`] order.
///
/// Serialised as a JSON object whose keys come in that same order:
/// `{"graceful": 3, "simultaneous": 0, …}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindCounts([u64; CloseKind::ALL.len()]);

impl KindCounts {
    fn index(kind: CloseKind) -> usize {
        // ALL lists every variant once, so the position always exists.
        CloseKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_default()
    }

    pub fn get(&self, kind: CloseKind) -> u64 {
        self.0[Self::index(kind)]
    }

    pub fn add(&mut self, kind: CloseKind) {
        self.0[Self::index(kind)] += 1;
    }

    /// `(kind, count)` for every kind, zeros included, in [`CloseKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (CloseKind, u64)> + '_ {
        CloseKind::ALL.into_iter().zip(self.0.iter().copied())
    }
}

impl Serialize for KindCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(CloseKind::ALL.len()))?;
        for (kind, n) in self.iter() {
            map.serialize_entry(kind.as_str(), &n)?;
        }
        map.end()
    }
}

/// Connections per close initiator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InitiatorCounts {
    pub client: u64,
    pub server: u64,
    pub both: u64,
    pub none: u64,
}

impl InitiatorCounts {
    pub fn get(&self, who: Initiator) -> u64 {
        match who {
            Initiator::Client => self.client,
            Initiator::Server => self.server,
            Initiator::Both => self.both,
            Initiator::None => self.none,
        }
    }

    fn add(&mut self, who: Initiator) {
        match who {
            Initiator::Client => self.client += 1,
            Initiator::Server => self.server += 1,
            Initiator::Both => self.both += 1,
            Initiator::None => self.none += 1,
        }
    }

    /// `(initiator, count)` in the order client, server, both, none.
    pub fn iter(&self) -> impl Iterator<Item = (Initiator, u64)> + '_ {
        [
            Initiator::Client,
            Initiator::Server,
            Initiator::Both,
            Initiator::None,
        ]
        .into_iter()
        .map(|i| (i, self.get(i)))
    }
}

/// One row of the end-state table: `count` connections left `side` in `state`, all of
/// them talking to `server`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EndStateRow {
    pub side: Side,
    pub state: TcpState,
    #[serde(serialize_with = "crate::model::ser_addr")]
    pub server: SocketAddr,
    pub count: u64,
}

/// The longest wait in CLOSE_WAIT seen at the end of the capture.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LongestCloseWait {
    /// The connection's id.
    pub id: u64,
    /// The side left in CLOSE_WAIT.
    pub side: Side,
    /// That side's address.
    #[serde(serialize_with = "crate::model::ser_addr")]
    pub addr: SocketAddr,
    /// Epoch seconds since when that side has owed its FIN (`close.waiting_since`).
    pub since: Option<f64>,
    /// Seconds from `since` to the end of the capture (`close.waiting_for`).
    pub waiting_for: f64,
}

impl Summary {
    /// Summarises `reports`, in whatever order they come: the result does not depend on it.
    pub fn from_reports(reports: &[ConnectionReport]) -> Summary {
        let mut b = SummaryBuilder::default();
        for r in reports {
            b.add(r);
        }
        b.finish()
    }

    /// Connections that left `side` in `state`, across all servers.
    pub fn end_state_total(&self, side: Side, state: TcpState) -> u64 {
        self.end_states
            .iter()
            .filter(|row| row.side == side && row.state == state)
            .map(|row| row.count)
            .sum()
    }
}

/// Builds a [`Summary`] one connection at a time, so a streaming caller need not keep
/// every report. Gives the same result as [`Summary::from_reports`] in any order.
#[derive(Clone, Debug, Default)]
pub struct SummaryBuilder {
    connections: u64,
    by_kind: KindCounts,
    by_initiator: InitiatorCounts,
    table: BTreeMap<EndStateKey, u64>,
    /// For each side (client, server), the row the last connections went to and how many
    /// of them in a row, not yet in `table`. Why: consecutive connections mostly end in
    /// the same states towards the same server, and comparing a key costs a fraction of a
    /// map lookup.
    runs: [Option<(EndStateKey, u64)>; 2],
    longest: Option<LongestCloseWait>,
}

/// A row of the end-state table: side, its end state, server.
type EndStateKey = (Side, TcpState, SocketAddr);

impl SummaryBuilder {
    pub fn add(&mut self, r: &ConnectionReport) {
        self.connections += 1;
        self.by_kind.add(r.close.kind);
        self.by_initiator.add(r.close.initiator);
        for (run, side) in self.runs.iter_mut().zip([Side::Client, Side::Server]) {
            let key = (side, r.state(side), r.server);
            match run {
                Some((last, count)) if *last == key => *count += 1,
                _ => {
                    if let Some((last, count)) = run.replace((key, 1)) {
                        *self.table.entry(last).or_default() += count;
                    }
                }
            }
        }
        if let Some(candidate) = close_wait_of(r) {
            let better = match &self.longest {
                None => true,
                // Longer wait wins; on a tie the lower id, so input order never matters.
                Some(best) => {
                    candidate.waiting_for > best.waiting_for
                        || (candidate.waiting_for == best.waiting_for && candidate.id < best.id)
                }
            };
            if better {
                self.longest = Some(candidate);
            }
        }
    }

    pub fn finish(mut self) -> Summary {
        for (key, count) in self.runs.into_iter().flatten() {
            *self.table.entry(key).or_default() += count;
        }
        Summary {
            connections: self.connections,
            by_kind: self.by_kind,
            by_initiator: self.by_initiator,
            end_states: self
                .table
                .into_iter()
                .map(|((side, state, server), count)| EndStateRow {
                    side,
                    state,
                    server,
                    count,
                })
                .collect(),
            longest_close_wait: self.longest,
        }
    }
}

/// The CLOSE_WAIT wait of one connection: the side that failed to answer a FIN, when it
/// was left in CLOSE_WAIT and the classifier measured how long it has waited.
fn close_wait_of(r: &ConnectionReport) -> Option<LongestCloseWait> {
    let side = r.close.who_failed_to_respond?;
    if r.state(side) != TcpState::CloseWait {
        return None;
    }
    let waiting_for = r.close.waiting_for?;
    if !waiting_for.is_finite() {
        return None;
    }
    Some(LongestCloseWait {
        id: r.id,
        side,
        addr: r.addr(side),
        since: r.close.waiting_since,
        waiting_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::ReportBuilder;

    fn leak(id: u64, server: &str, waited: f64) -> ConnectionReport {
        ReportBuilder::new(id)
            .server(server)
            .unanswered_fin_by_server(waited)
            .build()
    }

    #[test]
    fn empty_capture_has_all_kinds_at_zero() {
        let s = Summary::from_reports(&[]);
        assert_eq!(s.connections, 0);
        let kinds: Vec<(CloseKind, u64)> = s.by_kind.iter().collect();
        assert_eq!(kinds.len(), CloseKind::ALL.len());
        assert!(kinds.iter().all(|(_, n)| *n == 0));
        assert!(s.end_states.is_empty());
        assert_eq!(s.longest_close_wait, None);
    }

    #[test]
    fn server_idle_close_client_leak_counts_close_wait_per_server() {
        let reports = vec![
            leak(0, "10.77.0.2:8788", 5.0),
            leak(1, "10.77.0.2:8788", 7.5),
            leak(2, "10.77.0.3:8788", 1.0),
            ReportBuilder::new(3).server("10.77.0.2:8788").build(), // graceful
        ];
        let s = Summary::from_reports(&reports);
        assert_eq!(s.connections, 4);
        assert_eq!(s.by_kind.get(CloseKind::UnansweredFin), 3);
        assert_eq!(s.by_kind.get(CloseKind::Graceful), 1);
        assert_eq!(s.by_kind.get(CloseKind::Abort), 0);
        assert_eq!(s.by_initiator.server, 3);
        assert_eq!(s.by_initiator.client, 1);
        assert_eq!(s.end_state_total(Side::Client, TcpState::CloseWait), 3);
        assert_eq!(s.end_state_total(Side::Server, TcpState::FinWait2), 3);

        let client_rows: Vec<(TcpState, String, u64)> = s
            .end_states
            .iter()
            .filter(|r| r.side == Side::Client)
            .map(|r| (r.state, r.server.to_string(), r.count))
            .collect();
        assert_eq!(
            client_rows,
            vec![
                (TcpState::Closed, "10.77.0.2:8788".to_string(), 1),
                (TcpState::CloseWait, "10.77.0.2:8788".to_string(), 2),
                (TcpState::CloseWait, "10.77.0.3:8788".to_string(), 1),
            ]
        );
        // Client rows all come before server rows.
        let first_server = s.end_states.iter().position(|r| r.side == Side::Server);
        assert_eq!(first_server, Some(client_rows.len()));

        let longest = s.longest_close_wait.expect("a CLOSE_WAIT leak");
        assert_eq!((longest.id, longest.side), (1, Side::Client));
        assert_eq!(longest.waiting_for, 7.5);
    }

    #[test]
    fn summary_does_not_depend_on_input_order() {
        let mut reports = vec![
            leak(0, "10.0.0.9:80", 3.0),
            leak(1, "10.0.0.1:80", 3.0),
            ReportBuilder::new(2).server("[2001:db8::1]:443").build(),
        ];
        let forward = Summary::from_reports(&reports);
        reports.reverse();
        let backward = Summary::from_reports(&reports);
        assert_eq!(forward, backward);
        // Equal waits: the lower id is reported.
        assert_eq!(forward.longest_close_wait.map(|l| l.id), Some(0));
    }

    /// Runs of connections ending alike, broken by others and taken up again, on both
    /// sides: every row counts each of its connections once.
    #[test]
    fn end_state_rows_count_runs_and_returns() {
        let servers = ["10.0.0.1:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.1:80"];
        let mut reports = Vec::new();
        for (i, server) in servers.iter().cycle().take(40).enumerate() {
            let id = i as u64;
            reports.push(match i % 7 {
                0..=2 => leak(id, server, 1.0),
                _ => ReportBuilder::new(id).server(server).build(),
            });
        }
        let mut expected: BTreeMap<EndStateKey, u64> = BTreeMap::new();
        for r in &reports {
            for side in [Side::Client, Side::Server] {
                *expected.entry((side, r.state(side), r.server)).or_default() += 1;
            }
        }
        let rows: BTreeMap<EndStateKey, u64> = Summary::from_reports(&reports)
            .end_states
            .into_iter()
            .map(|row| ((row.side, row.state, row.server), row.count))
            .collect();
        assert_eq!(rows, expected);
    }

    #[test]
    fn by_kind_serialises_in_close_kind_order_with_zeros() {
        let s = Summary::from_reports(&[leak(0, "10.0.0.1:80", 1.0)]);
        let json = serde_json::to_string(&s.by_kind).expect("serialises");
        let expected: Vec<String> = CloseKind::ALL
            .iter()
            .map(|k| {
                let n = if *k == CloseKind::UnansweredFin { 1 } else { 0 };
                format!("\"{}\":{n}", k.as_str())
            })
            .collect();
        assert_eq!(json, format!("{{{}}}", expected.join(",")));
    }

    #[test]
    fn close_wait_without_measured_wait_is_not_longest() {
        let mut r = leak(0, "10.0.0.1:80", 1.0);
        r.close.waiting_for = None;
        assert_eq!(Summary::from_reports(&[r]).longest_close_wait, None);
    }
}
