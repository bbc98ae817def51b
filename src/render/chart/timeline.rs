//! `--type timeline`: one row per connection, in order of their first packet, with the
//! time each side spent in each TCP state as coloured segments (the upper bar of a row is
//! the client, the lower the server). A CLOSE_WAIT leak is a red bar that runs to the end
//! of the capture, marked by a red triangle beside the row.
//!
//! Up to [`MAX_ROWS`] connections get a row each. Beyond that, consecutive connections are
//! summarised: each row stands for a group of k of them, and each bar shows, at every
//! moment, CLOSE_WAIT when any socket of the group is in it (a leak is never averaged
//! away), otherwise the state most of the group's sockets are in (computed by the same
//! sweep as the `states` chart).

use super::states::{sweep, Step};
use super::*;
use crate::model::Side;
use crate::render::palette::state_color_distinct;
use crate::state::TcpState;

/// Connections drawn one per row; more are grouped into at most [`GROUPED_ROWS`] rows.
pub const MAX_ROWS: usize = 300;
/// Rows when connections are grouped.
pub const GROUPED_ROWS: usize = 200;

const WIDTH: u32 = 1200;
const HEADER_H: u32 = 44;
/// Y units per row (plotters' integer axis): client bar 11..18, server bar 3..10.
const UNIT: i32 = 20;
/// Vertical room for the rows, in pixels, before the row height shrinks to its minimum.
const ROWS_PX: f64 = 720.0;
const MIN_ROW_PX: f64 = 5.0;
const MAX_ROW_PX: f64 = 26.0;

/// One row of the chart: a connection, or a group of consecutive ones.
struct Row<'a> {
    label: String,
    conns: Vec<&'a ConnectionReport>,
}

/// A coloured stretch of one bar, epoch seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub from: f64,
    pub to: f64,
    pub state: TcpState,
}

/// The segments of one side of one connection: each recorded state until the next change
/// (the last until `end`), CLOSED and empty stretches left out.
pub fn segments(r: &ConnectionReport, side: Side, end: f64) -> Vec<Segment> {
    let tl = r.timeline.get(side);
    tl.iter()
        .enumerate()
        .filter(|(_, c)| c.state != TcpState::Closed)
        .map(|(i, c)| Segment {
            from: c.at,
            to: tl.get(i + 1).map_or(end, |n| n.at).max(c.at),
            state: c.state,
        })
        .filter(|s| s.to > s.from)
        .collect()
}

/// The state a group's bar shows: CLOSE_WAIT if any socket is in it, else the most common
/// state (the earliest in RFC order on a tie), else none.
fn shown(step: &Step) -> Option<TcpState> {
    if step.get(TcpState::CloseWait) > 0 {
        return Some(TcpState::CloseWait);
    }
    let mut best: Option<(TcpState, u64)> = None;
    for s in TcpState::ALL {
        let n = step.get(s);
        if s != TcpState::Closed && n > 0 && best.is_none_or(|(_, b)| n > b) {
            best = Some((s, n));
        }
    }
    best.map(|(s, _)| s)
}

/// The segments of a group's bar, from the sweep of its sockets.
fn group_segments(conns: &[&ConnectionReport], side: Side, end: f64) -> Vec<Segment> {
    let steps = sweep(conns.iter().copied(), side);
    let mut out: Vec<Segment> = Vec::new();
    for (i, st) in steps.iter().enumerate() {
        let to = steps.get(i + 1).map_or(end, |n| n.at);
        let Some(state) = shown(st) else { continue };
        match out.last_mut() {
            Some(last) if last.state == state && last.to == st.at => last.to = to,
            _ => out.push(Segment {
                from: st.at,
                to,
                state,
            }),
        }
    }
    out.retain(|s| s.to > s.from);
    out
}

/// Whether the row ends with a socket in CLOSE_WAIT.
fn leaks(row: &Row) -> bool {
    row.conns
        .iter()
        .any(|r| r.client_state == TcpState::CloseWait || r.server_state == TcpState::CloseWait)
}

