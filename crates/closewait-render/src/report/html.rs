//! The report as one HTML5 document.
//!
//! Rules the page keeps, so it can be attached to a ticket and opened anywhere:
//! - no external resource: styles inline in one `<style>`, diagrams and charts inline
//!   `<svg>`, the favicon an empty `data:` URL (so browsers do not ask for /favicon.ico);
//! - no script: everything is visible as written;
//! - a print stylesheet: no navigation, no page break inside a table row, a finding header
//!   or a figure, links printed as plain text;
//! - every string that comes from the capture (file names, addresses, the findings' words,
//!   warnings) goes through [`esc`]; SVG comes from closewait's own writers, which escape
//!   their text themselves;
//! - deterministic: the same inputs give the same bytes (no clock, no hash-map order).

use super::{Ladder, Report};
use crate::diagnose::{Finding, Severity};
use crate::render::diagnosis::{id_list, scope, tally};
use crate::render::diagram::svg::state_color;
use crate::render::utc::utc;
use closewait_core::model::Side;
use std::collections::BTreeMap;
use std::fmt::Write;

pub use crate::render::markup::html as esc;

const STYLE: &str = r#"
:root{color-scheme:light;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;
--err:#cf222e;--err-bg:#ffebe9;--warn:#9a6700;--warn-bg:#fff8c5;--info:#0969da;--info-bg:#ddf4ff;
--ok:#1a7f37;--ok-bg:#dafbe1}
*{box-sizing:border-box}
html{background:#fff}
body{margin:0 auto;max-width:1080px;padding:24px 28px 48px;color:var(--fg);background:#fff;
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Helvetica,Arial,sans-serif}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:36px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:17px;margin:0 0 6px}
p{margin:6px 0}
code,kbd,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:.92em}
code{background:var(--soft);padding:1px 4px;border-radius:4px}
a{color:var(--info)}
.sub{color:var(--muted);margin:0}
.headline{margin:18px 0;padding:12px 16px;border-left:6px solid var(--info);background:var(--info-bg);border-radius:6px}
.headline.sev-error{border-color:var(--err);background:var(--err-bg)}
.headline.sev-warning{border-color:var(--warn);background:var(--warn-bg)}
.headline.sev-clear{border-color:var(--ok);background:var(--ok-bg)}
nav.toc{margin:12px 0;color:var(--muted)}
nav.toc a{margin-right:14px}
table{border-collapse:collapse;margin:8px 0 4px;width:100%}
th,td{border:1px solid var(--line);padding:5px 9px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr{break-inside:avoid}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:700;
letter-spacing:.02em;text-transform:uppercase;color:#fff;background:var(--info);white-space:nowrap}
.badge.sev-error{background:var(--err)}
.badge.sev-warning{background:var(--warn)}
.pill{display:inline-block;padding:0 7px;border-radius:9px;color:#fff;font-size:12px;font-weight:700;white-space:nowrap}
article.finding{margin:18px 0 28px;padding:14px 18px;border:1px solid var(--line);border-left:6px solid var(--info);border-radius:6px}
article.finding.sev-error{border-left-color:var(--err)}
article.finding.sev-warning{border-left-color:var(--warn)}
article.finding header{break-inside:avoid;break-after:avoid}
.verdict{font-weight:600;font-size:16px}
ul.facts{margin:8px 0;padding-left:22px}
ul.facts li{margin:2px 0}
.label{font-weight:700}
.muted{color:var(--muted)}
figure{margin:14px 0 4px;break-inside:avoid}
figure svg{display:block;max-width:100%;height:auto;border:1px solid var(--line);border-radius:8px}
figcaption{color:var(--muted);font-size:13px;margin-top:4px}
dl.capture{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:8px 0}
dl.capture dt{font-weight:600}
dl.capture dd{margin:0}
.cols{display:flex;gap:24px;flex-wrap:wrap}
.cols>div{flex:1 1 300px}
footer{margin-top:40px;padding-top:10px;border-top:1px solid var(--line);color:var(--muted);font-size:13px}
@media print{
@page{margin:14mm}
body{max-width:none;padding:0;font-size:10.5pt}
nav.toc{display:none}
a{color:inherit;text-decoration:none}
h2{break-after:avoid}
article.finding{break-inside:auto}
.badge,.pill,.headline,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}
figure svg{max-height:240mm;width:auto}
}
"#;

/// Renders the whole page.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let d = r.diagnosis;
    let _ = writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>");
    let _ = writeln!(out, "<meta charset=\"utf-8\">");
    let _ = writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    );
    let _ = writeln!(
        out,
        "<meta name=\"generator\" content=\"closewait {}\">",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "<link rel=\"icon\" href=\"data:,\">");
    let _ = writeln!(out, "<title>closewait report: {}</title>", esc(&r.title));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");

    // Header.
    let _ = writeln!(out, "<header>");
    let _ = writeln!(out, "<h1>closewait report</h1>");
    let _ = writeln!(out, "<p class=\"sub mono\">{}</p>", esc(&r.title));
    let span = match (d.capture_start, d.capture_end) {
        (Some(a), Some(b)) => format!(", from {} to {}", utc(a), utc(b)),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "<p class=\"sub\">{}{}: {}.</p>",
        esc(&scope(d)),
        esc(&span),
        esc(&tally(d))
    );
    let _ = writeln!(out, "</header>");
    headline(&mut out, r);

    let _ = writeln!(
        out,
        "<nav class=\"toc\" aria-label=\"Contents\"><a href=\"#findings\">Findings</a>\
         <a href=\"#end-states\">End states</a>{}<a href=\"#kinds\">How connections ended</a>\
         <a href=\"#capture\">Capture</a></nav>",
        if r.charts.is_empty() {
            ""
        } else {
            "<a href=\"#charts\">Charts</a>"
        }
    );

    findings(&mut out, r);
    end_states(&mut out, r);
    charts(&mut out, r);
    kinds(&mut out, r);
    capture(&mut out, r);

    let _ = writeln!(
        out,
        "<footer>Written by closewait {} from the capture alone. Connection ids are \
         Wireshark's <code>tcp.stream</code>: type <code>tcp.stream eq N</code> in Wireshark \
         to see any connection named here. Regenerate with <code>closewait report CAPTURE -o \
         report.html</code>.</footer>",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "</body>\n</html>");
    out
}

