//! `--type states`: how many sockets were in each TCP state over time, per side. The seed's
//! `netstat -tan | grep CLOSE_WAIT | wc -l`, run continuously, as a curve.
//!
//! The counts come from a sweep over every state change of every connection's timeline
//! ([`sweep`]): a change from A to B at time t is −1 for A and +1 for B. Changes at the same
//! instant are applied together, so a socket that passes through a state in zero time (a
//! client's CLOSE_WAIT → LAST_ACK when its FIN answers the server's at once) makes no
//! spike. A side is counted from its first recorded state: before its SYN a client socket
//! does not exist yet, and a server's listening socket is not the connection's. CLOSED is
//! not a socket netstat shows, so it is never drawn; at the end of the capture the counts
//! equal the end-state table of `closewait analyze` (tested).

use super::*;
use crate::diagnose::plural;
use crate::render::palette::state_color_distinct;
use closewait_core::model::Side;
use closewait_core::state::TcpState;

/// Sockets per state (indexed like [`TcpState::ALL`]).
pub type Counts = [u64; TcpState::ALL.len()];

fn index(s: TcpState) -> usize {
    TcpState::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// One step of the sweep: from `at` (epoch seconds) on, `counts` sockets of the side are in
/// each state, until the next step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub at: f64,
    pub counts: Counts,
}

impl Step {
    pub fn get(&self, s: TcpState) -> u64 {
        self.counts[index(s)]
    }
}

