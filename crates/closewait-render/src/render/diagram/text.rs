//! The ladder as text, for terminals and for code blocks in bug reports.
//!
//! One line per row: time and frame number (so the segment can be found in Wireshark with
//! `frame.number == N`), the client's new state right-aligned against its lifeline, the
//! arrow with its label, the server's new state. A lifeline is drawn `║` while its side
//! sits in CLOSE_WAIT, the state the seed article is about. `ascii` uses plain ASCII only.

use super::layout::{human_secs, rel_time, Ladder, RowKind};
use closewait_core::model::Side;
use closewait_core::state::TcpState;

struct Glyphs {
    line: char,
    waiting: char,
    dotted: char,
    dash: char,
    right: char,
    left: char,
    end_dash: char,
    ellipsis: &'static str,
}

const UNICODE: Glyphs = Glyphs {
    line: '│',
    waiting: '║',
    dotted: '┆',
    dash: '─',
    right: '▶',
    left: '◀',
    end_dash: '╌',
    ellipsis: "…",
};

const ASCII: Glyphs = Glyphs {
    line: '|',
    waiting: '|',
    dotted: ':',
    dash: '-',
    right: '>',
    left: '<',
    end_dash: '=',
    ellipsis: "...",
};

const TIME_W: usize = 11;
/// The narrowest frame column; it widens so that a label ("#7-1436" of a folded row) keeps
/// a space between itself and the time.
const FRAME_W: usize = 7;
const MIN_ARROW_W: usize = 40;

fn width(s: &str) -> usize {
    s.chars().count()
}

/// `s` centered in `w` columns, filled with `fill`.
fn center(s: &str, w: usize, fill: char) -> String {
    let n = width(s);
    if n >= w {
        return s.to_string();
    }
    let left = (w - n) / 2;
    let right = w - n - left;
    let mut out = String::new();
    out.extend(std::iter::repeat_n(fill, left));
    out.push_str(s);
    out.extend(std::iter::repeat_n(fill, right));
    out
}

