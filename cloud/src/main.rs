//! `cloud`: storage utilities, and the `copy` stage as CLI, Lambda handler and Batch worker.

fn main() -> std::process::ExitCode {
    cloud::entry::main::<cloud::copy::CopyStage>()
}
