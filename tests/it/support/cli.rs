//! The `closewait` binary as the tests run it: from the repository root, so the relative
//! capture paths the docs show (`captures/…`) work as written.

use assert_cmd::Command;
use std::ffi::OsStr;

use super::paths::root;

/// The built binary, run from the repository root.
pub fn closewait() -> Command {
    let mut cmd = Command::cargo_bin("closewait").expect("binary built");
    cmd.current_dir(root());
    cmd
}

/// Runs `closewait ARGS`, asserts it succeeded (showing its stderr when not) and returns
/// its standard output.
pub fn stdout_of<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<S> = args.into_iter().collect();
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    let out = closewait().args(&args).output().expect("runs");
    assert!(
        out.status.success(),
        "closewait {shown:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}