/// Words of `s` on lines of at most `w` columns.
pub(crate) fn wrap(s: &str, w: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        if !cur.is_empty() && width(&cur) + 1 + width(word) > w {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn frame_label(frame: u64) -> String {
    format!("#{frame}")
}

fn fold_frames(first: u64, last: u64) -> String {
    format!("#{first}-{last}")
}

/// Renders the ladder as text lines ending in `\n`.
pub fn render(l: &Ladder, ascii: bool) -> String {
    let g = if ascii { &ASCII } else { &UNICODE };
    let arrow_w = l
        .arrows()
        .map(|a| width(&a.label()) + width(&a.detail()) + 8)
        .chain(l.rows.iter().filter_map(|r| match &r.kind {
            RowKind::Folded(f) => Some(width(&f.label()) + 6),
            _ => None,
        }))
        .max()
        .unwrap_or(0)
        .max(MIN_ARROW_W);
    let state_w = TcpState::ALL
        .iter()
        .map(|s| width(s.as_str()))
        .max()
        .unwrap_or(12);
    let frame_w = l
        .rows
        .iter()
        .map(|r| match &r.kind {
            RowKind::Arrow(a) => width(&frame_label(a.frame)),
            RowKind::Folded(f) => width(&fold_frames(f.first_frame, f.last_frame)),
            _ => 0,
        })
        .map(|w| w + 1)
        .max()
        .unwrap_or(0)
        .max(FRAME_W);
    let client_label = l.side_label(Side::Client);
    // The client's header is right-aligned against its lifeline, like its states.
    let lead = TIME_W + frame_w + 1 + state_w.max(width(&client_label)) + 1;
    let total = lead + 1 + arrow_w + 1 + 1 + state_w;

    let mut out = String::new();
    let mut push = |s: String| {
        out.push_str(s.trim_end());
        out.push('\n');
    };
    push(l.title());
    push(String::new());
    push(format!(
        "{:>tw$}{:>fw$} {:>sw$}  {}{}",
        "time (s)",
        "frame",
        client_label,
        " ".repeat(arrow_w),
        l.side_label(Side::Server),
        tw = TIME_W,
        fw = frame_w,
        sw = lead - TIME_W - frame_w - 2,
    ));

    // The lifeline glyph of each side, as of the current row.
    let mut states: [Option<TcpState>; 2] = [None, None];
    let lifeline = |s: Option<TcpState>| {
        if s == Some(TcpState::CloseWait) {
            g.waiting
        } else {
            g.line
        }
    };
    let line =
        |time: &str, frame: &str, left: &str, cl: char, middle: &str, sl: char, right: &str| {
            format!(
                "{time:>tw$}{frame:>fw$} {left:>sw$} {cl}{middle}{sl} {right}",
                tw = TIME_W,
                fw = frame_w,
                sw = lead - TIME_W - frame_w - 2,
            )
        };
    let blank = " ".repeat(arrow_w);
    if let Some(init) = &l.initial {
        states = [Some(init.client), Some(init.server)];
        push(line(
            "",
            "",
            init.client.as_str(),
            lifeline(states[0]),
            &blank,
            lifeline(states[1]),
            init.server.as_str(),
        ));
    }
    let mut prev_line: Option<i64> = l.initial.as_ref().map(|_| 0);
    for row in &l.rows {
        let this = (row.y.round() as i64).max(prev_line.map_or(0, |p| p + 1));
        if let Some(p) = prev_line {
            let fill = match row.kind {
                RowKind::Idle { .. } => 0,
                _ => (this - p - 1).clamp(0, 6),
            };
            for _ in 0..fill {
                push(line(
                    "",
                    "",
                    "",
                    lifeline(states[0]),
                    &blank,
                    lifeline(states[1]),
                    "",
                ));
            }
        }
        prev_line = Some(this);
        let time = rel_time(row.t);
        match &row.kind {
            RowKind::Arrow(a) => {
                let content = format!(" {}  {} ", a.label(), a.detail());
                let body_w = arrow_w - 1;
                let middle = match a.from {
                    Side::Client => format!("{}{}", center(&content, body_w, g.dash), g.right),
                    Side::Server => format!("{}{}", g.left, center(&content, body_w, g.dash)),
                };
                let cs = a.changed(Side::Client);
                let ss = a.changed(Side::Server);
                states = [Some(a.states.client), Some(a.states.server)];
                push(line(
                    &time,
                    &frame_label(a.frame),
                    cs.map(|s| s.as_str()).unwrap_or(""),
                    lifeline(states[0]),
                    &middle,
                    lifeline(states[1]),
                    ss.map(|s| s.as_str()).unwrap_or(""),
                ));
            }
            RowKind::Idle { secs } => {
                let text = format!(" {} {} idle {} ", g.ellipsis, human_secs(*secs), g.ellipsis);
                // The break is dotted, except on a lifeline still waiting in CLOSE_WAIT.
                let cut = |s: Option<TcpState>| {
                    if s == Some(TcpState::CloseWait) {
                        g.waiting
                    } else {
                        g.dotted
                    }
                };
                push(line(
                    "",
                    "",
                    "",
                    cut(states[0]),
                    &center(&text, arrow_w, ' '),
                    cut(states[1]),
                    "",
                ));
            }
            RowKind::Folded(f) => {
                let text = format!(" {} {} {} ", g.ellipsis, f.label(), g.ellipsis);
                push(line(
                    &time,
                    &fold_frames(f.first_frame, f.last_frame),
                    "",
                    g.dotted,
                    &center(&text, arrow_w, ' '),
                    g.dotted,
                    "",
                ));
            }
            RowKind::Timer { side, state } => {
                let (left, right) = match side {
                    Side::Client => (state.as_str(), ""),
                    Side::Server => ("", state.as_str()),
                };
                let idx = if *side == Side::Client { 0 } else { 1 };
                states[idx] = Some(*state);
                let text = format!(" {side} timer: {state} ");
                push(line(
                    &time,
                    "timer",
                    left,
                    lifeline(states[0]),
                    &center(&text, arrow_w, ' '),
                    lifeline(states[1]),
                    right,
                ));
            }
            RowKind::End { states: end, .. } => {
                states = [Some(end.client), Some(end.server)];
                push(line(
                    &time,
                    "end",
                    end.client.as_str(),
                    lifeline(states[0]),
                    &center(" end of capture ", arrow_w, g.end_dash),
                    lifeline(states[1]),
                    end.server.as_str(),
                ));
            }
        }
    }
    push(String::new());
    for l in wrap(&l.headline, total) {
        push(l);
    }
    for l in wrap(&l.explanation, total) {
        push(l);
    }
    if let Some(note) = l.rows.iter().find_map(|r| match &r.kind {
        RowKind::End { note, .. } => note.clone(),
        _ => None,
    }) {
        for l in wrap(&note, total) {
            push(l);
        }
    }
    if !ascii && l.bands.iter().any(|b| b.state == TcpState::CloseWait) {
        push(format!("{} = lifeline in CLOSE_WAIT", g.waiting));
    }
    if ascii {
        out = to_ascii(&out);
    }
    out
}

/// The few non-ASCII characters of titles and sentences, spelled in ASCII.
fn to_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '→' => out.push_str("->"),
            '…' => out.push_str("..."),
            'µ' => out.push('u'),
            '–' | '—' => out.push('-'),
            '·' => out.push('|'),
            c if c.is_ascii() => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::diagram::layout::{build, LadderOptions};
    use closewait_core::testkit::*;

    #[test]
    fn wrap_keeps_words_whole() {
        assert_eq!(wrap("aaa bbb ccc", 7), vec!["aaa bbb", "ccc"]);
    }

    #[test]
    fn client_closes_first_reads_like_the_seed_figure() {
        let mut w = Wire::new();
        w.exchange()
            .send(C, FIN | ACK, 1101, 5201, 0)
            .send(S, ACK, 5201, 1102, 0)
            .send(S, FIN | ACK, 5201, 1102, 0)
            .send(C, ACK, 1102, 5202, 0);
        let l = build(&w.only(), &LadderOptions::default()).unwrap();
        let t = render(&l, false);
        // The seed's first figure: the closer walks FIN_WAIT_1 → FIN_WAIT_2 → TIME_WAIT,
        // the peer CLOSE_WAIT → LAST_ACK → CLOSED; each FIN is received on its own row.
        let order = [
            "FIN_WAIT_1",
            "CLOSE_WAIT",
            "FIN_WAIT_2",
            "TIME_WAIT",
            "LAST_ACK",
        ];
        let mut at = 0;
        for s in order {
            let i = t[at..]
                .find(s)
                .unwrap_or_else(|| panic!("{s} after {at}:\n{t}"));
            at += i;
        }
        assert!(t.contains("FIN, ACK  seq=101 ack=201"), "{t}");
        let ascii = render(&l, true);
        assert!(ascii.is_ascii(), "{ascii}");
    }

    #[test]
    fn folded_row_keeps_its_frame_range_apart_from_the_time() {
        // ~1050 segments: the folded range reads "#7-10xx", as wide as the narrowest frame
        // column, so without its own room it would run into the time.
        let r = crate::render::diagram::layout::tests::bulk_download(700);
        let t = render(&build(&r, &LadderOptions::default()).unwrap(), false);
        let row = t
            .lines()
            .find(|l| l.contains("data segments"))
            .unwrap_or_else(|| panic!("no folded row:\n{t}"));
        let mut cols = row.split_whitespace();
        let time = cols.next().unwrap();
        let frames = cols.next().unwrap();
        assert!(time.parse::<f64>().is_ok(), "{row}");
        assert!(
            frames.starts_with("#7-") && frames.len() >= FRAME_W,
            "{row}\n{t}"
        );
        // Every row's lifelines stay in the same columns.
        let col = |l: &str| l.chars().position(|c| c == '┆' || c == '│' || c == '║');
        let header_arrow = t.lines().find(|l| l.contains("#1 ")).unwrap();
        assert_eq!(col(row), col(header_arrow), "\n{t}");
    }
}
