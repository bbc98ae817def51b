//! `--format zeek` and `--format zeek-json`: the connections as Zeek's own `conn.log`, so
//! that closewait's output drops into `zeek-cut` and whatever else reads conn.log.
//!
//! One row per Zeek connection: a closewait connection that Zeek's timers would have split
//! (see `src/zeek.rs`) gives several rows, in order, and so does its post-close traffic
//! (segments after it was reported, which Zeek logs as new connections). Rows come in connection-id order (the
//! order connections started), each connection's rows together.
//!
//! Columns are Zeek's standard conn.log fields (scripts/base/protocols/conn/main.zeek).
//! What closewait cannot know is written unset (`-` in TSV, left out in JSON), as Zeek does
//! for a field it has no value for: `service` (no application-layer analysis),
//! `local_orig`/`local_resp` (no `Site::local_nets`), `orig_ip_bytes`/`resp_ip_bytes` (the
//! decoder keeps no IP lengths), `tunnel_parents`. As in Zeek, `duration`, `orig_bytes` and
//! `resp_bytes` are unset for a row whose duration is zero.
//!
//! uids are deterministic, so the same capture always gives the same log: `C` followed by
//! the base-62 digits of a 64-bit mix (SplitMix64's finaliser) of the connection's id and
//! the row's index within it. They look like Zeek's but are not Zeek's (Zeek's are random).

use super::{AnalyzeOutput, Renderer};
use closewait_core::model::{ConnectionReport, PostClose, ZeekView};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::SocketAddr;

/// Zeek's conn.log columns, in Zeek's order, with their Zeek types.
const FIELDS: [(&str, &str); 21] = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
];

/// A conn.log value: unset values are `-` in TSV and absent in JSON.
enum Value {
    Unset,
    Text(String),
    Number(String),
}

/// Whose row it is: the connection's id and its client and server.
#[derive(Clone, Copy)]
struct Owner {
    id: u64,
    client: SocketAddr,
    server: SocketAddr,
}

/// One conn.log row's values, in [`FIELDS`] order.
fn row_values(owner: Owner, index: usize, view: &ZeekView) -> Vec<Value> {
    use Value::{Number, Text, Unset};
    let row = &view.row;
    let (orig, resp) = if row.orig_is_client {
        (owner.client, owner.server)
    } else {
        (owner.server, owner.client)
    };
    let productive = row.duration > 0.0;
    let when_productive = |n: u64| {
        if productive {
            Number(n.to_string())
        } else {
            Unset
        }
    };
    vec![
        Number(format!("{:.6}", row.start)),
        Text(uid(owner.id, index)),
        Text(orig.ip().to_string()),
        Number(orig.port().to_string()),
        Text(resp.ip().to_string()),
        Number(resp.port().to_string()),
        Text("tcp".to_string()),
        Unset,
        if productive {
            Number(format!("{:.6}", row.duration))
        } else {
            Unset
        },
        when_productive(row.orig_bytes),
        when_productive(row.resp_bytes),
        Text(view.conn_state.clone()),
        Unset,
        Unset,
        Number(row.missed_bytes.to_string()),
        if view.history.is_empty() {
            Unset
        } else {
            Text(view.history.clone())
        },
        Number(row.orig_pkts.to_string()),
        Unset,
        Number(row.resp_pkts.to_string()),
        Unset,
        Unset,
    ]
}

/// Every conn.log row of a connection, with its owner and index: its first, then those
/// Zeek's timers split off, then those of its post-close traffic (which Zeek logs as new
/// connections).
fn rows<'a>(
    report: &'a ConnectionReport,
    post_close: &'a BTreeMap<u64, &'a PostClose>,
) -> impl Iterator<Item = (Owner, usize, &'a ZeekView)> {
    let owner = Owner {
        id: report.id,
        client: report.client,
        server: report.server,
    };
    let after: &[ZeekView] = post_close.get(&report.id).map_or(&[], |p| &p.zeek);
    std::iter::once(&report.zeek)
        .chain(report.zeek.later_rows.iter())
        .chain(after.iter())
        .enumerate()
        .map(move |(index, view)| (owner, index, view))
}