/// The counts of `side`'s sockets per state after every instant at which one changed,
/// oldest first. Counts only change at a step; before the first step all are zero.
pub fn sweep<'a>(reports: impl IntoIterator<Item = &'a ConnectionReport>, side: Side) -> Vec<Step> {
    // (time, connection order, position in its timeline, from, to)
    let mut events: Vec<Change> = Vec::new();
    for (n, r) in reports.into_iter().enumerate() {
        let tl = r.timeline.get(side);
        for (i, change) in tl.iter().enumerate() {
            let from = i.checked_sub(1).map(|p| tl[p].state);
            events.push((change.at, n as u64, i, from, change.state));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    sweep_changes(events)
}

/// The steps of changes sorted by time.
fn sweep_changes(events: Vec<Change>) -> Vec<Step> {
    let mut counts: Counts = [0; TcpState::ALL.len()];
    let mut steps: Vec<Step> = Vec::new();
    for (at, _, _, from, to) in events {
        if let Some(f) = from {
            counts[index(f)] = counts[index(f)].saturating_sub(1);
        }
        counts[index(to)] += 1;
        match steps.last_mut() {
            Some(last) if last.at == at => last.counts = counts,
            _ => steps.push(Step { at, counts }),
        }
    }
    steps
}

/// Timestamps are float epoch seconds: the capture's last packet and the last state change
/// of a connection can differ by rounding. Counts "at the end" look this much further.
pub const END_SLACK: f64 = 1e-6;

/// The counts in force at time `t` (epoch seconds).
pub fn counts_at(steps: &[Step], t: f64) -> Counts {
    let n = steps.partition_point(|s| s.at <= t);
    n.checked_sub(1)
        .map(|i| steps[i].counts)
        .unwrap_or([0; TcpState::ALL.len()])
}

/// Horizontal resolution the curves are reduced to when they have more points than this
/// many times 4: several times the plot's width in pixels, even in a 2× PNG. Without it a
/// capture of 100 k connections made a 100 MB SVG, most of its vertices on the same pixel.
const COLUMNS: usize = 2048;

/// The polyline of one state's count: a step function holding each count until the next
/// change, from 0 at the start of the capture to its end (x in seconds since the start).
///
/// Long series are reduced per column of width `span / COLUMNS`: a column where the count
/// changed keeps the count entering it, its minimum, its maximum and the count leaving it,
/// all at the column's first change. At the plot's resolution that is the same picture
/// (every peak and trough is drawn) with at most four vertices per column.
fn step_points(steps: &[Step], state: TcpState, span: &Span) -> Vec<(f64, u64)> {
    // Only the instants at which this state's count changed.
    let mut changes: Vec<(f64, u64)> = Vec::new();
    let mut last = 0u64;
    for st in steps {
        let n = st.get(state);
        if n != last {
            changes.push((span.rel(st.at), n));
            last = n;
        }
    }
    let mut pts: Vec<(f64, u64)> = vec![(0.0, 0)];
    let mut held = 0u64;
    if changes.len() <= 4 * COLUMNS {
        for &(x, n) in &changes {
            pts.push((x, held));
            pts.push((x, n));
            held = n;
        }
    } else {
        let secs = span.secs().max(f64::MIN_POSITIVE);
        let column = |x: f64| ((x / secs * COLUMNS as f64) as usize).min(COLUMNS);
        let mut i = 0;
        while i < changes.len() {
            let (x, _) = changes[i];
            let col = column(x);
            let enter = held;
            let (mut lo, mut hi) = (held, held);
            while i < changes.len() && column(changes[i].0) == col {
                let n = changes[i].1;
                lo = lo.min(n);
                hi = hi.max(n);
                held = n;
                i += 1;
            }
            for y in [enter, lo, hi, held] {
                if pts.last() != Some(&(x, y)) {
                    pts.push((x, y));
                }
            }
        }
    }
    pts.push((span.secs(), held));
    pts
}

/// The states drawn: every state but CLOSED, in RFC order.
fn drawn_states() -> impl Iterator<Item = TcpState> {
    TcpState::ALL.into_iter().filter(|s| *s != TcpState::Closed)
}

/// State changes kept exactly (and swept as [`sweep`] does) before the counts switch to
/// samples: about 10 000 connections.
pub const EXACT_CHANGES: usize = 100_000;
/// Sample instants kept per side once sampled: between this many and twice as many.
pub const SAMPLES: usize = 4096;

/// One side's state change in the exact sweep: (time, connection id, position in its
/// timeline, from, to).
type Change = (f64, u64, usize, Option<TcpState>, TcpState);

/// The counts behind the chart, fed one connection at a time as it finishes (any order),
/// in memory that does not grow with the capture.
///
/// Small captures are swept exactly: every state change is kept, and the curves step at
/// every change (ordered by time, then connection id, as [`sweep`] does). Past
/// [`EXACT_CHANGES`] changes the counts are *sampled*, as running `netstat` at fixed
/// instants would: at every multiple of a width `w` (a power of two of seconds), each
/// state's count is the number of sockets that entered it at or before the instant and
/// had not left it. A change from A to B at `t` is −1 for A and +1 for B from the first
/// instant at or after `t`, kept as a difference per instant, so a connection costs a few
/// additions whatever order it arrives in. When the instants would outnumber
/// 2 × [`SAMPLES`], every other one is dropped and `w` doubles (the counts at the instants
/// kept are unchanged: they stay exact). A state held for less than `w` can fall between
/// two instants and not show; the count at the end of the capture is exact either way.
#[derive(Clone, Debug, Default)]
pub struct StateCounter {
    /// Connections with a timeline, per side (client, server).
    pub sockets: [u64; 2],
    exact: Option<[Vec<Change>; 2]>,
    sampled: [Samples; 2],
}

impl StateCounter {
    pub fn new() -> StateCounter {
        StateCounter {
            exact: Some([Vec::new(), Vec::new()]),
            ..StateCounter::default()
        }
    }

    /// Adds one connection's timelines.
    pub fn add(&mut self, r: &ConnectionReport) {
        for (k, side) in [Side::Client, Side::Server].into_iter().enumerate() {
            let tl = r.timeline.get(side);
            if tl.is_empty() {
                continue;
            }
            self.sockets[k] += 1;
            match &mut self.exact {
                Some(changes) => {
                    for (i, c) in tl.iter().enumerate() {
                        let from = i.checked_sub(1).map(|p| tl[p].state);
                        changes[k].push((c.at, r.id, i, from, c.state));
                    }
                }
                None => {
                    for (i, c) in tl.iter().enumerate() {
                        self.sampled[k].hold(c.state, c.at, tl.get(i + 1).map(|n| n.at));
                    }
                }
            }
        }
        if self
            .exact
            .as_ref()
            .is_some_and(|c| c[0].len() + c[1].len() > EXACT_CHANGES)
        {
            self.sample();
        }
    }

    /// Moves the exact changes into samples.
    fn sample(&mut self) {
        let Some(changes) = self.exact.take() else {
            return;
        };
        for (k, mut list) in changes.into_iter().enumerate() {
            let (lo, hi) = list
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
                    (lo.min(c.0), hi.max(c.0))
                });
            self.sampled[k] = Samples::covering(lo, hi);
            // Each change's state is held until the same connection's next change.
            list.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)));
            for (i, c) in list.iter().enumerate() {
                let next = list.get(i + 1).filter(|n| n.1 == c.1).map(|n| n.0);
                self.sampled[k].hold(c.4, c.0, next);
            }
        }
    }

    /// True once the counts are sampled: a state held between two instants may not show,
    /// so a maximum read from the steps can be a little under the true one.
    pub fn sampled(&self) -> bool {
        self.exact.is_none()
    }

    /// The steps of `side`'s counts, oldest first (see [`sweep`]).
    pub fn steps(&self, side: Side, span: &Span) -> Vec<Step> {
        let k = usize::from(side == Side::Server);
        match &self.exact {
            Some(changes) => {
                let mut list = changes[k].clone();
                list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
                sweep_changes(list)
            }
            None => self.sampled[k].steps(span),
        }
    }
}

