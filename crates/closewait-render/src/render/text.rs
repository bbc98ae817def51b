//! The default, human-readable output of `closewait analyze`.
//!
//! A line per connection in aligned columns, then the summary (connections per close kind,
//! who initiated, and a netstat-like table of end states per side and server endpoint),
//! then what the reader had to say about the capture. Deterministic by construction:
//! connections come sorted by id, seconds always have three decimals, and every table is
//! built from ordered data, never from a hash map; the output does not depend on the
//! terminal either.

use super::{fmt_secs, AnalyzeOutput, Renderer};
use closewait_core::capture::CaptureStats;
use closewait_core::model::ConnectionReport;
use closewait_core::summary::Summary;
use std::io::{self, Write};
use std::net::SocketAddr;

/// Writes everything in [`Renderer::finish`] (column widths need every row), but keeps
/// only the formatted cells of each connection's line from [`Renderer::connection`], not
/// the reports: a capture of 300 000 connections costs tens of MB here, not hundreds.
/// Formatting the cells as connections arrive also overlaps it with the analysis (which
/// runs on another thread) and formats each cell once, not once for the widths and once
/// for the lines.
#[derive(Default)]
pub struct TextRenderer {
    /// The cells of every row, one after the other.
    cells: String,
    rows: Vec<Row>,
    /// The widest cell of each column so far (the header's included).
    widths: [usize; CONNECTION_COLUMNS],
    any_role_inferred: bool,
    /// Some connection carried HTTP/1.x: the `requests` column is shown.
    any_http: bool,
}

impl TextRenderer {
    pub fn new() -> Self {
        TextRenderer::default()
    }
}

/// Where a connection's line sits in [`TextRenderer::cells`].
#[derive(Clone, Copy, Debug)]
struct Row {
    id: u64,
    /// Offset of the first cell.
    start: usize,
    /// Where each cell ends, relative to `start`.
    ends: [u32; CONNECTION_COLUMNS],
}

impl Renderer for TextRenderer {
    fn connection(&mut self, _w: &mut dyn Write, report: &ConnectionReport) -> io::Result<()> {
        if self.rows.is_empty() {
            self.widths = CONNECTION_HEADER.map(str::len);
        }
        let start = self.cells.len();
        let ends = connection_cells(report, &mut self.cells);
        // Every cell is ASCII (digits, addresses, state names), so its width is its length.
        debug_assert!(self.cells[start..].is_ascii());
        let mut from = 0;
        for (i, &end) in ends.iter().enumerate() {
            self.widths[i] = self.widths[i].max((end - from) as usize);
            from = end;
        }
        self.any_role_inferred |= report.role_inferred;
        self.any_http |= report.http.is_some();
        self.rows.push(Row {
            id: report.id,
            start,
            ends,
        });
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, out: &AnalyzeOutput<'_>) -> io::Result<()> {
        self.sort_rows();
        self.write_connections(w, out)?;
        writeln!(w)?;
        write_summary(w, out)?;
        write_capture(w, out.capture)?;
        w.flush()
    }
}

/// Appends `n` spaces.
fn push_spaces(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, b' ');
}

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Right,
}

