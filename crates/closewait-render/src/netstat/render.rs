//! Text and JSON output of `closewait netstat`. Reads a [`NetstatReport`], decides nothing.

use super::side::{Group, NetstatReport};
use super::Role;
use crate::diagnose::plural;
use std::fmt::Write;

/// Width text output wraps at.
const WIDTH: usize = 92;

/// The JSON document: its `schema_version`, then the report as it is (see docs/report.md).
#[derive(serde::Serialize)]
struct Document<'a> {
    schema_version: u32,
    #[serde(flatten)]
    report: &'a NetstatReport,
}

/// The JSON document (see docs/report.md).
pub fn json(r: &NetstatReport) -> String {
    let doc = Document {
        schema_version: crate::render::SCHEMA_VERSION,
        report: r,
    };
    let mut s =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// Text for a terminal.
pub fn text(r: &NetstatReport) -> String {
    let mut out = String::new();
    let listeners = r.listening.len();
    let _ = writeln!(
        out,
        "closewait netstat: {} output, {} TCP sockets ({} listening), {}.",
        r.tool.map_or("no netstat or ss", |t| t.as_str()),
        r.sockets,
        listeners,
        plural(r.groups.len() as u64, "service", "services")
    );
    if r.groups.is_empty() {
        let _ = writeln!(out, "\nNo TCP connection to explain.");
    }
    for (i, g) in r.groups.iter().enumerate() {
        out.push('\n');
        group(&mut out, i + 1, g);
    }
    if !r.listening.is_empty() {
        out.push('\n');
        let items: Vec<String> = r
            .listening
            .iter()
            .map(|l| match &l.process {
                Some(p) => format!("{} ({p})", l.local),
                None => l.local.to_string(),
            })
            .collect();
        wrap_into(&mut out, "Listening: ", &items.join(", "));
    }
    if !r.skipped.is_empty() {
        out.push('\n');
        let _ = writeln!(
            out,
            "{} not read:",
            plural(
                r.skipped.len() as u64,
                "line looked like a TCP socket but was",
                "lines looked like TCP sockets but were"
            )
        );
        for s in r.skipped.iter().take(5) {
            let _ = writeln!(out, "  line {}: {} ({})", s.line, s.text.trim(), s.why);
        }
        if r.skipped.len() > 5 {
            let _ = writeln!(out, "  … and {} more", r.skipped.len() - 5);
        }
    }
    out
}

fn group(out: &mut String, n: usize, g: &Group) {
    let who = match g.role {
        Role::Client => "this host is the client",
        Role::Server => "this host is the server",
        Role::Unknown => "side unclear",
    };
    let ports = match g.local_ports {
        Some((lo, hi)) if lo != hi => format!(" {lo}–{hi}"),
        Some((lo, _)) => format!(" {lo}"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "{n}. {} — {who} ({}{ports}), {}",
        g.service,
        g.role_reason.text(),
        plural(g.sockets, "socket", "sockets")
    );
    let states: Vec<String> = g.states.iter().map(|(s, c)| format!("{s} {c}")).collect();
    let _ = writeln!(out, "   states:  {}", states.join(", "));
    match g.role {
        Role::Server => {
            let mut shown: Vec<String> = g
                .clients
                .iter()
                .map(|c| format!("{} ({})", c.host, c.sockets))
                .collect();
            if g.peers > g.clients.len() as u64 {
                shown.push(format!("… {} addresses in all", g.peers));
            }
            wrap_into(out, "   clients: ", &shown.join(", "));
        }
        Role::Client if g.served_here => {
            let _ = writeln!(
                out,
                "   note:    this host also listens on {}: both ends are here",
                g.service
            );
        }
        _ => {}
    }
    if !g.processes.is_empty() {
        let held: Vec<String> = g
            .processes
            .iter()
            .map(|h| format!("{}: {}", h.process, plural(h.sockets, "socket", "sockets")))
            .collect();
        let _ = writeln!(out, "   process: {}", held.join(", "));
    }
    for f in &g.findings {
        out.push('\n');
        wrap_into(
            out,
            &format!("   {:<8} ", format!("{}:", f.severity)),
            &f.summary,
        );
        wrap_into(
            out,
            "            ",
            &format!("In a capture: {}.", f.look_for),
        );
    }
    if let Some(c) = &g.capture {
        out.push('\n');
        let _ = writeln!(out, "   capture: {}", c.tcpdump);
        let _ = writeln!(out, "   then:    {}", c.then);
    }
}

/// Writes `text` after `first`, wrapped at [`WIDTH`], continuation lines indented to the
/// width of `first`.
fn wrap_into(out: &mut String, first: &str, text: &str) {
    let indent = first.chars().count();
    let mut line = first.to_string();
    let mut len = indent;
    let mut empty = true;
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if !empty && len + 1 + w > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            len = indent;
            empty = true;
        }
        if !empty {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += w;
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_words_whole_and_indents() {
        let mut s = String::new();
        wrap_into(&mut s, "   error:   ", &"word ".repeat(40));
        for l in s.lines() {
            assert!(l.chars().count() <= WIDTH, "{l}");
        }
        assert!(s.lines().skip(1).all(|l| l.starts_with("            word")));
    }
}
