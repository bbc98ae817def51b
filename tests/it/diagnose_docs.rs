//! docs/diagnose.md shows `closewait diagnose` on shipped captures; this test re-runs each
//! example and fails when the page no longer shows the real output. After a deliberate
//! change of the output, regenerate the blocks (each follows an `<!-- output: FILE -->`
//! marker) from the command's output.

use closewait::diagnose_cmd::{run_to, DiagnoseArgs};
use std::path::Path;

#[test]
fn docs_show_the_real_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/diagnose.md")).expect("docs/diagnose.md");
    let mut checked = 0;
    for (i, _) in page.match_indices("<!-- output: ") {
        let rest = &page[i + "<!-- output: ".len()..];
        let name = &rest[..rest.find(" -->").expect("marker ends")];
        let block_start = rest.find("```text\n").expect("a text block follows") + 8;
        let block = &rest[block_start..];
        let block = &block[..block.find("```\n").expect("block ends")];
        let (command, shown) = block.split_once('\n').expect("command line");
        assert_eq!(command, format!("$ closewait diagnose captures/{name}"));

        let args = DiagnoseArgs::for_files(&[root.join("captures").join(name)]);
        let mut out = Vec::new();
        run_to(&args, &mut out).expect("runs");
        let real = String::from_utf8(out).expect("UTF-8");
        assert_eq!(shown, real, "docs/diagnose.md, output of {name}");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} examples found");
}
