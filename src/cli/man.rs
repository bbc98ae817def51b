//! `closewait man`: the manual page in roff, generated from the same clap definition as
//! `--help` (so the two never disagree): the main page on standard output for
//! `man -l -`, or with `--out DIR` one page per command (`closewait.1`,
//! `closewait-analyze.1`, …) for a `man1` directory.

use crate::cli::output::write_output;
use crate::cli::Cli;
use anyhow::Context;
use clap::CommandFactory;
use std::path::PathBuf;

/// Print the manual page in roff (`closewait man | man -l -`), or write one page per
/// command into a directory.
#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write closewait.1 and one closewait-COMMAND.1 per command into this directory
    /// (created if missing) instead of the main page to standard output.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs `closewait man`.
pub fn run(args: &ManArgs) -> anyhow::Result<i32> {
    let cmd = Cli::command();
    match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: creating the directory", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("{}: writing the manual pages", dir.display()))?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            write_output(None, &page)?;
        }
    }
    Ok(0)
}
