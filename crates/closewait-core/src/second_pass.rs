//! Reading a capture again for the few connections a first pass chose.
//!
//! `diagram --worst` and `report` choose their connections from a first pass that records
//! no segments (records cost memory per segment), then need those connections' segment
//! records to draw them. Analysing the whole capture again costs as much as the first
//! pass. But a connection's report depends only on the packets of its 4-tuple (earlier
//! incarnations included: a SYN reusing a port pair still in TIME-WAIT is marked), the
//! servers known when the table hands it over, and the moment it is handed over. So this
//! pass gives the table only the packets of the wanted 4-tuples (known by a hash kept from
//! the first pass), stops reading after the last wanted packet, and finishes what is still
//! open at the first pass's end of the capture.
//!
//! Each connection found is checked against the first pass: its [`Locator`] (first and last
//! frame, and a fingerprint of the verdict, roles, counters, states and times) must be the same. One
//! that differs (handed over earlier in the full pass, by the clock of other connections'
//! packets; or its roles inferred from servers seen later) is read again without the early
//! stop, and if it still differs, by the whole analysis with
//! [`RecordSegments::Ids`]: what is drawn is always what a full pass gives.

use crate::analyze::{analyze, AnalyzeOptions, Analyzer, RecordSegments};
use crate::capture::{CaptureError, InputSpec, SegmentStream};
use crate::flow::FlowKey;
use crate::model::ConnectionReport;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::SocketAddr;

/// Where a connection is in the capture, and a fingerprint of its report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Locator {
    /// 1-based; 0 for "no such connection" in [`Locators`].
    pub first_frame: u64,
    pub last_frame: u64,
    /// Hash of the 4-tuple, either way round ([`flow_hash`]).
    pub flow: u64,
    /// Hash of what a second pass could get wrong: roles, verdict, counters, states, times.
    pub fingerprint: u64,
}

fn hasher() -> foldhash::quality::FoldHasher {
    foldhash::quality::FixedState::with_seed(0x636c_6f73_6577_6169).build_hasher()
}

/// Hash of the 4-tuple `a`–`b`, the same either way round (the flow table's own
/// canonical [`FlowKey`]).
pub fn flow_hash(a: SocketAddr, b: SocketAddr) -> u64 {
    let mut h = hasher();
    FlowKey::between(&a, &b).hash(&mut h);
    h.finish()
}

impl Locator {
    pub fn of(r: &ConnectionReport) -> Locator {
        let mut h = hasher();
        (r.client, r.server, r.role_inferred).hash(&mut h);
        for x in [r.start, r.end, r.duration] {
            x.to_bits().hash(&mut h);
        }
        (
            r.packets.client,
            r.packets.server,
            r.bytes.client,
            r.bytes.server,
        )
            .hash(&mut h);
        let c = &r.close;
        (c.kind, c.initiator, c.first_by, c.first_frame, c.rst_by).hash(&mut h);
        (c.who_failed_to_respond, c.first.map(|s| s.as_str())).hash(&mut h);
        for x in [
            c.first_at,
            c.idle_before_close,
            c.waiting_since,
            c.waiting_for,
        ] {
            x.map(f64::to_bits).hash(&mut h);
        }
        for t in [&r.tcp.client, &r.tcp.server] {
            (
                t.retransmissions,
                t.out_of_order,
                t.keepalives,
                t.keepalive_acks,
            )
                .hash(&mut h);
            (
                t.zero_windows,
                t.missing_bytes,
                t.ignored_rsts,
                t.fins,
                t.rsts,
            )
                .hash(&mut h);
        }
        (&r.zeek.conn_state, &r.zeek.history).hash(&mut h);
        (r.client_state, r.server_state).hash(&mut h);
        for changes in [&r.timeline.client, &r.timeline.server] {
            changes.len().hash(&mut h);
            for s in changes {
                (s.state, s.at.to_bits(), s.frame).hash(&mut h);
            }
        }
        Locator {
            first_frame: r.first_frame,
            last_frame: r.last_frame,
            flow: flow_hash(r.client, r.server),
            fingerprint: h.finish(),
        }
    }
}

/// The [`Locator`] of every connection of a first pass, by id (ids are dense): 24 bytes per
/// connection, so that any connection a diagnosis ends up choosing can be read again.
#[derive(Debug, Default)]
pub struct Locators(Vec<Locator>);

impl Locators {
    pub fn add(&mut self, r: &ConnectionReport) {
        let Ok(i) = usize::try_from(r.id) else { return };
        if i >= self.0.len() {
            self.0.resize(i + 1, Locator::default());
        }
        self.0[i] = Locator::of(r);
    }

    pub fn get(&self, id: u64) -> Option<Locator> {
        let i = usize::try_from(id).ok()?;
        self.0.get(i).copied().filter(|l| l.first_frame != 0)
    }
}

/// Reads `inputs` again and returns the connections `ids` (in id order) with their segment
/// records; `locate` gives what the first pass saw of each, `capture_end_ns` is the first
/// pass's end of the capture ([`crate::capture::CaptureStats::analysis_end_ns`]). `opts`
/// are the first pass's options.
pub fn record(
    inputs: &[InputSpec],
    opts: &AnalyzeOptions,
    capture_end_ns: Option<i64>,
    ids: &BTreeSet<u64>,
    locate: &dyn Fn(u64) -> Option<Locator>,
) -> Result<Vec<ConnectionReport>, CaptureError> {
    record_counted(inputs, opts, capture_end_ns, ids, locate).map(|(found, _)| found)
}

