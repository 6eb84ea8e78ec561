//! `flamingock`: status, history, fix and lock on any Flamingock audit store, without the
//! program's change units. See `flamingock --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    flamingock::cli::standalone_main()
}
