//! Runs closewait on the Zeek corpus (`tests/data/zeek`) and pairs each row of Zeek's own
//! `conn.log` with closewait's connection, to measure how often closewait's Zeek-compatible
//! `conn_state` and `history` agree with Zeek.
//!
//! Shared by `tests/it/zeek_corpus.rs` (which asserts a floor) and `examples/zeek_compat.rs`
//! (which prints the report that becomes `docs/zeek-compat.md`).
//!
//! Pairing: a row names its connection by (orig_h, orig_p, resp_h, resp_p). closewait's
//! connection with the same two endpoints, in either orientation, is a candidate. A 4-tuple
//! can carry several connections (port reuse, Zeek's timeouts splitting one connection,
//! tunnels), so rows and candidates of the same 4-tuple are paired one to one: first the
//! pairs that agree on both columns, then those that agree on `conn_state`, then the rest in
//! order. When Zeek logged more rows than closewait has connections for a 4-tuple (Zeek
//! split what closewait sees as one connection), each extra row is compared with the best
//! of those connections and marked `shared`; the summary counts agreement with and without
//! shared rows. A row whose 4-tuple closewait never saw is a disagreement.

#![allow(dead_code)]

use closewait::analyze::{analyze, AnalyzeOptions};
use closewait::capture::InputSpec;
use closewait::model::{ConnectionReport, PostClose};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// One TCP row of Zeek's conn.log.
#[derive(Clone, Debug)]
pub struct Row {
    /// 0-based line number in expected.jsonl.
    pub line: usize,
    pub trace: String,
    /// The Zeek test that produced the row (the baseline folder name).
    pub test: String,
    pub orig: SocketAddr,
    pub resp: SocketAddr,
    pub conn_state: String,
    pub history: String,
    pub orig_pkts: String,
    pub resp_pkts: String,
}

/// closewait's side of a pairing.
#[derive(Clone, Debug)]
pub struct Ours {
    pub id: u64,
    pub conn_state: String,
    pub history: String,
    /// closewait's client is Zeek's responder.
    pub client_is_resp: bool,
    pub packets: (u64, u64),
}

#[derive(Clone, Debug)]
pub struct Comparison {
    pub row: Row,
    pub ours: Option<Ours>,
    /// How many closewait connections had this row's 4-tuple.
    pub candidates: usize,
    /// The closewait connection is also paired with another row (Zeek made several
    /// connections of what closewait sees as one).
    pub shared: bool,
    pub state_agrees: bool,
    pub history_agrees: bool,
    /// Why it disagrees, when the reason is known.
    pub reason: Option<&'static str>,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub rows: usize,
    pub state_agree: usize,
    pub history_agree: usize,
    pub both_agree: usize,
    /// Rows with no closewait connection at all.
    pub unpaired: usize,
    /// Rows compared with a connection already paired with another row.
    pub shared: usize,
    /// Agreement counting shared rows as disagreements (strict one-to-one pairing).
    pub strict_state_agree: usize,
    pub strict_history_agree: usize,
}

impl Summary {
    pub fn of(cmps: &[Comparison]) -> Summary {
        let mut s = Summary::default();
        for c in cmps {
            s.rows += 1;
            s.state_agree += c.state_agrees as usize;
            s.history_agree += c.history_agrees as usize;
            s.both_agree += (c.state_agrees && c.history_agrees) as usize;
            s.unpaired += c.ours.is_none() as usize;
            s.shared += c.shared as usize;
            s.strict_state_agree += (c.state_agrees && !c.shared) as usize;
            s.strict_history_agree += (c.history_agrees && !c.shared) as usize;
        }
        s
    }
    /// Rows that have at least one closewait connection with their 4-tuple.
    pub fn decoded_rows(&self) -> usize {
        self.rows - self.unpaired
    }
    /// conn_state agreement over the rows closewait has a connection for (the rows it does
    /// not see are tunnels and link layers the decoder does not read).
    pub fn decoded_state_ratio(&self) -> f64 {
        ratio(self.state_agree, self.decoded_rows())
    }
    pub fn state_ratio(&self) -> f64 {
        ratio(self.state_agree, self.rows)
    }
    pub fn history_ratio(&self) -> f64 {
        ratio(self.history_agree, self.rows)
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        1.0
    } else {
        n as f64 / d as f64
    }
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/zeek")
}

