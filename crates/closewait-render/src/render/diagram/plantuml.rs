//! The ladder as PlantUML sequence-diagram source (`@startuml … @enduml`).
//!
//! States are notes beside the lifelines, idle gaps PlantUML's own delay marker
//! (`...15.0 s idle...`), the end of the capture a divider, and the finding a note over
//! both participants. A RST is drawn with PlantUML's lost-message arrow (`->x`).

use super::layout::{human_secs, rel_time, Ladder, RowKind};
use closewait_core::model::Side;

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
    out.push_str(&format!("hnote {pos} : {text}\n"));
}

/// Text on one line: PlantUML ends a message at a newline.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Renders the ladder as PlantUML source.
pub fn render(l: &Ladder) -> String {
    let mut out = String::from("@startuml\n");
    out.push_str(&format!("title {}\n", one_line(&l.title())));
    out.push_str("skinparam sequenceMessageAlign center\n");
    out.push_str(&format!("participant \"client\\n{}\" as C\n", l.client));
    out.push_str(&format!("participant \"server\\n{}\" as S\n", l.server));
    if let Some(init) = &l.initial {
        note(&mut out, Side::Client, init.client.as_str());
        note(&mut out, Side::Server, init.server.as_str());
    }
    for row in &l.rows {
        match &row.kind {
            RowKind::Arrow(a) => {
                let head = if a.is_rst() { "->x" } else { "->" };
                out.push_str(&format!(
                    "{} {head} {} : {}\\n<size:10>{} · t={} #{}</size>\n",
                    id(a.from),
                    id(a.from.other()),
                    one_line(&a.label()),
                    a.detail(),
                    rel_time(row.t),
                    a.frame
                ));
                for side in [Side::Client, Side::Server] {
                    if let Some(s) = a.changed(side) {
                        note(&mut out, side, s.as_str());
                    }
                }
            }
            RowKind::Idle { secs } => {
                out.push_str(&format!("...{} idle...\n", human_secs(*secs)));
            }
            RowKind::Folded(f) => {
                out.push_str(&format!(
                    "... {} (frames {}-{}) ...\n",
                    one_line(&f.label()),
                    f.first_frame,
                    f.last_frame
                ));
            }
            RowKind::Timer { side, state } => {
                note(
                    &mut out,
                    *side,
                    &format!("{state}\\n<size:10>timer, t={}</size>", rel_time(row.t)),
                );
            }
            RowKind::End { states, note: n } => {
                out.push_str(&format!("== end of capture, t={} ==\n", rel_time(row.t)));
                note(&mut out, Side::Client, states.client.as_str());
                note(&mut out, Side::Server, states.server.as_str());
                out.push_str("note over C, S\n");
                out.push_str(&format!("**{}**\n", one_line(&l.headline)));
                out.push_str(&format!("{}\n", one_line(&l.explanation)));
                if let Some(n) = n {
                    out.push_str(&format!("{}\n", one_line(n)));
                }
                out.push_str("end note\n");
            }
        }
    }
    out.push_str("@enduml\n");
    out
}
