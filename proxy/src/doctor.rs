//! `proxy doctor`: checks that nodes speak the API, before the lesson.

use std::process::ExitCode;

/// The doctor's flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Check every node of this config.
    #[arg(short = 'c', long)]
    pub config: Option<std::path::PathBuf>,
    /// Check one node by its URL.
    #[arg(long)]
    pub node: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn main(_args: Args) -> ExitCode {
    eprintln!("doctor: not built yet");
    ExitCode::from(2)
}