/// Sampled counts of one side (see [`StateCounter`]): the count of each state at instants
/// `k·w` for `k` in `lo..lo + diff.len()`, kept as differences from the previous instant.
#[derive(Clone, Debug, Default)]
struct Samples {
    w: f64,
    lo: i64,
    diff: Vec<[i64; TcpState::ALL.len()]>,
}

impl Samples {
    /// Empty samples whose width spreads `lo..=hi` over about [`SAMPLES`] instants.
    fn covering(lo: f64, hi: f64) -> Samples {
        let range = if hi > lo { hi - lo } else { 1.0 };
        // At least 2^-20 s (about 1 µs), so that an instant's number, epoch seconds over
        // the width, stays far inside an i64.
        let w = 2f64.powi((range / SAMPLES as f64).log2().ceil().clamp(-20.0, 40.0) as i32);
        Samples {
            w,
            lo: 0,
            diff: Vec::new(),
        }
    }

    /// The first instant at or after `t`.
    fn instant(&self, t: f64) -> i64 {
        (t / self.w).ceil() as i64
    }

    /// `state` held from `from` until `to` (or to the end).
    fn hold(&mut self, state: TcpState, from: f64, to: Option<f64>) {
        if state == TcpState::Closed || !from.is_finite() || self.w == 0.0 {
            return;
        }
        let to = to.filter(|t| t.is_finite());
        self.cover(from);
        if let Some(t) = to {
            self.cover(t);
        }
        let a = self.instant(from);
        let b = to.map(|t| self.instant(t));
        if b == Some(a) {
            return;
        }
        let i = index(state);
        self.diff[(a - self.lo) as usize][i] += 1;
        if let Some(b) = b {
            self.diff[(b - self.lo) as usize][i] -= 1;
        }
    }

    /// Makes room for the instant of `t`, halving the resolution as needed.
    fn cover(&mut self, t: f64) {
        loop {
            let k = self.instant(t);
            if self.diff.is_empty() {
                self.lo = k;
                self.diff.push([0; TcpState::ALL.len()]);
                return;
            }
            let hi = self.lo + self.diff.len() as i64 - 1;
            let (lo2, hi2) = (self.lo.min(k), hi.max(k));
            if hi2.saturating_sub(lo2) >= 2 * SAMPLES as i64 {
                self.halve();
                continue;
            }
            if k < self.lo {
                let mut v = vec![[0; TcpState::ALL.len()]; (self.lo - k) as usize];
                v.append(&mut self.diff);
                self.diff = v;
                self.lo = k;
            } else if k > hi {
                self.diff
                    .resize((k - self.lo + 1) as usize, [0; TcpState::ALL.len()]);
            }
            return;
        }
    }

