//! Minimal binary for the probe branch: `ctwatch check ...` (the lead's main.rs replaces it).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ctwatch", version, about = "Certificate Transparency monitor")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check what TLS certificate each host serves; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 error.
    Check(ctwatch::probe::cli::CheckArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => ctwatch::probe::cli::run(args).await,
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(ctwatch::probe::cli::EXIT_TOOL_FAILURE)
        }
    }
}
