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

/// Runs `closewait ARGS` with standard input and output a pseudo-terminal (util-linux's
/// `script`), as from an interactive shell; `None` where `script` is not installed. Its
/// stdout is what the terminal showed (stdout and stderr together).
pub fn on_a_terminal(args: &[&str]) -> Option<std::process::Output> {
    let binary = assert_cmd::cargo::cargo_bin("closewait");
    let mut line = format!("'{}'", binary.display());
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    // `script`'s own input stays open until the command is done: at the end of its input
    // `script` may hang up the terminal, and a command still running (a loaded machine)
    // would die of SIGHUP instead of exiting with its own status.
    let spawned = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = spawned else {
        eprintln!("script not installed: the terminal case is not checked");
        return None;
    };
    let input = child.stdin.take();
    let out = child.wait_with_output().expect("script runs");
    drop(input);
    Some(out)
}
