//! `closewait completions SHELL`: the shell's completion script on standard output,
//! generated from the same clap definition as `--help`, so a new option or subcommand is
//! completed without anyone editing a script.

use crate::cli::output::write_output;
use crate::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;

/// Print a shell completion script (bash, zsh, fish, elvish, powershell).
#[derive(clap::Args, Debug)]
#[command(after_help = "Install, for example:\n  \
    closewait completions bash > ~/.local/share/bash-completion/completions/closewait\n  \
    closewait completions zsh > ~/.zfunc/_closewait   (with fpath+=~/.zfunc)\n  \
    closewait completions fish > ~/.config/fish/completions/closewait.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// Runs `closewait completions`: writes the script to standard output.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "closewait", &mut script);
    write_output(None, &script)?;
    Ok(0)
}