/// Reads expected.jsonl.
pub fn load_rows(dir: &Path) -> Result<Vec<Row>, String> {
    let path = dir.join("expected.jsonl");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (line, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(l).map_err(|e| format!("expected.jsonl:{}: {e}", line + 1))?;
        let s = |k: &str| -> String {
            match &v[k] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            }
        };
        let addr = |h: &str, p: &str| -> Result<SocketAddr, String> {
            let ip: IpAddr = s(h)
                .parse()
                .map_err(|e| format!("expected.jsonl:{}: {h}: {e}", line + 1))?;
            let port: u16 = s(p)
                .parse()
                .map_err(|e| format!("expected.jsonl:{}: {p}: {e}", line + 1))?;
            Ok(SocketAddr::new(ip, port))
        };
        let baseline = s("baseline");
        // testing/btest/Baseline/<test>/conn.log
        let test = baseline
            .split('/')
            .rev()
            .nth(1)
            .unwrap_or(&baseline)
            .to_string();
        rows.push(Row {
            line,
            trace: s("trace"),
            test,
            orig: addr("orig_h", "orig_p")?,
            resp: addr("resp_h", "resp_p")?,
            conn_state: s("conn_state"),
            history: s("history"),
            orig_pkts: s("orig_pkts"),
            resp_pkts: s("resp_pkts"),
        });
    }
    Ok(rows)
}

