//! The ladder as a Mermaid `sequenceDiagram`, which GitHub and GitLab render inline in
//! Markdown (a ```` ```mermaid ```` block).
//!
//! States are notes beside the lifelines (`Note left of C`, `Note right of S`), folded
//! stretches and idle gaps notes over both. A RST is drawn with Mermaid's cross arrow
//! (`-x`). Mermaid reads `;` and `#` specially in message text, so they are written as its
//! `#59;` / `#35;` entity codes.

use super::layout::{human_secs, rel_time, Ladder, RowKind};
use closewait_core::model::Side;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            c => out.push(c),
        }
    }
    out
}

fn id(side: Side) -> &'static str {
    match side {
        Side::Client => "C",
        Side::Server => "S",
    }
}

fn note(out: &mut String, side: Side, text: &str) {
    let pos = match side {
        Side::Client => "left of C",
        Side::Server => "right of S",
    };
    out.push_str(&format!("    Note {pos}: {}\n", esc(text)));
}

/// Renders the ladder as Mermaid source.
pub fn render(l: &Ladder) -> String {
    let mut out = String::from("sequenceDiagram\n");
    out.push_str(&format!("    %% {}\n", l.title()));
    out.push_str(&format!(
        "    participant C as {}\n",
        esc(&l.side_label(Side::Client))
    ));
    out.push_str(&format!(
        "    participant S as {}\n",
        esc(&l.side_label(Side::Server))
    ));
    if let Some(init) = &l.initial {
        note(&mut out, Side::Client, init.client.as_str());
        note(&mut out, Side::Server, init.server.as_str());
    }
    for row in &l.rows {
        match &row.kind {
            RowKind::Arrow(a) => {
                let (from, to) = (id(a.from), id(a.from.other()));
                let head = if a.is_rst() { "-x" } else { "->>" };
                out.push_str(&format!(
                    "    {from}{head}{to}: {}\n",
                    esc(&format!(
                        "{} · {} · t={} · frame {}",
                        a.label(),
                        a.detail(),
                        rel_time(row.t),
                        a.frame
                    ))
                ));
                for side in [Side::Client, Side::Server] {
                    if let Some(s) = a.changed(side) {
                        note(&mut out, side, s.as_str());
                    }
                }
            }
            RowKind::Idle { secs } => {
                out.push_str(&format!(
                    "    Note over C,S: … {} idle …\n",
                    esc(&human_secs(*secs))
                ));
            }
            RowKind::Folded(f) => {
                out.push_str(&format!(
                    "    Note over C,S: … {} (frames {}-{}) …\n",
                    esc(&f.label()),
                    f.first_frame,
                    f.last_frame
                ));
            }
            RowKind::Timer { side, state } => {
                note(
                    &mut out,
                    *side,
                    &format!("{state} (timer, t={})", rel_time(row.t)),
                );
            }
            RowKind::End { states, note: n } => {
                out.push_str(&format!(
                    "    Note over C,S: end of capture, t={}\n",
                    rel_time(row.t)
                ));
                note(&mut out, Side::Client, states.client.as_str());
                note(&mut out, Side::Server, states.server.as_str());
                let mut finding = vec![l.headline.clone(), l.explanation.clone()];
                finding.extend(n.clone());
                out.push_str(&format!(
                    "    Note over C,S: {}\n",
                    finding
                        .iter()
                        .map(|s| esc(s))
                        .collect::<Vec<_>>()
                        .join("<br/>")
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_mermaid_specials() {
        assert_eq!(esc("a; b #1 <x>"), "a#59; b #35;1 #lt;x#gt;");
    }
}
