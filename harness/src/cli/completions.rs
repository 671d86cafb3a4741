//! `lastwill completions SHELL`: a completion script for the shell, generated from the clap
//! definitions of every subcommand and flag (so it never falls behind them).

use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
#[command(after_help = "Install, for example:\n  \
    bash: lastwill completions bash > ~/.local/share/bash-completion/completions/lastwill\n  \
    zsh:  lastwill completions zsh > ~/.zfunc/_lastwill   (with fpath+=~/.zfunc before compinit)\n  \
    fish: lastwill completions fish > ~/.config/fish/completions/lastwill.fish")]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut super::Cli::command(),
        "lastwill",
        &mut script,
    );
    super::print(String::from_utf8_lossy(&script).trim_end());
    ExitCode::SUCCESS
}
