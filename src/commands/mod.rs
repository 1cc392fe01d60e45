//! One file per command group. Each command resolves its settings, calls the
//! core through the `Workspace` trait, and hands a serde value to the printer.

use crate::cli::{Cli, Command};
use crate::error::{UserError, exit, exit_code_of};
use crate::output::{Printer, Verbosity};
use clap::Parser;

/// Parse argv, run the command, print errors; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            return code;
        }
    };
    let printer = printer_for(&cli);
    match dispatch(cli, &printer) {
        Ok(code) => code,
        Err(err) => {
            let (code, hint) = exit_code_of(&err);
            printer.error(format!("{err:#}"), hint.as_deref());
            code
        }
    }
}

fn printer_for(cli: &Cli) -> Printer {
    let g = &cli.global;
    let verbosity = if g.debug {
        Verbosity::Debug
    } else if g.verbose {
        Verbosity::Verbose
    } else if g.only_show_errors {
        Verbosity::ErrorsOnly
    } else {
        Verbosity::Normal
    };
    Printer {
        format: g.output,
        query: g.query.clone(),
        verbosity,
        metadata_file: None,
    }
}

fn dispatch(cli: Cli, _printer: &Printer) -> anyhow::Result<i32> {
    match cli.command {
        Command::Folder(_) => Err(UserError::not_available("folder attach").into()),
    }
}
