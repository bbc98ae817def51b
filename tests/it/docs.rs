//! Examples in docs/ are real output: each is regenerated here and compared, so the docs
//! cannot drift from the code.

use crate::support::cli::stdout_of;
use crate::support::paths::root;

/// The contents of the first fenced block of `lang` after `heading` in a docs page.
fn fenced_block(page: &str, heading: &str, lang: &str) -> String {
    let text = std::fs::read_to_string(root().join(page)).unwrap();
    let at = text
        .find(heading)
        .unwrap_or_else(|| panic!("{page}: no {heading}"));
    let rest = &text[at..];
    let open = format!("```{lang}\n");
    let start = rest.find(&open).unwrap() + open.len();
    let len = rest[start..].find("\n```").unwrap();
    rest[start..start + len].to_string()
}

fn run(args: &[&str]) -> String {
    stdout_of(args)
}

#[test]
fn json_md_example_is_current_output() {
    let documented = fenced_block("docs/json.md", "## Example: `analyze --json`", "json");
    let actual = run(&[
        "analyze",
        "captures/02-server-idle-close-client-leak.pcap",
        "--json",
    ]);
    assert_eq!(
        documented.trim_end(),
        actual.trim_end(),
        "docs/json.md's example is stale: regenerate it with the command it shows"
    );
}