/// [`record`], and how many of the connections needed the whole analysis.
fn record_counted(
    inputs: &[InputSpec],
    opts: &AnalyzeOptions,
    capture_end_ns: Option<i64>,
    ids: &BTreeSet<u64>,
    locate: &dyn Fn(u64) -> Option<Locator>,
) -> Result<(Vec<ConnectionReport>, usize), CaptureError> {
    let mut found = BTreeMap::new();
    if let Some(end) = capture_end_ns {
        for early_stop in [true, false] {
            let wanted: BTreeMap<u64, (u64, Locator)> = ids
                .iter()
                .filter(|id| !found.contains_key(*id))
                .filter_map(|&id| locate(id).map(|l| (l.first_frame, (id, l))))
                .collect();
            if wanted.is_empty() {
                break;
            }
            focused(inputs, opts, end, &wanted, early_stop, &mut found)?;
        }
    }
    let missing: BTreeSet<u64> = ids
        .iter()
        .filter(|id| !found.contains_key(*id))
        .copied()
        .collect();
    if !missing.is_empty() {
        let opts = AnalyzeOptions {
            record_segments: RecordSegments::Ids(missing.clone()),
            ..opts.clone()
        };
        analyze(inputs, &opts, &mut |r| {
            if missing.contains(&r.id) {
                found.insert(r.id, r);
            }
        })?;
    }
    Ok((found.into_values().collect(), missing.len()))
}

/// One pass over the packets of the `wanted` connections (by first frame: (id, locator)),
/// adding those that match their locator to `found`.
fn focused(
    inputs: &[InputSpec],
    opts: &AnalyzeOptions,
    capture_end_ns: i64,
    wanted: &BTreeMap<u64, (u64, Locator)>,
    early_stop: bool,
    found: &mut BTreeMap<u64, ConnectionReport>,
) -> Result<(), CaptureError> {
    let mut stream = SegmentStream::open(inputs)?;
    stream.set_window(opts.window);
    let mut analyzer = Analyzer::new(&AnalyzeOptions {
        record_segments: RecordSegments::All,
        ..opts.clone()
    });
    let flows: Vec<u64> = wanted.values().map(|(_, l)| l.flow).collect();
    let stop_after = wanted
        .values()
        .map(|(_, l)| l.last_frame)
        .max()
        .unwrap_or(0);
    let mut on_report = |mut r: ConnectionReport| {
        // Ids count the connections this pass saw: the first pass's is known by frame.
        let Some(&(id, locator)) = wanted.get(&r.first_frame) else {
            return;
        };
        if Locator::of(&r) == locator {
            r.id = id;
            found.insert(id, r);
        }
    };
    while let Some(&seg) = stream.next_segment() {
        if early_stop && seg.frame > stop_after {
            break;
        }
        if flows.contains(&flow_hash(seg.src, seg.dst)) {
            analyzer.push_with_payload(&seg, stream.payload(), &mut on_report);
        }
    }
    analyzer.finish(capture_end_ns, &mut on_report);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every connection of every shipped capture, read again by this pass one at a time
    /// and all together, is exactly what a full pass recording it gives, segments
    /// included; and most of them are found without the whole analysis.
    #[test]
    fn second_pass_gives_what_a_full_pass_gives() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../captures");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("captures/")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
            .collect();
        paths.sort();
        assert!(paths.len() > 20);
        let (mut connections, mut by_whole_analysis) = (0, 0);
        for path in paths {
            let inputs = [InputSpec::Path(path.clone())];
            let opts = AnalyzeOptions::default();
            let mut locators = Locators::default();
            let Ok(stats) = analyze(&inputs, &opts, &mut |r| locators.add(&r)) else {
                continue;
            };
            let all = AnalyzeOptions {
                record_segments: RecordSegments::All,
                ..AnalyzeOptions::default()
            };
            let mut full = BTreeMap::new();
            analyze(&inputs, &all, &mut |r| {
                full.insert(r.id, r);
            })
            .expect("reads again");
            let end = stats.analysis_end_ns;
            let locate = |id| locators.get(id);
            for (&id, want) in &full {
                let (got, whole) =
                    record_counted(&inputs, &opts, end, &BTreeSet::from([id]), &locate)
                        .expect("second pass");
                assert_eq!(
                    got,
                    vec![want.clone()],
                    "{} connection {id}",
                    path.display()
                );
                connections += 1;
                by_whole_analysis += whole;
            }
            let ids: BTreeSet<u64> = full.keys().copied().collect();
            let (got, _) = record_counted(&inputs, &opts, end, &ids, &locate).expect("second pass");
            let want: Vec<ConnectionReport> = full.into_values().collect();
            assert_eq!(got, want, "{}", path.display());
        }
        assert!(
            by_whole_analysis * 10 < connections,
            "{by_whole_analysis} of {connections}"
        );
    }
}