fn rows<'a>(reports: &'a [ConnectionReport]) -> (Vec<Row<'a>>, usize) {
    let mut sorted: Vec<&ConnectionReport> = reports.iter().collect();
    sorted.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.id.cmp(&b.id)));
    if sorted.len() <= MAX_ROWS {
        let rows = sorted
            .into_iter()
            .map(|r| Row {
                label: format!("#{}", r.id),
                conns: vec![r],
            })
            .collect();
        return (rows, 1);
    }
    let k = sorted.len().div_ceil(GROUPED_ROWS);
    let rows = sorted
        .chunks(k)
        .map(|c| {
            let lo = c.iter().map(|r| r.id).min().unwrap_or(0);
            let hi = c.iter().map(|r| r.id).max().unwrap_or(0);
            Row {
                label: format!("#{lo}–{hi}"),
                conns: c.to_vec(),
            }
        })
        .collect();
    (rows, k)
}

/// Draws the chart.
pub fn render(
    reports: &[ConnectionReport],
    span: &Span,
    title: &str,
) -> Result<String, ChartError> {
    let (rows, group) = rows(reports);
    let n = rows.len();
    let full_title = if group > 1 {
        format!(
            "Connection timeline — {title} ({} connections, {group} per row)",
            reports.len()
        )
    } else {
        format!(
            "Connection timeline — {title} ({} connections)",
            reports.len()
        )
    };

    let row_px = (ROWS_PX / n.max(1) as f64).clamp(MIN_ROW_PX, MAX_ROW_PX);
    // Label every m-th row so labels stay at least 15 px apart.
    let every = (15.0 / row_px).ceil().max(1.0) as usize;
    let label_w = rows
        .iter()
        .map(|r| label_width(&r.label, LABEL_SIZE))
        .max()
        .unwrap_or(20);

    // Legend: the states that appear, then the leak marker and how to read a row.
    let mut seen = [false; TcpState::ALL.len()];
    let bars: Vec<[Vec<Segment>; 2]> = rows
        .iter()
        .map(|row| {
            [Side::Client, Side::Server].map(|side| {
                let segs = if row.conns.len() == 1 {
                    segments(row.conns[0], side, span.end)
                } else {
                    group_segments(&row.conns, side, span.end)
                };
                for s in &segs {
                    if let Some(i) = TcpState::ALL.iter().position(|x| *x == s.state) {
                        seen[i] = true;
                    }
                }
                segs
            })
        })
        .collect();
    let entries: Vec<LegendEntry> = TcpState::ALL
        .iter()
        .zip(seen)
        .filter(|(_, seen)| *seen)
        .map(|(s, _)| LegendEntry {
            color: color(state_color_distinct(*s)),
            text: s.as_str().to_string(),
            line: false,
        })
        .collect();
    let leak_rows = rows.iter().filter(|r| leaks(r)).count();
    let mut notes = vec![
        "each row: upper bar client,".to_string(),
        "lower bar server".to_string(),
    ];
    if leak_rows > 0 {
        notes.push(format!("◀ in CLOSE_WAIT at the end ({leak_rows})"));
    }
    if group > 1 {
        notes.push(format!("a row = {group} connections:"));
        notes.push("CLOSE_WAIT if any is in it,".to_string());
        notes.push("else the most common state".to_string());
    }
    let legend_w = legend_width(&entries, &notes).max(190);

    let plot_h = (row_px * n.max(1) as f64).ceil() as u32;
    let x_area = 50u32;
    let caption_h = 8u32;
    let height = HEADER_H + caption_h + plot_h + x_area + 16;
    let marker_w = 18u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height.max(200))).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (header, body) = root.split_vertically(HEADER_H);
        header
            .draw(&Text::new(
                full_title.clone(),
                (14, 12),
                (FAMILY, TITLE_SIZE).into_font().color(&FG),
            ))
            .map_err(draw_err)?;
        let (plot_area, legend_area) = body.split_horizontally(WIDTH - legend_w);
        let y_max = UNIT * n.max(1) as i32;
        let keys: Vec<i32> = (0..n)
            .filter(|i| i % every == 0)
            .map(|i| y_of(i, n) + UNIT / 2)
            .collect();
        let mut chart = ChartBuilder::on(&plot_area)
            .margin_top(caption_h)
            .margin_left(10)
            .margin_right(marker_w)
            .margin_bottom(16)
            .x_label_area_size(x_area)
            .y_label_area_size(label_w + 14)
            .build_cartesian_2d(0f64..span.secs(), (0..y_max).with_key_points(keys))
            .map_err(draw_err)?;
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        let y_fmt = |v: &i32| {
            let from_bottom = (*v / UNIT) as usize;
            n.checked_sub(from_bottom + 1)
                .and_then(|i| labels.get(i))
                .map(|s| s.to_string())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(GRID.mix(0.25))
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .x_labels(12)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&y_fmt)
            .label_style((FAMILY, LABEL_SIZE).into_font().color(&FG))
            .axis_desc_style((FAMILY, DESC_SIZE).into_font().color(&FG))
            .x_desc("time since the start of the capture (s)")
            .draw()
            .map_err(draw_err)?;
        if n == 0 {
            draw_empty(&plot_area, "no TCP connection in the capture")?;
        }
        for (i, bar) in bars.iter().enumerate() {
            let base = y_of(i, n);
            for (k, segs) in bar.iter().enumerate() {
                // Client above (11..18), server below (3..10).
                let (lo, hi) = if k == 0 { (11, 18) } else { (3, 10) };
                chart
                    .draw_series(segs.iter().map(|s| {
                        Rectangle::new(
                            [(span.rel(s.from), base + lo), (span.rel(s.to), base + hi)],
                            color(state_color_distinct(s.state)).filled(),
                        )
                    }))
                    .map_err(draw_err)?;
            }
        }
        // Leak markers, just right of the plot, outside its clipping.
        let red = color(crate::render::palette::state_color(TcpState::CloseWait));
        let (px, _) = chart.plotting_area().get_pixel_range();
        let right = px.end;
        let half = (row_px / 2.0).clamp(2.5, 6.0) as i32;
        for (i, row) in rows.iter().enumerate() {
            if !leaks(row) {
                continue;
            }
            let (_, y) = chart.backend_coord(&(span.secs(), y_of(i, n) + UNIT / 2));
            root.draw(&Polygon::new(
                vec![
                    (right + 2, y),
                    (right + 2 + 2 * half, y - half),
                    (right + 2 + 2 * half, y + half),
                ],
                red.filled(),
            ))
            .map_err(draw_err)?;
        }
        draw_legend(&legend_area, &entries, &notes, 14)?;
        root.present().map_err(draw_err)?;
    }
    Ok(finish_svg(svg, &full_title))
}

