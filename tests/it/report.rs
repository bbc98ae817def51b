//! `closewait report` on the real captures, without a browser: the page is self-contained,
//! says what `closewait diagnose` says, shows the end-state table of `closewait analyze`,
//! and escapes what came from outside.

use crate::support::cli::stdout_of;
use crate::support::paths::{capture, root};
use assert_cmd::Command;
use closewait::diagnose::diagnose;
use closewait::diagnose_cmd::read;
use closewait::report::html::esc;
use closewait::summary::Summary;

fn report_of(args: &[&str]) -> String {
    stdout_of(["report"].iter().chain(args))
}

/// Every `attr="value"` in the page.
fn attr_values<'a>(page: &'a str, attr: &str) -> Vec<&'a str> {
    let key = format!(" {attr}=\"");
    page.match_indices(&key)
        .map(|(i, _)| {
            let rest = &page[i + key.len()..];
            &rest[..rest.find('"').unwrap_or(rest.len())]
        })
        .collect()
}

#[test]
fn page_loads_nothing_from_anywhere_and_runs_no_script() {
    for name in [
        "12-pool-leak-many.pcap",
        "20-many-idle-timeouts.pcap",
        "10b-keepalive-unanswered.pcap",
    ] {
        let page = report_of(&[&format!("captures/{name}")]);
        assert!(
            page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{name}"
        );
        assert!(page.trim_end().ends_with("</html>"), "{name}");
        assert!(!page.contains("<script"), "{name}");
        assert!(
            !page.contains("@import") && !page.contains("url("),
            "{name}"
        );
        assert!(
            !page.contains("<img") && !page.contains("<iframe"),
            "{name}"
        );
        assert_eq!(attr_values(&page, "src"), Vec::<&str>::new(), "{name}");
        for href in attr_values(&page, "href") {
            assert!(
                href.starts_with('#') || href == "data:,",
                "{name}: links out to {href}"
            );
        }
        // The only URL is the SVG namespace name, which is never fetched.
        let urls = page.matches("http://").count() + page.matches("https://").count();
        let ns = page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
        assert_eq!(urls, ns, "{name}");
        // Unique element ids, though the page holds several diagrams.
        let mut ids = attr_values(&page, "id");
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "{name}: duplicate ids");
        assert!(page.contains("@media print"));
    }
}

#[test]
fn page_says_what_diagnose_says_with_a_ladder_per_distinct_example() {
    let file = capture("12-pool-leak-many.pcap");
    let (reports, stats) = read(std::slice::from_ref(&file), 60.0).expect("reads");
    let d = diagnose(&reports, &stats);
    let page = report_of(&["captures/12-pool-leak-many.pcap"]);
    assert_eq!(d.findings.len(), 6);
    for (i, f) in d.findings.iter().enumerate() {
        let n = i + 1;
        assert!(page.contains(&format!("id=\"finding-{n}\"")), "finding {n}");
        assert!(page.contains(&esc(&f.summary)), "summary of finding {n}");
        assert!(
            page.contains(&esc(&f.mechanism)),
            "mechanism of finding {n}"
        );
        assert!(page.contains(&esc(&f.advice)), "advice of finding {n}");
        for fact in &f.facts {
            assert!(page.contains(&esc(fact)), "fact of finding {n}: {fact}");
        }
        let x = f.example.expect("an example");
        assert!(page.contains(&format!("tcp.stream eq {x}")), "example {x}");
    }
    let mut examples: Vec<u64> = d.findings.iter().filter_map(|f| f.example).collect();
    examples.sort_unstable();
    examples.dedup();
    // One ladder per distinct example, and the three charts.
    assert_eq!(page.matches("<svg ").count(), examples.len() + 3);
    for n in 1..=3 {
        let chart = &page[page
            .find(&format!("<figure id=\"chart-{n}\">"))
            .expect("chart")..];
        let chart = &chart[..chart.find("</figure>").expect("figure ends")];
        assert_eq!(chart.matches("<svg ").count(), 1, "chart {n} drawn");
    }
    for x in examples {
        assert!(
            page.contains(&format!("<figure id=\"conn-{x}\">")),
            "ladder {x}"
        );
    }
    // The headline is the error.
    assert!(page.contains("<p class=\"headline sev-error\">"));
}

#[test]
fn end_state_table_has_the_summary_rows() {
    let file = capture("12-pool-leak-many.pcap");
    let (reports, _) = read(std::slice::from_ref(&file), 60.0).expect("reads");
    let summary = Summary::from_reports(&reports);
    let page = report_of(&["captures/12-pool-leak-many.pcap"]);
    let table = &page[page.find("<section id=\"end-states\">").expect("section")..];
    let table = &table[..table.find("</section>").expect("end")];
    let rows: Vec<&str> = table.matches("<tr><td>").collect();
    assert_eq!(rows.len(), summary.end_states.len());
    assert_eq!(summary.end_states.len(), 4);
    for row in &summary.end_states {
        let cells = format!(
            ">{}</span></td><td class=\"num\">{}</td><td class=\"mono\">{}</td>",
            row.state, row.count, row.server
        );
        assert!(table.contains(&cells), "{cells}");
    }
}

#[test]
fn capture_names_are_escaped() {
    let dir = std::env::temp_dir().join(format!("closewait-report-esc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let evil = dir.join("<b>&\"x'.pcap");
    std::fs::copy(capture("02-server-idle-close-client-leak.pcap"), &evil).expect("copy");
    let out = Command::cargo_bin("closewait")
        .expect("binary")
        .arg("report")
        .arg(&evil)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(!page.contains("<b>"), "raw markup from the file name");
    assert!(page.contains("&lt;b&gt;&amp;&quot;x&#39;.pcap"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stdin_and_output_file() {
    let dir = std::env::temp_dir().join(format!("closewait-report-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let target = dir.join("r.html");
    let bytes = std::fs::read(capture("02-server-idle-close-client-leak.pcap")).expect("read");
    Command::cargo_bin("closewait")
        .expect("binary")
        .args(["report", "-", "-o"])
        .arg(&target)
        .write_stdin(bytes)
        .assert()
        .success()
        .stdout("");
    let page = std::fs::read_to_string(&target).expect("written");
    assert!(page.contains("<title>closewait report: -</title>"));
    assert!(page.contains("<span class=\"mono\">-</span>: pcap"));
    assert!(page.contains("close_wait_leak"));
    assert_eq!(
        std::fs::read_dir(&dir).expect("list").count(),
        1,
        "no temp left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refuses_to_overwrite_the_capture_and_reports_unreadable_input() {
    let out = Command::cargo_bin("closewait")
        .expect("binary")
        .current_dir(root())
        .args([
            "report",
            "captures/01-client-closes-first.pcap",
            "-o",
            "./captures/01-client-closes-first.pcap",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("refusing to write the output over an input capture"));
    let out = Command::cargo_bin("closewait")
        .expect("binary")
        .args(["report", "/nonexistent/x.pcap"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn same_capture_same_bytes() {
    let a = report_of(&["captures/20-many-idle-timeouts.pcap"]);
    let b = report_of(&["captures/20-many-idle-timeouts.pcap"]);
    assert_eq!(a, b);
}