/// Runs closewait on every trace named in the rows and pairs rows with connections.
/// Comparisons come back in expected.jsonl order.
pub fn compare_all(dir: &Path) -> Result<Vec<Comparison>, String> {
    let rows = load_rows(dir)?;
    let mut by_trace: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        by_trace.entry(r.trace.as_str()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (trace, trace_rows) in by_trace {
        let path = dir.join("traces").join(trace);
        let mut reports = Vec::new();
        let read = analyze(
            &[InputSpec::Path(path.clone())],
            &AnalyzeOptions::default(),
            &mut |r| reports.push(r),
        );
        let stats = match read {
            Ok(stats) => stats,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        reports.sort_by_key(|r| r.id);
        out.extend(pair_trace(
            &trace_rows,
            &conn_log_rows(reports, &stats.post_close.by_connection),
        ));
    }
    out.sort_by_key(|c| c.row.line);
    Ok(out)
}

/// One report per conn.log row: a connection Zeek's timers split (`zeek.later_rows`), or
/// that had post-close traffic (which Zeek logs as new connections), becomes several, each
/// carrying one row's `zeek` view.
pub fn conn_log_rows(
    reports: Vec<ConnectionReport>,
    post_close: &[PostClose],
) -> Vec<ConnectionReport> {
    let mut out = Vec::with_capacity(reports.len());
    for mut r in reports {
        let mut later = std::mem::take(&mut r.zeek.later_rows);
        for p in post_close.iter().filter(|p| p.id == r.id) {
            later.extend(p.zeek.iter().cloned());
        }
        let splits: Vec<ConnectionReport> = later
            .into_iter()
            .map(|row| {
                let mut split = r.clone();
                split.zeek = row;
                split
            })
            .collect();
        out.push(r);
        out.extend(splits);
    }
    out
}

fn same_tuple(row: &Row, r: &ConnectionReport) -> bool {
    (r.client == row.orig && r.server == row.resp) || (r.client == row.resp && r.server == row.orig)
}

pub fn pair_trace(rows: &[&Row], reports: &[ConnectionReport]) -> Vec<Comparison> {
    // Group the rows by unordered 4-tuple, keeping file order inside each group.
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    for r in rows {
        match groups.iter_mut().find(|g| {
            (g[0].orig == r.orig && g[0].resp == r.resp)
                || (g[0].orig == r.resp && g[0].resp == r.orig)
        }) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    let mut out = Vec::new();
    for g in groups {
        let cands: Vec<&ConnectionReport> =
            reports.iter().filter(|r| same_tuple(g[0], r)).collect();
        let mut used = vec![false; cands.len()];
        let mut paired: Vec<Option<usize>> = vec![None; g.len()];
        let passes: [fn(&Row, &ConnectionReport) -> bool; 3] = [
            |row, r| row.conn_state == r.zeek.conn_state && row.history == r.zeek.history,
            |row, r| row.conn_state == r.zeek.conn_state,
            |_, _| true,
        ];
        for pass in passes {
            for (i, row) in g.iter().enumerate() {
                if paired[i].is_some() {
                    continue;
                }
                if let Some(j) = (0..cands.len()).find(|&j| !used[j] && pass(row, cands[j])) {
                    used[j] = true;
                    paired[i] = Some(j);
                }
            }
        }
        // Rows left over share the best-agreeing connection of their 4-tuple.
        let mut shared = vec![false; g.len()];
        for (i, row) in g.iter().enumerate() {
            if paired[i].is_some() || cands.is_empty() {
                continue;
            }
            let best = passes
                .iter()
                .find_map(|pass| (0..cands.len()).find(|&j| pass(row, cands[j])));
            paired[i] = best;
            shared[i] = true;
        }
        for (i, row) in g.iter().enumerate() {
            let ours = paired[i].map(|j| {
                let r = cands[j];
                Ours {
                    id: r.id,
                    conn_state: r.zeek.conn_state.clone(),
                    history: r.zeek.history.clone(),
                    client_is_resp: r.client == row.resp,
                    packets: (r.packets.client, r.packets.server),
                }
            });
            let state_agrees = ours
                .as_ref()
                .is_some_and(|o| o.conn_state == row.conn_state);
            let history_agrees = ours.as_ref().is_some_and(|o| o.history == row.history);
            let mut c = Comparison {
                row: (*row).clone(),
                ours,
                candidates: cands.len(),
                shared: shared[i],
                state_agrees,
                history_agrees,
                reason: None,
            };
            if !(state_agrees && history_agrees) || c.shared {
                c.reason = known_reason(&c);
            }
            out.push(c);
        }
    }
    out
}

/// Explanations for disagreements that are understood and not closewait bugs, keyed by the
/// Zeek test that produced the row.
pub fn known_reason(c: &Comparison) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|(test, _)| *test == c.row.test)
        .map(|(_, why)| *why)
}

const KNOWN: &[(&str, &str)] = &[
    (
        "scripts.base.protocols.ftp.gridftp",
        "Zeek's GridFTP script stops analysing a data channel once it has recognised it \
         (`skip_further_processing`, GridFTP::skip_data), so Zeek's endpoint states and \
         history freeze while the connection is still open (S1); closewait follows it to \
         its close.",
    ),
    (
        "scripts.base.protocols.ftp.ftp-max-command-length",
        "`X` (\"connection analysis partial\") is written by Zeek's application-layer \
         analysis; closewait does none. Without it the histories are equal.",
    ),
    (
        "core.tunnels.gtp.different_dl_and_ul",
        "The TCP connection travels inside GTP-U, uplink from UDP port 5906 to 2152 and \
         downlink from 2152 to 2152: closewait opens the tunnel on either port, as Zeek \
         does, and the states agree. The histories differ only by `X` (\"connection \
         analysis partial\"), written by Zeek's application-layer analysis, which closewait \
         does not do.",
    ),
    (
        "core.tunnels.gtp.outer_ip_frag",
        "The TCP connection travels inside GTP-U whose outer IP datagrams are fragmented, \
         and 4 of them lost their last fragment in the capture. Zeek cannot reassemble \
         those, never sees their 4 server segments (its missed_bytes, 5760) and records a \
         content gap (`g`); closewait reads the inner TCP header from the first fragment, \
         which holds it, sees all segments and finds no gap. The states agree.",
    ),
    (
        "core.tunnels.gre-aruba-amsdu",
        "Two TCP segments from port 443 travel in one 802.11 A-MSDU inside Aruba's GRE; \
         both closewait and Zeek decode both. Zeek keeps the first sender (port 443) as \
         originator: that test loads no analyzer for 443, so 443 is not among its likely \
         server ports; closewait makes mid-stream traffic from a port below 1024 the \
         responder's (`^d`). The states agree.",
    ),
    (
        "core.vntag-in-vlan",
        "The frame carries a VN-Tag (EtherType 0x8926) between two VLAN tags, and the capture \
         cut it inside the TCP options: Zeek creates the connection but does not analyse the \
         segment (no packets, empty history); closewait reads the SYN-ACK's fixed header \
         and records it (`^h`). The states agree.",
    ),
];

/// One line per row, tab-separated, for files and terminals.
pub fn tsv(cmps: &[Comparison]) -> String {
    let mut s = String::from(
        "line\ttrace\torig\tresp\tzeek_state\tours_state\tzeek_history\tours_history\tstate_ok\thistory_ok\tcandidates\tshared\treason\n",
    );
    for c in cmps {
        let (st, hi) = c
            .ours
            .as_ref()
            .map(|o| (o.conn_state.as_str(), o.history.as_str()))
            .unwrap_or(("(none)", "(none)"));
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            c.row.line + 1,
            c.row.trace,
            c.row.orig,
            c.row.resp,
            c.row.conn_state,
            st,
            c.row.history,
            hi,
            c.state_agrees,
            c.history_agrees,
            c.candidates,
            c.shared,
            c.reason.unwrap_or("")
        ));
    }
    s
}