fn sev_class(s: Severity) -> &'static str {
    match s {
        Severity::Error => "sev-error",
        Severity::Warning => "sev-warning",
        Severity::Info => "sev-info",
    }
}

/// The most severe finding's verdict, first thing on the page.
fn headline(out: &mut String, r: &Report) {
    let Some(f) = r.diagnosis.findings.first() else {
        let _ = writeln!(
            out,
            "<p class=\"headline\">No TCP connection in this capture.</p>"
        );
        return;
    };
    let class = if f.severity >= Severity::Warning {
        sev_class(f.severity)
    } else {
        "sev-clear"
    };
    let _ = writeln!(
        out,
        "<p class=\"headline {class}\"><span class=\"badge {}\">{}</span> {} \
         <a href=\"#finding-1\">Details</a></p>",
        sev_class(f.severity),
        f.severity,
        esc(&f.summary)
    );
}

fn findings(out: &mut String, r: &Report) {
    let d = r.diagnosis;
    let _ = writeln!(out, "<section id=\"findings\">\n<h2>Findings</h2>");
    if d.findings.is_empty() {
        let _ = writeln!(out, "<p>No finding.</p></section>");
        return;
    }
    let _ = writeln!(
        out,
        "<table>\n<thead><tr><th class=\"num\">#</th><th>Severity</th><th>Finding</th>\
         <th class=\"num\">Connections</th><th>Verdict</th></tr></thead>\n<tbody>"
    );
    for (i, f) in d.findings.iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr><td class=\"num\"><a href=\"#finding-{n}\">{n}</a></td>\
             <td><span class=\"badge {}\">{}</span></td><td>{}<br><code>{}</code></td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            sev_class(f.severity),
            f.severity,
            esc(f.id.title()),
            f.id,
            f.count,
            esc(&f.summary),
            n = i + 1,
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>");

    // Where each example connection is drawn first.
    let mut drawn: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, f) in d.findings.iter().enumerate() {
        finding(out, r, i + 1, f, &mut drawn);
    }
    let _ = writeln!(out, "</section>");
}

