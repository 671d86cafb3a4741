//! `lastwill man`: the manual page, generated from the clap definitions.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory as _;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Read it with `lastwill man | man -l -`; install the pages with \
    `lastwill man --dir ~/.local/share/man/man1`."
)]
pub struct Args {
    /// Write lastwill.1 and one page per subcommand (lastwill-run.1, ...) into this folder
    /// instead of printing lastwill.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let command = super::Cli::command();
    match args.dir {
        Some(dir) => match clap_mangen::generate_to(command, &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => super::usage_error(format!("{}: {error}", dir.display())),
        },
        None => {
            let mut page = Vec::new();
            if let Err(error) = clap_mangen::Man::new(command).render(&mut page) {
                return super::usage_error(error);
            }
            super::print(String::from_utf8_lossy(&page).trim_end());
            ExitCode::SUCCESS
        }
    }
}
