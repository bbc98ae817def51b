//! `--type timeline`: one row per connection, in order of their first packet, with the
//! time each side spent in each TCP state as coloured segments (the upper bar of a row is
//! the client, the lower the server). A CLOSE_WAIT leak is a red bar that runs to the end
//! of the capture, marked by a red triangle beside the row.
//!
//! Up to [`MAX_ROWS`] connections get a row each: all of them on a small capture. On a
//! bigger one the rows are the [`MAX_ROWS`] connections that ended worst, in the order of
//! `closewait diagram --worst` ([`WorstKey`]: CLOSE_WAIT leaks and unanswered FINs first,
//! the longest waiting first), still drawn in order of their first packet, and the title
//! and legend say how many more there are. They are picked as the connections finish
//! ([`TimelineRows`]), so memory holds [`MAX_ROWS`] connections, not the capture; the
//! `states` chart is the overview of all of them.

use super::*;
use crate::diagnose::plural;
use crate::render::palette::state_color_distinct;
use closewait_core::model::Side;
use closewait_core::state::TcpState;
use closewait_core::worst::WorstKey;
use std::collections::BinaryHeap;

/// Connections drawn, one per row.
pub const MAX_ROWS: usize = 300;

/// A kept row: its connection (without segment records), ordered by [`WorstKey`].
#[derive(Clone, Debug)]
struct Kept {
    key: WorstKey,
    report: ConnectionReport,
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// The rows of the chart, picked as connections finish: every connection while there are
/// at most [`MAX_ROWS`], then the [`MAX_ROWS`] that ended worst.
#[derive(Clone, Debug, Default)]
pub struct TimelineRows {
    /// Max-heap by badness order: the top is the least bad row kept.
    kept: BinaryHeap<Kept>,
    /// Connections seen.
    pub total: u64,
}

impl TimelineRows {
    pub fn add(&mut self, r: &ConnectionReport) {
        self.total += 1;
        let key = WorstKey::of(r);
        if self.kept.len() >= MAX_ROWS {
            match self.kept.peek() {
                Some(top) if key < top.key => {
                    self.kept.pop();
                }
                _ => return,
            }
        }
        let mut report = r.clone();
        report.segments = None;
        self.kept.push(Kept { key, report });
    }

    /// The kept connections, in no particular order.
    pub fn reports(&self) -> Vec<&ConnectionReport> {
        self.kept.iter().map(|k| &k.report).collect()
    }
}

const WIDTH: u32 = 1200;
const HEADER_H: u32 = 44;
/// Y units per row (plotters' integer axis): client bar 11..18, server bar 3..10.
const UNIT: i32 = 20;
/// Vertical room for the rows, in pixels, before the row height shrinks to its minimum.
const ROWS_PX: f64 = 720.0;
const MIN_ROW_PX: f64 = 5.0;
const MAX_ROW_PX: f64 = 26.0;

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

/// Whether the row ends with a socket in CLOSE_WAIT.
fn leaks(r: &ConnectionReport) -> bool {
    r.client_state == TcpState::CloseWait || r.server_state == TcpState::CloseWait
}

/// The rows in order of their first packet.
fn rows<'a>(reports: &[&'a ConnectionReport]) -> Vec<&'a ConnectionReport> {
    let mut sorted: Vec<&ConnectionReport> = reports.to_vec();
    sorted.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.id.cmp(&b.id)));
    sorted
}

/// Draws the chart.
pub fn render(picked: &TimelineRows, span: &Span, title: &str) -> Result<String, ChartError> {
    let rows = rows(&picked.reports());
    let n = rows.len();
    let total = picked.total;
    let more = total.saturating_sub(n as u64);
    let full_title = if more > 0 {
        format!("Connection timeline — {title} ({total} connections, the {n} that ended worst)")
    } else {
        format!(
            "Connection timeline — {title} ({})",
            plural(total, "connection", "connections")
        )
    };
    let labels_owned: Vec<String> = rows.iter().map(|r| format!("#{}", r.id)).collect();

    let row_px = (ROWS_PX / n.max(1) as f64).clamp(MIN_ROW_PX, MAX_ROW_PX);
    // Label every m-th row so labels stay at least 15 px apart.
    let every = (15.0 / row_px).ceil().max(1.0) as usize;
    let label_w = labels_owned
        .iter()
        .map(|l| label_width(l, LABEL_SIZE))
        .max()
        .unwrap_or(20);

    // Legend: the states that appear, then the leak marker and how to read a row.
    let mut seen = [false; TcpState::ALL.len()];
    let bars: Vec<[Vec<Segment>; 2]> = rows
        .iter()
        .map(|row| {
            [Side::Client, Side::Server].map(|side| {
                let segs = segments(row, side, span.end);
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
    if more > 0 {
        notes.push(format!("… and {more} more connections:"));
        notes.push("rows are the worst-ended,".to_string());
        notes.push("as diagram --worst ranks".to_string());
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
        let labels: Vec<&str> = labels_owned.iter().map(|l| l.as_str()).collect();
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
    use closewait_core::testkit::*;

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
    fn past_max_rows_the_worst_ended_are_kept() {
        let one = leak();
        let mut graceful = Wire::new();
        graceful
            .exchange()
            .send(C, FIN | ACK, 1101, 5201, 0)
            .send(S, FIN | ACK, 5201, 1102, 0)
            .send(C, ACK, 1102, 5202, 0);
        let fine = graceful.only();
        let mut rows = TimelineRows::default();
        for id in 0..MAX_ROWS as u64 * 2 {
            let r = if id % 7 == 3 { &one } else { &fine };
            rows.add(&ConnectionReport { id, ..r.clone() });
        }
        assert_eq!(rows.total, 2 * MAX_ROWS as u64);
        let kept = rows.reports();
        assert_eq!(kept.len(), MAX_ROWS);
        // Every leak is kept (86 of them), then the graceful ones of lowest id.
        let leaking = kept.iter().filter(|r| leaks(r)).count();
        assert_eq!(leaking, (0..2 * MAX_ROWS).filter(|i| i % 7 == 3).count());
        assert!(kept
            .iter()
            .all(|r| leaks(r) || r.id < 2 * MAX_ROWS as u64 - 86));
    }
}