fn finding(out: &mut String, r: &Report, n: usize, f: &Finding, drawn: &mut BTreeMap<u64, usize>) {
    let sev = sev_class(f.severity);
    let _ = writeln!(out, "<article class=\"finding {sev}\" id=\"finding-{n}\">");
    let _ = writeln!(
        out,
        "<header><h3>{n}. {} <span class=\"badge {sev}\">{}</span> <code>{}</code></h3>\
         <p class=\"verdict\">{}</p></header>",
        esc(f.id.title()),
        f.severity,
        f.id,
        esc(&f.summary)
    );
    if !f.facts.is_empty() || !f.evidence.is_empty() {
        let _ = writeln!(out, "<ul class=\"facts\">");
        for fact in &f.facts {
            let _ = writeln!(out, "<li>{}</li>", esc(fact));
        }
        if !f.evidence.is_empty() {
            let _ = writeln!(
                out,
                "<li>Evidence (connection ids = Wireshark <code>tcp.stream</code>): <span \
                 class=\"mono\">{}</span></li>",
                esc(&id_list(&f.evidence, f.count, r.max_ids, ", "))
            );
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(
        out,
        "<p><span class=\"label\">Why.</span> {}</p>",
        esc(&f.mechanism)
    );
    if !f.advice.is_empty() {
        let _ = writeln!(
            out,
            "<p><span class=\"label\">Advice.</span> {}</p>",
            esc(&f.advice)
        );
    }
    if let Some(x) = f.example {
        match (drawn.get(&x), r.ladders.get(&x)) {
            (Some(first), _) => {
                let _ = writeln!(
                    out,
                    "<p class=\"muted\">Most representative connection: {x} \
                     (<code>tcp.stream eq {x}</code>), drawn under \
                     <a href=\"#finding-{first}\">finding {first}</a>.</p>"
                );
            }
            (None, Some(Ladder::Svg(svg))) => {
                drawn.insert(x, n);
                let _ = writeln!(out, "<figure id=\"conn-{x}\">\n{}", svg.trim_end());
                let _ = writeln!(
                    out,
                    "<figcaption>Connection {x} (<code>tcp.stream eq {x}</code>), the most \
                     representative of this finding, drawn from the capture: each side's TCP \
                     state beside its lifeline, long idle gaps folded.</figcaption>\n</figure>"
                );
            }
            (None, Some(Ladder::Missing(why))) => {
                let _ = writeln!(
                    out,
                    "<p class=\"muted\">Most representative connection: {x} \
                     (<code>tcp.stream eq {x}</code>); no diagram: {}.</p>",
                    esc(why)
                );
            }
            (None, None) => {
                let _ = writeln!(
                    out,
                    "<p class=\"muted\">Most representative connection: {x} \
                     (<code>tcp.stream eq {x}</code>).</p>"
                );
            }
        }
    }
    let _ = writeln!(out, "</article>");
}

fn pill(state: closewait_core::state::TcpState) -> String {
    format!(
        "<span class=\"pill\" style=\"background:{}\">{}</span>",
        state_color(state),
        state
    )
}

/// The netstat view: per side, state and server, how many connections were left there.
fn end_states(out: &mut String, r: &Report) {
    let s = r.summary;
    let _ = writeln!(
        out,
        "<section id=\"end-states\">\n<h2>End states</h2>\n<p>The state each side of every \
         connection was left in at the end of the capture, per server: what <code>netstat \
         -tan</code> or <code>ss -tan</code> would have shown on each host.</p>"
    );
    if s.end_states.is_empty() {
        let _ = writeln!(out, "<p>No connection.</p></section>");
        return;
    }
    let _ = writeln!(
        out,
        "<table>\n<thead><tr><th>Side</th><th>State</th><th class=\"num\">Connections</th>\
         <th>Server</th></tr></thead>\n<tbody>"
    );
    for row in &s.end_states {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"mono\">{}</td></tr>",
            match row.side {
                Side::Client => "client",
                Side::Server => "server",
            },
            pill(row.state),
            row.count,
            esc(&row.server.to_string())
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>");
    if let Some(l) = &s.longest_close_wait {
        let _ = writeln!(
            out,
            "<p>Longest CLOSE_WAIT: connection {} (<code>tcp.stream eq {}</code>), the {} \
             <span class=\"mono\">{}</span> had owed its FIN for {} when the capture ended.</p>",
            l.id,
            l.id,
            l.side,
            esc(&l.addr.to_string()),
            esc(&crate::diagnose::stats::secs(l.waiting_for))
        );
    }
    let _ = writeln!(out, "</section>");
}

/// Connections per close kind and per initiator.
fn kinds(out: &mut String, r: &Report) {
    let s = r.summary;
    let _ = writeln!(
        out,
        "<section id=\"kinds\">\n<h2>How connections ended</h2>\n<div class=\"cols\">\n<div>"
    );
    let _ = writeln!(
        out,
        "<table>\n<thead><tr><th>Close kind</th><th class=\"num\">Connections</th></tr></thead>\n<tbody>"
    );
    for (k, n) in s.by_kind.iter() {
        let _ = writeln!(
            out,
            "<tr{}><td><code>{}</code></td><td class=\"num\">{n}</td></tr>",
            if n == 0 { " class=\"muted\"" } else { "" },
            k
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>\n</div>\n<div>");
    let _ = writeln!(
        out,
        "<table>\n<thead><tr><th>Close started by</th><th class=\"num\">Connections</th></tr></thead>\n<tbody>"
    );
    for (who, n) in s.by_initiator.iter() {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td class=\"num\">{n}</td></tr>",
            if n == 0 { " class=\"muted\"" } else { "" },
            who.as_str()
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>\n</div>\n</div>\n</section>");
}

/// The charts of `closewait chart`, inline.
fn charts(out: &mut String, r: &Report) {
    if r.charts.is_empty() {
        return;
    }
    let _ = writeln!(out, "<section id=\"charts\">\n<h2>Charts</h2>");
    for (i, c) in r.charts.iter().enumerate() {
        let _ = writeln!(
            out,
            "<figure id=\"chart-{}\">\n<h3>{}</h3>\n{}<figcaption>{}</figcaption>\n</figure>",
            i + 1,
            esc(&c.title),
            if c.svg.is_empty() {
                String::new()
            } else {
                format!("{}\n", c.svg.trim_end())
            },
            esc(&c.caption)
        );
    }
    let _ = writeln!(out, "</section>");
}

fn capture(out: &mut String, r: &Report) {
    let c = r.capture;
    let _ = writeln!(
        out,
        "<section id=\"capture\">\n<h2>Capture</h2>\n<dl class=\"capture\">"
    );
    for f in &c.files {
        let mut notes = vec![f.format.clone()];
        if f.gzip {
            notes.push("gzip".to_string());
        }
        if f.truncated {
            notes.push("truncated".to_string());
        }
        let _ = writeln!(
            out,
            "<dt>File</dt><dd><span class=\"mono\">{}</span>: {}, {} packets</dd>",
            esc(&f.path),
            esc(&notes.join(", ")),
            f.packets
        );
    }
    let _ = writeln!(
        out,
        "<dt>Packets</dt><dd>{} in all, {} TCP segments</dd>",
        c.packets.total, c.packets.tcp
    );
    if !c.packets.skipped.is_empty() {
        let skipped: Vec<String> = c
            .packets
            .skipped
            .iter()
            .map(|(why, n)| format!("{why} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "<dt>Not analysed</dt><dd>{}</dd>",
            esc(&skipped.join(", "))
        );
    }
    if let (Some(a), Some(b)) = (c.first_ts, c.last_ts) {
        let _ = writeln!(
            out,
            "<dt>Time</dt><dd>{} to {} ({})</dd>",
            esc(&utc(a)),
            esc(&utc(b)),
            esc(&crate::diagnose::stats::secs((b - a).max(0.0)))
        );
    }
    if !c.link_types.is_empty() {
        let links: Vec<String> = c
            .link_types
            .iter()
            .map(|(l, n)| format!("{l} ({n})"))
            .collect();
        let _ = writeln!(
            out,
            "<dt>Link types</dt><dd>{}</dd>",
            esc(&links.join(", "))
        );
    }
    if !c.packets.tunnels.is_empty() {
        let t: Vec<String> = c
            .packets
            .tunnels
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(out, "<dt>In tunnels</dt><dd>{}</dd>", esc(&t.join(", ")));
    }
    let _ = writeln!(out, "</dl>");
    if !c.warnings.is_empty() {
        let _ = writeln!(out, "<p class=\"label\">Warnings while reading</p>\n<ul>");
        for w in &c.warnings {
            let _ = writeln!(out, "<li>{}</li>", esc(w));
        }
        let _ = writeln!(out, "</ul>");
    }
    let _ = writeln!(out, "</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>\u{1b}[31m"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;\u{FFFD}[31m"
        );
    }
}
