//! Plain text for a terminal: one block per finding, most severe first.
//!
//! ```text
//! ERROR close_wait_leak: 45 of your 50 connections to 10.77.0.2:8788 were closed …
//!   numbers   leaking side: client 10.77.0.1; …
//!   evidence  1 2 3 … (45 in all); example: tcp.stream eq 23
//!   wireshark tcp.stream in {1..9, 11..13, 15..50}
//!   why       The server sent FIN after 1.0 s idle; …
//!   advice    Your connection pool does not notice server-side closes. …
//! ```

use super::{
    capture_notes, id_list, kinds, scope, shown_filter, tally, RenderOptions, SHOWN_PER_KIND,
};
use crate::diagnose::{Diagnosis, Finding, Severity};
use std::fmt::Write;

/// A screenful: when one kind of finding repeats for many services (a capture taken on a
/// busy server), the findings part of the text output is folded to at most this many lines.
/// `--json` still lists every finding.
pub const SCREENFUL: usize = 60;

/// Text is wrapped at this many columns.
const WIDTH: usize = 100;
/// Width of the label column (`  evidence  `).
const LABEL: usize = 12;

pub fn render(d: &Diagnosis, opts: &RenderOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "closewait diagnose: {}; {}.", scope(d), tally(d));
    let notes = opts.capture.as_ref().map(capture_notes).unwrap_or_default();
    if !notes.is_empty() {
        out.push('\n');
        for (i, note) in notes.iter().enumerate() {
            labelled(&mut out, if i == 0 { "capture" } else { "" }, note);
        }
    }
    let kinds = kinds(&d.findings);
    if kinds.iter().all(|k| k.len() <= SHOWN_PER_KIND) {
        for f in &d.findings {
            out.push('\n');
            finding(&mut out, f, opts);
        }
    } else {
        out.push_str(&folded(&kinds, opts));
    }
    out
}

/// Findings folded to a screenful: per kind, the first few by headline and a line counting
/// the rest. The first of each kind keeps its numbers, why and advice while the whole fits
/// in [`SCREENFUL`] lines; to make it fit, details go from info, then warnings, then fewer
/// headlines are shown per kind, and last the errors' details.
fn folded(kinds: &[Vec<&Finding>], opts: &RenderOptions) -> String {
    use Severity::{Error, Info, Warning};
    let steps = [
        (Some(Info), SHOWN_PER_KIND),
        (Some(Warning), SHOWN_PER_KIND),
        (Some(Error), SHOWN_PER_KIND),
        (Some(Error), 2),
        (Some(Error), 1),
        (None, 1),
    ];
    let mut text = String::new();
    for (detailed_from, shown) in steps {
        text.clear();
        for kind in kinds {
            text.push('\n');
            for (i, f) in kind.iter().take(shown).enumerate() {
                if i == 0 && detailed_from.is_some_and(|s| f.severity >= s) {
                    finding(&mut text, f, opts);
                } else {
                    headline(&mut text, f);
                }
            }
            let rest = &kind[kind.len().min(shown)..];
            if !rest.is_empty() {
                let connections: u64 = rest.iter().map(|f| f.count).sum();
                let line = format!(
                    "… and {} more {} findings ({}; --json lists all)",
                    rest.len(),
                    kind[0].id,
                    crate::diagnose::plural(connections, "connection", "connections"),
                );
                text.push_str(&wrap(&line, "  ", "    "));
            }
        }
        if text.lines().count() <= SCREENFUL {
            break;
        }
    }
    text
}

fn headline(out: &mut String, f: &Finding) {
    let head = format!(
        "{} {}: {}",
        f.severity.as_str().to_ascii_uppercase(),
        f.id,
        f.summary
    );
    out.push_str(&wrap(&head, "", "    "));
}

fn finding(out: &mut String, f: &Finding, opts: &RenderOptions) {
    headline(out, f);
    for (i, fact) in f.facts.iter().enumerate() {
        labelled(out, if i == 0 { "numbers" } else { "" }, fact);
    }
    if !f.evidence.is_empty() {
        let mut ev = id_list(&f.evidence, f.count, opts.max_ids, " ");
        if let Some(x) = f.example {
            ev.push_str(&format!("; example: tcp.stream eq {x}"));
        }
        labelled(out, "evidence", &ev);
        wireshark(out, f);
    }
    labelled(out, "why", &f.mechanism);
    if !f.advice.is_empty() {
        labelled(out, "advice", &f.advice);
    }
}

/// The finding's Wireshark display filter on one line, never wrapped (it is pasted whole),
/// and the line saying how many connections it covers when it leaves some out.
fn wireshark(out: &mut String, f: &Finding) {
    let Some((filter, note)) = shown_filter(f) else {
        return;
    };
    let _ = writeln!(out, "  {:<width$}{filter}", "wireshark", width = LABEL - 2);
    if let Some(note) = note {
        labelled(out, "", &format!("({note})"));
    }
}

fn labelled(out: &mut String, label: &str, text: &str) {
    let first = format!("  {label:<width$}", width = LABEL - 2);
    out.push_str(&wrap(text, &first, &" ".repeat(LABEL)));
}

/// Greedy word wrap at [`WIDTH`] columns; `first` prefixes the first line, `rest` the
/// others. Ends with a newline.
pub(crate) fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in words(text) {
        let word = word.as_str();
        let len = line.chars().count();
        if !empty && len + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// Words, with a unit glued to the number before it (`1.0 s`, `24.3 closes/s`) so a line
/// never ends in a bare number.
fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split_whitespace() {
        let unit = w.trim_end_matches([',', '.', ')', ';', ':']);
        let glue = matches!(unit, "s" | "ms" | "closes/s")
            && out
                .last()
                .is_some_and(|p| p.ends_with(|c: char| c.is_ascii_digit()));
        match out.last_mut() {
            Some(prev) if glue => {
                prev.push(' ');
                prev.push_str(w);
            }
            _ => out.push(w.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_keeps_words_whole_and_indents() {
        let text = "word ".repeat(40);
        let w = wrap(&text, "> ", "  ");
        assert!(w.lines().all(|l| l.chars().count() <= 100));
        assert!(w.starts_with("> word"));
        assert!(w.lines().skip(1).all(|l| l.starts_with("  word")));
        assert_eq!(w.split_whitespace().filter(|x| *x == "word").count(), 40);
    }

    #[test]
    fn wrap_never_separates_a_number_from_its_unit() {
        let text = format!("{} after 1.0 s idle", "x".repeat(92));
        let w = wrap(&text, "", "");
        assert!(w.contains("1.0 s"), "{w}");
    }
}