    /// Keeps every other instant (the even ones) and doubles the width.
    fn halve(&mut self) {
        let mut run = [0i64; TcpState::ALL.len()];
        let mut kept: Vec<(i64, [i64; TcpState::ALL.len()])> = Vec::new();
        for (j, d) in self.diff.iter().enumerate() {
            for (r, x) in run.iter_mut().zip(d) {
                *r += x;
            }
            let k = self.lo + j as i64;
            if k.rem_euclid(2) == 0 {
                kept.push((k / 2, run));
            }
        }
        // Changes after the last even instant are carried by the next one, one further on.
        let last = self.lo + self.diff.len() as i64 - 1;
        if last.rem_euclid(2) != 0 {
            kept.push(((last + 1) / 2, run));
        }
        self.w *= 2.0;
        self.lo = kept.first().map_or(0, |k| k.0);
        let mut prev = [0i64; TcpState::ALL.len()];
        self.diff = kept
            .into_iter()
            .map(|(_, v)| {
                let mut d = [0i64; TcpState::ALL.len()];
                for i in 0..d.len() {
                    d[i] = v[i] - prev[i];
                }
                prev = v;
                d
            })
            .collect();
    }

    fn steps(&self, span: &Span) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::new();
        let mut run = [0i64; TcpState::ALL.len()];
        for (j, d) in self.diff.iter().enumerate() {
            if d.iter().all(|x| *x == 0) {
                continue;
            }
            for (r, x) in run.iter_mut().zip(d) {
                *r += x;
            }
            let at = (self.lo + j as i64) as f64 * self.w;
            let counts = run.map(|x| x.max(0) as u64);
            steps.push(Step { at, counts });
        }
        // The last instant may lie past the capture's end (it is the first at or after
        // the last change): the counts then are those at the end.
        if let Some(last) = steps.last_mut() {
            if last.at > span.end {
                last.at = span.end;
            }
        }
        let n = steps.len();
        if n >= 2 && steps[n - 2].at >= steps[n - 1].at {
            let last = steps.pop();
            if let (Some(prev), Some(last)) = (steps.last_mut(), last) {
                prev.counts = last.counts;
            }
        }
        steps
    }
}

const WIDTH: u32 = 1100;
const PANEL_H: u32 = 330;
const HEADER_H: u32 = 44;