/// The y of row `i` (0 at the top) of `n`.
fn y_of(i: usize, n: usize) -> i32 {
    UNIT * (n.saturating_sub(i + 1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    fn leak() -> ConnectionReport {
        let mut w = Wire::new();
        w.exchange()
            .wait(15.0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1101, 5202, 0);
        w.analyze_with_tail(100.0).remove(0)
    }

    #[test]
    fn leak_segment_runs_to_the_end_of_the_capture() {
        let r = leak();
        let end = r.end + 100.0;
        let segs = segments(&r, Side::Client, end);
        let last = segs.last().unwrap();
        assert_eq!(last.state, TcpState::CloseWait);
        assert_eq!(last.to, end);
        assert!(segs.iter().all(|s| s.state != TcpState::Closed));
    }

    #[test]
    fn a_group_shows_close_wait_when_any_member_leaks() {
        let a = leak();
        let mut w = Wire::new();
        w.exchange()
            .wait(15.0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, FIN | ACK, 1101, 5202, 0)
            .send(S, ACK, 5202, 1102, 0);
        let b = w.analyze_with_tail(100.0).remove(0);
        let end = a.end.max(b.end) + 100.0;
        let segs = group_segments(&[&a, &b, &b], Side::Client, end);
        assert_eq!(segs.last().map(|s| s.state), Some(TcpState::CloseWait));
        assert_eq!(segs.first().map(|s| s.state), Some(TcpState::SynSent));
    }

    #[test]
    fn many_connections_are_grouped() {
        let one = leak();
        let many: Vec<ConnectionReport> = (0..MAX_ROWS as u64 + 1)
            .map(|id| ConnectionReport { id, ..one.clone() })
            .collect();
        let (rows, k) = rows(&many);
        assert_eq!(k, 2);
        assert_eq!(rows.len(), (MAX_ROWS + 1).div_ceil(2));
        assert_eq!(rows[0].label, "#0–1");
        let (rows, k) = super::rows(&many[..MAX_ROWS]);
        assert_eq!((rows.len(), k), (MAX_ROWS, 1));
    }
}
