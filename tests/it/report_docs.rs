//! docs/report.md shows `closewait netstat` on the shipped samples; this test re-runs each
//! example and fails when the page no longer shows the real output. Each block follows a
//! `<!-- netstat: ARGS -->` marker; after a deliberate change of the output, regenerate
//! the blocks from the command's output.

use closewait::netstat_cmd::{run_to, NetstatArgs};
use std::path::Path;

#[test]
fn docs_show_the_real_netstat_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/report.md")).expect("docs/report.md");
    let mut checked = 0;
    for (i, _) in page.match_indices("<!-- netstat: ") {
        let rest = &page[i + "<!-- netstat: ".len()..];
        let args = &rest[..rest.find(" -->").expect("marker ends")];
        let fence = rest.find("```").expect("a block follows");
        let block = &rest[fence..];
        let block = &block[block.find('\n').expect("fence line") + 1..];
        let block = &block[..block.find("```").expect("block ends")];
        let (command, shown) = block.split_once('\n').expect("command line");
        assert_eq!(command, format!("$ closewait netstat {args}"));

        let json = args.split_whitespace().any(|a| a == "--json");
        let words: Vec<&str> = args.split_whitespace().collect();
        let state = words
            .iter()
            .position(|a| *a == "--state")
            .map(|i| words[i + 1].parse().expect("a state"));
        let file = words.last().expect("a file");
        let netstat = NetstatArgs {
            input: root.join(file),
            json,
            state,
            fail_on: None,
        };
        let mut out = Vec::new();
        run_to(&netstat, &mut out).expect("runs");
        let real = String::from_utf8(out).expect("UTF-8");
        assert_eq!(shown, real, "docs/report.md, closewait netstat {args}");
        checked += 1;
    }
    assert_eq!(checked, 5, "examples found");
}
