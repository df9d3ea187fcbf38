//! `slotguard validate`: checks the traces that `slotguard node --trace` recorded against the
//! model (specs/protocol.md §12); the work is the library's (`slotguard::trace::validate`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use slotguard::trace::validate;

/// Arguments of `slotguard validate`.
#[derive(Args, Debug)]
pub(crate) struct ValidateArgs {
    /// A directory of traces (every `*.trace` file in it, one per node), or trace files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Runs `slotguard validate`: 0 if the traces are valid, 1 if not (the first divergence or
/// violation is printed), 2 if they cannot be read.
pub(crate) fn run(args: &ValidateArgs) -> Result<ExitCode> {
    let report = match args.paths.as_slice() {
        [dir] if dir.is_dir() => validate::validate_dir(dir)?,
        files => validate::validate_files(files)?,
    };
    print!("{report}");
    Ok(match report.failure {
        None => ExitCode::SUCCESS,
        Some(_) => ExitCode::from(1),
    })
}
