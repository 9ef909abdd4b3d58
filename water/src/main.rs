//! The `water` binary: CLI (`water et0`, `water run`), AWS Lambda handler and Batch worker.
fn main() -> std::process::ExitCode {
    cloud::binary::main::<water::stage::cli::Cli>()
}