/// Draws the chart: one panel per side, one curve per state that ever had a socket.
pub fn render(counter: &StateCounter, span: &Span, title: &str) -> Result<String, ChartError> {
    let full_title = format!("Sockets per TCP state over time — {title}");
    let sides = [Side::Client, Side::Server];
    let sweeps: Vec<Vec<Step>> = sides.iter().map(|s| counter.steps(*s, span)).collect();

    // Legends first: their width decides the plot width. Both panels share the width.
    // Sampled counts can miss a peak between two instants: their maximum says so.
    let max_text = |max: u64| {
        if counter.sampled() {
            format!("max ≈ {max}, sampled;")
        } else {
            format!("max {max},")
        }
    };
    let legends: Vec<Vec<LegendEntry>> = sweeps
        .iter()
        .map(|steps| {
            drawn_states()
                .filter_map(|s| {
                    let max = steps.iter().map(|st| st.get(s)).max().unwrap_or(0);
                    (max > 0).then(|| LegendEntry {
                        color: color(state_color_distinct(s)),
                        text: format!(
                            "{} ({} {} at end)",
                            s.as_str(),
                            max_text(max),
                            counts_at(steps, span.end + END_SLACK)[index(s)]
                        ),
                        line: true,
                    })
                })
                .collect()
        })
        .collect();
    let legend_w = legends
        .iter()
        .map(|l| legend_width(l, &[]))
        .max()
        .unwrap_or(0)
        .max(180);

    let height = HEADER_H + PANEL_H * 2;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (header, body) = root.split_vertically(HEADER_H);
        header
            .draw(&Text::new(
                full_title.clone(),
                (14, 12),
                (FAMILY, TITLE_SIZE).into_font().color(&FG),
            ))
            .map_err(draw_err)?;
        let panels = body.split_evenly((2, 1));
        for (k, panel) in panels.iter().enumerate() {
            let side = sides[k];
            let steps = &sweeps[k];
            let (plot_area, legend_area) = panel.split_horizontally(WIDTH - legend_w);
            let max = steps
                .iter()
                .flat_map(|st| drawn_states().map(move |s| st.get(s)))
                .max()
                .unwrap_or(0);
            let y_top = (max + max.div_ceil(10)).max(1);
            let sockets = counter.sockets[k];
            let caption = format!(
                "{side}-side sockets ({})",
                plural(sockets, "connection", "connections")
            );
            let mut chart = ChartBuilder::on(&plot_area)
                .caption(caption, (FAMILY, CAPTION_SIZE).into_font().color(&FG))
                .margin_left(10)
                .margin_right(20)
                .margin_top(6)
                .margin_bottom(6)
                .x_label_area_size(46)
                .y_label_area_size(64)
                .build_cartesian_2d(0f64..span.secs(), 0u64..y_top)
                .map_err(draw_err)?;
            chart
                .configure_mesh()
                .light_line_style(GRID.mix(0.25))
                .bold_line_style(GRID)
                .axis_style(MUTED)
                .x_labels(10)
                .y_labels(8)
                .x_label_formatter(&|v| tick(*v))
                .label_style((FAMILY, LABEL_SIZE).into_font().color(&FG))
                .axis_desc_style((FAMILY, DESC_SIZE).into_font().color(&FG))
                .x_desc("time since the start of the capture (s)")
                .y_desc("sockets")
                .draw()
                .map_err(draw_err)?;
            if max == 0 {
                draw_empty(&plot_area, &format!("no {side}-side socket in the capture"))?;
            }
            for s in drawn_states() {
                if steps.iter().all(|st| st.get(s) == 0) {
                    continue;
                }
                let pts = step_points(steps, s, span);
                let width = if s == TcpState::CloseWait { 3 } else { 2 };
                chart
                    .draw_series(LineSeries::new(
                        pts,
                        color(state_color_distinct(s)).stroke_width(width),
                    ))
                    .map_err(draw_err)?;
            }
            draw_legend(&legend_area, &legends[k], &[], 40)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(finish_svg(svg, &full_title))
}

#[cfg(test)]
mod tests {
    use super::*;
    use closewait_core::testkit::*;

    /// The seed's leak: the server closes after 15 s idle, the client ACKs and never closes.
    fn leak() -> ConnectionReport {
        let mut w = Wire::new();
        w.exchange()
            .wait(15.0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1101, 5202, 0);
        w.analyze_with_tail(100.0).remove(0)
    }

    #[test]
    fn leak_counts_one_close_wait_from_the_ack_to_the_end() {
        let r = leak();
        let client = sweep([&r], Side::Client);
        let server = sweep([&r], Side::Server);
        let end = r.end + 100.0;
        assert_eq!(counts_at(&client, end)[index(TcpState::CloseWait)], 1);
        assert_eq!(counts_at(&server, end)[index(TcpState::FinWait2)], 1);
        // Before the FIN: both established, nothing else.
        let before = counts_at(&client, r.start + 1.0);
        assert_eq!(before[index(TcpState::Established)], 1);
        assert_eq!(before.iter().sum::<u64>(), 1);
        // Before the first SYN nothing exists.
        assert_eq!(counts_at(&client, r.start - 1.0).iter().sum::<u64>(), 0);
    }

    #[test]
    fn zero_time_states_make_no_step() {
        // The client answers the server's FIN with its own FIN at once: CLOSE_WAIT and
        // LAST_ACK at the same instant must not show a CLOSE_WAIT spike.
        let mut r = leak();
        let at = r.timeline.client.last().unwrap().at;
        r.timeline.client.push(closewait_core::model::StateChange {
            state: TcpState::LastAck,
            at,
            frame: None,
        });
        let steps = sweep([&r], Side::Client);
        assert!(
            steps.iter().all(|s| s.get(TcpState::CloseWait) == 0),
            "{steps:?}"
        );
        assert_eq!(counts_at(&steps, at)[index(TcpState::LastAck)], 1);
    }

    #[test]
    fn long_series_are_reduced_to_the_plot_resolution_keeping_every_peak() {
        // 100 000 sockets open one after another, each for a moment: the TIME_WAIT count
        // climbs to 50 000 with a one-step spike to 60 000 somewhere in the middle.
        let span = Span {
            start: 0.0,
            end: 100.0,
        };
        let mut steps = Vec::new();
        let mut counts: Counts = [0; TcpState::ALL.len()];
        for i in 0..100_000u64 {
            counts[index(TcpState::TimeWait)] = i / 2 + 30_000 * u64::from(i == 60_001);
            steps.push(Step {
                at: i as f64 / 1000.0,
                counts,
            });
        }
        let pts = step_points(&steps, TcpState::TimeWait, &span);
        assert!(pts.len() <= 4 * COLUMNS + 2, "{} points", pts.len());
        assert_eq!(pts.iter().map(|p| p.1).max(), Some(60_000));
        assert_eq!(pts.last(), Some(&(100.0, 49_999)));
        // A step function: x never goes back.
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn past_the_exact_budget_samples_equal_the_exact_sweep_at_their_instants() {
        // 20 000 leaks one after another, 10 ms apart: more changes than are kept exactly.
        let one = leak();
        let reports: Vec<ConnectionReport> = (0..20_000u64)
            .map(|id| {
                let mut r = one.clone();
                r.id = id;
                let shift = id as f64 * 0.01;
                for side in [Side::Client, Side::Server] {
                    for c in r.timeline.get_mut(side).iter_mut() {
                        c.at += shift;
                    }
                }
                r.start += shift;
                r.end += shift;
                r
            })
            .collect();
        let mut counter = StateCounter::new();
        // Any order: the last first.
        reports.iter().rev().for_each(|r| counter.add(r));
        assert!(counter.exact.is_none(), "sampled");
        let span = Span {
            start: reports[0].start,
            end: reports.last().unwrap().end + 100.0,
        };
        for side in [Side::Client, Side::Server] {
            let exact = sweep(&reports, side);
            let sampled = counter.steps(side, &span);
            assert!(sampled.len() <= 2 * SAMPLES + 1, "{}", sampled.len());
            for st in &sampled[..sampled.len() - 1] {
                let want = counts_at(&exact, st.at);
                for s in drawn_states() {
                    assert_eq!(st.get(s), want[index(s)], "{side} {s} at {}", st.at);
                }
            }
            // A state held between two instants can be missed, never invented: the
            // sampled maximum is at most the exact one (the 306 k capture's client
            // CLOSE_WAIT: 1213 sampled, 1216 exact, 1200 at the end).
            for s in drawn_states() {
                let max = |steps: &[Step]| steps.iter().map(|st| st.get(s)).max();
                assert!(max(&sampled) <= max(&exact), "{side} {s}");
            }
            let end = counts_at(&exact, span.end);
            let last = sampled.last().unwrap();
            for s in drawn_states() {
                assert_eq!(last.get(s), end[index(s)], "{side} {s} at the end");
            }
        }
        assert_eq!(counter.sockets, [20_000, 20_000]);
        // The legend says its maximum is sampled; an exact count's does not.
        let svg = render(&counter, &span, "sampled").unwrap();
        assert!(svg.contains("CLOSE_WAIT (max ≈ 20000, sampled; 20000 at end)"));
        let mut few = StateCounter::new();
        reports[..3].iter().for_each(|r| few.add(r));
        let svg = render(&few, &span, "exact").unwrap();
        assert!(svg.contains("CLOSE_WAIT (max 3, 3 at end)") && !svg.contains('≈'));
    }

    #[test]
    fn short_series_keep_every_change() {
        let span = Span {
            start: 0.0,
            end: 10.0,
        };
        let mut counts: Counts = [0; TcpState::ALL.len()];
        let mut steps = Vec::new();
        for (at, n) in [(1.0, 1), (2.0, 2), (2.5, 2), (3.0, 0)] {
            counts[index(TcpState::CloseWait)] = n;
            steps.push(Step { at, counts });
        }
        let pts = step_points(&steps, TcpState::CloseWait, &span);
        assert_eq!(
            pts,
            vec![
                (0.0, 0),
                (1.0, 0),
                (1.0, 1),
                (2.0, 1),
                (2.0, 2),
                (3.0, 2),
                (3.0, 0),
                (10.0, 0)
            ]
        );
    }
}
