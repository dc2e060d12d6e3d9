//! `sinhtrac`: the command line of the sinhtrac biometric engine.
use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.global.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sinhtrac: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