/// The post-close records of `out`, by connection id.
fn post_close_by_id<'a>(out: &'a AnalyzeOutput<'_>) -> BTreeMap<u64, &'a PostClose> {
    out.capture
        .post_close
        .by_connection
        .iter()
        .map(|p| (p.id, p))
        .collect()
}

/// The connection's `index`-th row's uid (see the module doc).
pub fn uid(id: u64, index: usize) -> String {
    let mut z = (id << 16 | (index.min(0xffff) as u64)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'C'];
    for _ in 0..11 {
        out.push(DIGITS[(z % 62) as usize]);
        z /= 62;
    }
    String::from_utf8(out).expect("ASCII digits")
}

/// Zeek's `#open`/`#close` stamp: `2026-12-05-16-00-00` (UTC).
fn stamp(epoch: f64) -> String {
    let utc = crate::render::utc::utc(epoch);
    utc.get(..19).unwrap_or(&utc).replace([' ', ':'], "-")
}

/// Zeek's tab-separated conn.log with its header and footer.
pub struct ZeekTsvRenderer;

impl Renderer for ZeekTsvRenderer {
    fn finish(&mut self, w: &mut dyn Write, out: &AnalyzeOutput<'_>) -> io::Result<()> {
        // Zeek stamps the log with wall-clock times; the capture's first and last packet
        // times keep the output the same from run to run.
        let first = out.capture.first_ts.unwrap_or(0.0);
        let last = out.capture.end_ts().unwrap_or(first);
        writeln!(w, "#separator \\x09")?;
        writeln!(w, "#set_separator\t,")?;
        writeln!(w, "#empty_field\t(empty)")?;
        writeln!(w, "#unset_field\t-")?;
        writeln!(w, "#path\tconn")?;
        writeln!(w, "#open\t{}", stamp(first))?;
        let names: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
        let types: Vec<&str> = FIELDS.iter().map(|f| f.1).collect();
        writeln!(w, "#fields\t{}", names.join("\t"))?;
        writeln!(w, "#types\t{}", types.join("\t"))?;
        let post_close = post_close_by_id(out);
        for report in out.connections {
            for (owner, index, view) in rows(report, &post_close) {
                let cells: Vec<String> = row_values(owner, index, view)
                    .into_iter()
                    .map(|v| match v {
                        Value::Unset => "-".to_string(),
                        Value::Text(s) if s.is_empty() => "(empty)".to_string(),
                        Value::Text(s) | Value::Number(s) => s,
                    })
                    .collect();
                writeln!(w, "{}", cells.join("\t"))?;
            }
        }
        writeln!(w, "#close\t{}", stamp(last))?;
        w.flush()
    }
}

/// Zeek's JSON log style (`LogAscii::use_json`): one object per row, unset fields left
/// out, `ts` in epoch seconds.
pub struct ZeekJsonRenderer;

impl Renderer for ZeekJsonRenderer {
    fn finish(&mut self, w: &mut dyn Write, out: &AnalyzeOutput<'_>) -> io::Result<()> {
        let post_close = post_close_by_id(out);
        for report in out.connections {
            for (owner, index, view) in rows(report, &post_close) {
                let mut line = String::from("{");
                for ((name, _), value) in FIELDS.iter().zip(row_values(owner, index, view)) {
                    let json = match value {
                        Value::Unset => continue,
                        Value::Text(s) => serde_json::to_string(&s)?,
                        Value::Number(s) => s,
                    };
                    if line.len() > 1 {
                        line.push(',');
                    }
                    line.push('"');
                    line.push_str(name);
                    line.push_str("\":");
                    line.push_str(&json);
                }
                line.push('}');
                writeln!(w, "{line}")?;
            }
        }
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_deterministic_distinct_and_zeek_shaped() {
        assert_eq!(uid(7, 0), uid(7, 0));
        assert_ne!(uid(7, 0), uid(7, 1));
        assert_ne!(uid(7, 0), uid(8, 0));
        let u = uid(0, 0);
        assert_eq!(u.len(), 12);
        assert!(u.starts_with('C') && u.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn stamp_is_zeeks_open_format() {
        assert_eq!(stamp(0.0), "1970-01-01-00-00-00");
    }
}