/// Writes rows as columns separated by two spaces, each as wide as its widest cell. The
/// last column is not padded, so lines carry no trailing spaces.
fn write_table(
    w: &mut dyn Write,
    indent: &str,
    align: &[Align],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let mut widths = vec![0usize; align.len()];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            let last = i + 1 == row.len();
            match align[i] {
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
                Align::Left => {
                    line.push_str(cell);
                    if !last {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
        }
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// Appends the cells of a connection's line to `buf`; returns where each cell ends,
/// relative to where the line starts.
fn connection_cells(r: &ConnectionReport, buf: &mut String) -> [u32; CONNECTION_COLUMNS] {
    use std::fmt::Write as _;
    let start = buf.len();
    let mut ends = [0u32; CONNECTION_COLUMNS];
    // A row is a few hundred bytes at most (the widest cell is a float's digits).
    let mut end = |buf: &String, i: usize| ends[i] = (buf.len() - start) as u32;
    buf.push_str(itoa::Buffer::new().format(r.id));
    if r.role_inferred {
        buf.push('*');
    }
    end(buf, 0);
    push_addr(buf, &r.client);
    end(buf, 1);
    push_addr(buf, &r.server);
    end(buf, 2);
    // Writing into a String cannot fail.
    let _ = write!(buf, "{:.3}s", r.duration);
    end(buf, 3);
    buf.push_str(r.close.kind.as_str());
    end(buf, 4);
    buf.push_str(r.close.initiator.as_str());
    end(buf, 5);
    buf.push_str(r.client_state.as_str());
    end(buf, 6);
    buf.push_str(r.server_state.as_str());
    end(buf, 7);
    match r.close.idle_before_close {
        Some(idle) => {
            let _ = write!(buf, "{idle:.3}s");
        }
        None => buf.push('-'),
    }
    end(buf, 8);
    match &r.http {
        Some(http) => buf.push_str(itoa::Buffer::new().format(http.requests)),
        None => buf.push('-'),
    }
    end(buf, 9);
    ends
}

/// `ip:port` as std's `Display` writes it; IPv4 without the formatting machinery, which
/// cost more than the rest of the row.
fn push_addr(buf: &mut String, a: &SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.ip().octets().iter().enumerate() {
                if i > 0 {
                    buf.push('.');
                }
                buf.push_str(digits.format(*octet));
            }
            buf.push(':');
            buf.push_str(digits.format(v4.port()));
        }
        SocketAddr::V6(_) => {
            use std::fmt::Write as _;
            let _ = write!(buf, "{a}");
        }
    }
}

/// The columns of a connection's line; the last one, `requests` (HTTP requests on the
/// connection), only when some connection carried HTTP/1.x, so captures without HTTP keep
/// the table they always had.
const CONNECTION_COLUMNS: usize = 10;

const CONNECTION_HEADER: [&str; CONNECTION_COLUMNS] = [
    "id",
    "client",
    "server",
    "duration",
    "kind",
    "initiator",
    "client end",
    "server end",
    "idle before close",
    "requests",
];

impl TextRenderer {
    /// Puts the rows in id order. Ids are numbered densely from 0, so unless a filter
    /// left only a few of many, placing each row at its id is cheaper than sorting.
    fn sort_rows(&mut self) {
        let n = self.rows.len();
        let max_id = self.rows.iter().map(|r| r.id).max().unwrap_or(0);
        if max_id > 4 * n as u64 + 1024 {
            self.rows.sort_unstable_by_key(|r| r.id);
            return;
        }
        let mut by_id: Vec<Option<Row>> = vec![None; max_id as usize + 1];
        for row in self.rows.drain(..) {
            by_id[row.id as usize] = Some(row);
        }
        self.rows.extend(by_id.into_iter().flatten());
    }

    fn write_connections(&self, w: &mut dyn Write, out: &AnalyzeOutput<'_>) -> io::Result<()> {
        if self.rows.is_empty() {
            if out.filter.is_empty() {
                writeln!(w, "no TCP connections in the capture")?;
            } else {
                writeln!(
                    w,
                    "no connection matches the filter ({}); the capture holds {}",
                    out.filter,
                    plural(out.connections_total, "connection")
                )?;
            }
            return Ok(());
        }
        use Align::{Left as L, Right as R};
        const ALIGN: [Align; CONNECTION_COLUMNS] = [R, L, L, R, L, L, L, L, R, R];
        let columns = if self.any_http {
            CONNECTION_COLUMNS
        } else {
            CONNECTION_COLUMNS - 1
        };
        let widths = &self.widths;
        // Lines go into one buffer, written out whenever it holds a good chunk.
        let mut out = Vec::with_capacity(1 << 17);
        let push_line = |out: &mut Vec<u8>, cells: [&str; CONNECTION_COLUMNS]| {
            for (i, cell) in cells.iter().take(columns).enumerate() {
                if i > 0 {
                    out.extend_from_slice(b"  ");
                }
                // ASCII cells (see `connection`): width is length.
                let pad = widths[i] - cell.len();
                match ALIGN[i] {
                    Align::Right => {
                        push_spaces(out, pad);
                        out.extend_from_slice(cell.as_bytes());
                    }
                    Align::Left => {
                        out.extend_from_slice(cell.as_bytes());
                        if i + 1 < columns {
                            push_spaces(out, pad);
                        }
                    }
                }
            }
            out.push(b'\n');
        };
        push_line(&mut out, CONNECTION_HEADER);
        for r in &self.rows {
            let mut cells = [""; CONNECTION_COLUMNS];
            let mut from = r.start;
            for (i, end) in r.ends.iter().enumerate() {
                let to = r.start + *end as usize;
                cells[i] = &self.cells[from..to];
                from = to;
            }
            push_line(&mut out, cells);
            if out.len() >= 1 << 16 {
                w.write_all(&out)?;
                out.clear();
            }
        }
        w.write_all(&out)?;
        if self.any_role_inferred {
            writeln!(
                w,
                "* no SYN seen: which side is the client was inferred from the ports"
            )?;
        }
        Ok(())
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn write_summary(w: &mut dyn Write, out: &AnalyzeOutput<'_>) -> io::Result<()> {
    let s: &Summary = out.summary;
    use Align::{Left as L, Right as R};

    if out.filter.is_empty() {
        writeln!(w, "summary: {}", plural(s.connections, "connection"))?;
    } else {
        writeln!(
            w,
            "summary: {} of {} match the filter ({}); all counts below cover only those",
            s.connections,
            plural(out.connections_total, "connection"),
            out.filter
        )?;
    }

    writeln!(w, "\nconnections per close kind")?;
    let rows: Vec<Vec<String>> = s
        .by_kind
        .iter()
        .map(|(k, n)| vec![k.to_string(), n.to_string()])
        .collect();
    write_table(w, "  ", &[L, R], &rows)?;

    writeln!(w, "\nclose initiated by")?;
    let rows: Vec<Vec<String>> = s
        .by_initiator
        .iter()
        .map(|(who, n)| vec![who.as_str().to_string(), n.to_string()])
        .collect();
    write_table(w, "  ", &[L, R], &rows)?;

    writeln!(w, "\nend states (side, state, connections, server)")?;
    if s.end_states.is_empty() {
        writeln!(w, "  none")?;
    } else {
        let rows: Vec<Vec<String>> = s
            .end_states
            .iter()
            .map(|row| {
                vec![
                    format!("{} side", row.side),
                    row.state.to_string(),
                    row.count.to_string(),
                    format!("→ {}", row.server),
                ]
            })
            .collect();
        write_table(w, "  ", &[L, L, R, L], &rows)?;
    }

    if let Some(l) = &s.longest_close_wait {
        writeln!(
            w,
            "\nlongest CLOSE_WAIT: connection {}, {} {} has owed its FIN for {} at the end of the capture",
            l.id,
            l.side,
            l.addr,
            fmt_secs(l.waiting_for)
        )?;
    }
    Ok(())
}

fn write_capture(w: &mut dyn Write, c: &CaptureStats) -> io::Result<()> {
    writeln!(w, "\ncapture")?;
    for f in &c.files {
        let mut notes = vec![f.format.clone()];
        if f.gzip {
            notes.push("gzip".to_string());
        }
        if f.truncated {
            notes.push("truncated".to_string());
        }
        writeln!(
            w,
            "  {}: {}, {}",
            f.path,
            notes.join(", "),
            plural(f.packets, "packet")
        )?;
    }
    let span = match (c.first_ts, c.last_ts) {
        (Some(a), Some(b)) => format!(
            ", {} from {a:.3} to {b:.3} (epoch seconds)",
            fmt_secs(b - a)
        ),
        _ => String::new(),
    };
    writeln!(
        w,
        "  {}, {} TCP{span}",
        plural(c.packets.total, "packet"),
        c.packets.tcp
    )?;
    if !c.link_types.is_empty() {
        let links: Vec<String> = c
            .link_types
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        writeln!(w, "  link types: {}", links.join(", "))?;
    }
    if !c.packets.tunnels.is_empty() {
        let tunnels: Vec<String> = c
            .packets
            .tunnels
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        writeln!(w, "  TCP in tunnels: {}", tunnels.join(", "))?;
    }

    if !c.packets.skipped.is_empty() {
        writeln!(w, "\nskipped packets")?;
        let rows: Vec<Vec<String>> = c
            .packets
            .skipped
            .iter()
            .map(|(why, n)| vec![why.clone(), n.to_string()])
            .collect();
        write_table(w, "  ", &[Align::Left, Align::Right], &rows)?;
    }

    if !c.warnings.is_empty() {
        writeln!(w, "\nwarnings")?;
        for warning in &c.warnings {
            writeln!(w, "  {warning}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{render, Format};
    use closewait_core::capture::FileStats;
    use closewait_core::filter::Filter;
    use closewait_core::model::{CloseKind, Initiator};
    use closewait_core::state::TcpState;
    use closewait_core::testutil::{ReportBuilder, T0};

    fn capture() -> CaptureStats {
        let mut c = CaptureStats::default();
        c.files.push(FileStats {
            path: "captures/02-server-idle-close-client-leak.pcap".into(),
            format: "pcap".into(),
            gzip: false,
            packets: 40,
            bytes: 4000,
            truncated: false,
        });
        c.packets.total = 40;
        c.packets.tcp = 38;
        c.packets.skipped.insert("not_tcp".into(), 2);
        c.link_types.insert("EN10MB".into(), 40);
        c.first_ts = Some(T0);
        c.last_ts = Some(T0 + 70.0);
        c
    }

    fn text_of(
        filter: &Filter,
        total: u64,
        reports: &[ConnectionReport],
        c: &CaptureStats,
    ) -> String {
        let summary = Summary::from_reports(reports);
        let out = AnalyzeOutput {
            capture: c,
            filter,
            connections_total: total,
            connections: reports,
            summary: &summary,
        };
        let mut buf = Vec::new();
        render(Format::Text, &out, &mut buf).expect("render to memory");
        String::from_utf8(buf).expect("utf-8")
    }

    fn leak_reports() -> Vec<ConnectionReport> {
        vec![
            ReportBuilder::new(0)
                .client("10.77.0.1:41000")
                .server("10.77.0.2:8788")
                .duration(65.0)
                .idle(Some(60.0))
                .unanswered_fin_by_server(5.0)
                .build(),
            ReportBuilder::new(1)
                .client("10.77.0.1:41002")
                .server("10.77.0.2:8788")
                .duration(7.25)
                .build(),
            ReportBuilder::new(12)
                .client("10.77.0.1:41004")
                .server("10.77.0.2:8788")
                .kind(CloseKind::Abort, Initiator::Client)
                .states(TcpState::Closed, TcpState::Closed)
                .idle(None)
                .build(),
        ]
    }

    #[test]
    fn connection_lines_are_aligned_columns_with_fixed_decimals() {
        let text = text_of(&Filter::default(), 3, &leak_reports(), &capture());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "id  client           server          duration  kind            initiator  client end  server end  idle before close"
        );
        assert_eq!(
            lines[1],
            " 0  10.77.0.1:41000  10.77.0.2:8788   65.000s  unanswered_fin  server     CLOSE_WAIT  FIN_WAIT_2            60.000s"
        );
        assert_eq!(
            lines[2],
            " 1  10.77.0.1:41002  10.77.0.2:8788    7.250s  graceful        client     CLOSED      CLOSED                 0.250s"
        );
        assert_eq!(
            lines[3],
            "12  10.77.0.1:41004  10.77.0.2:8788    1.000s  abort           client     CLOSED      CLOSED                      -"
        );
        assert_eq!(lines[4], "");
        assert!(
            text.lines().all(|l| !l.ends_with(' ')),
            "no trailing spaces"
        );
    }

    /// With HTTP on some connection the table gains `requests`; a connection without
    /// HTTP shows `-` there.
    #[test]
    fn http_connections_add_a_requests_column() {
        let mut reports = leak_reports();
        reports[1] = ReportBuilder::new(1)
            .client("10.77.0.1:41002")
            .server("10.77.0.2:8788")
            .duration(7.25)
            .http(closewait_core::http::HttpConversation {
                requests: 12,
                responses: 12,
                ..Default::default()
            })
            .build();
        let text = text_of(&Filter::default(), 3, &reports, &capture());
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with("idle before close  requests"),
            "{}",
            lines[0]
        );
        assert!(lines[1].ends_with("60.000s         -"), "{}", lines[1]);
        assert!(lines[2].ends_with("0.250s        12"), "{}", lines[2]);
    }

    #[test]
    fn summary_lists_every_kind_and_netstat_like_end_states() {
        let text = text_of(&Filter::default(), 3, &leak_reports(), &capture());
        assert!(text.contains("summary: 3 connections\n"));
        let kinds_at = text.find("connections per close kind\n").expect("kinds");
        let kinds: Vec<&str> = text[kinds_at..].lines().skip(1).take(10).collect();
        assert_eq!(kinds[0], "  graceful              1");
        assert_eq!(kinds[3], "  abort                 1");
        assert_eq!(kinds[5], "  unanswered_fin        1");
        assert_eq!(kinds[9], "  open                  0");

        assert!(text.contains(
            "\nend states (side, state, connections, server)\n\
             \x20 client side  CLOSED      2  → 10.77.0.2:8788\n\
             \x20 client side  CLOSE_WAIT  1  → 10.77.0.2:8788\n\
             \x20 server side  CLOSED      2  → 10.77.0.2:8788\n\
             \x20 server side  FIN_WAIT_2  1  → 10.77.0.2:8788\n"
        ));
        assert!(text.contains(
            "longest CLOSE_WAIT: connection 0, client 10.77.0.1:41000 has owed its FIN for 5.000s"
        ));
    }

    #[test]
    fn capture_section_shows_files_skipped_packets_and_warnings() {
        let mut c = capture();
        c.warnings
            .push("captures/02.pcap: truncated packet at byte 4000".into());
        let text = text_of(&Filter::default(), 3, &leak_reports(), &c);
        assert!(text.contains(
            "\ncapture\n  captures/02-server-idle-close-client-leak.pcap: pcap, 40 packets\n  40 packets, 38 TCP, 70.000s from 1700000000.000 to 1700000070.000 (epoch seconds)\n  link types: EN10MB 40\n"
        ));
        assert!(text.contains("\nskipped packets\n  not_tcp  2\n"));
        assert!(text.ends_with("\nwarnings\n  captures/02.pcap: truncated packet at byte 4000\n"));
    }

    #[test]
    fn capture_section_counts_tcp_found_in_tunnels() {
        let mut c = capture();
        c.packets.tunnels.insert("vxlan".into(), 30);
        c.packets.tunnels.insert("gre".into(), 8);
        let text = text_of(&Filter::default(), 3, &leak_reports(), &c);
        assert!(text.contains("  link types: EN10MB 40\n  TCP in tunnels: gre 8, vxlan 30\n"));
    }

    #[test]
    fn filtered_summary_says_counts_cover_matching_connections_only() {
        let reports: Vec<ConnectionReport> = leak_reports()
            .into_iter()
            .filter(|r| r.close.kind == CloseKind::UnansweredFin)
            .collect();
        let filter = Filter {
            state: vec![TcpState::CloseWait],
            ..Default::default()
        };
        let text = text_of(&filter, 3, &reports, &capture());
        assert!(text.contains(
            "summary: 1 of 3 connections match the filter (state=CLOSE_WAIT); all counts below cover only those\n"
        ));
    }

    #[test]
    fn no_match_says_so_instead_of_an_empty_table() {
        let filter = Filter {
            port: vec![9],
            ..Default::default()
        };
        let text = text_of(&filter, 3, &[], &capture());
        assert!(text.starts_with(
            "no connection matches the filter (port=9); the capture holds 3 connections\n"
        ));
        let empty = text_of(&Filter::default(), 0, &[], &CaptureStats::default());
        assert!(empty.starts_with("no TCP connections in the capture\n"));
        assert!(empty.contains("\nend states (side, state, connections, server)\n  none\n"));
    }

    #[test]
    fn inferred_roles_are_marked_and_explained() {
        let mut r = ReportBuilder::new(4).build();
        r.role_inferred = true;
        let text = text_of(&Filter::default(), 1, &[r], &capture());
        assert!(text.lines().nth(1).expect("a row").starts_with("4*  "));
        assert!(
            text.contains("* no SYN seen: which side is the client was inferred from the ports\n")
        );
    }

    #[test]
    fn same_input_gives_same_bytes() {
        let a = text_of(&Filter::default(), 3, &leak_reports(), &capture());
        let b = text_of(&Filter::default(), 3, &leak_reports(), &capture());
        assert_eq!(a, b);
    }
}
