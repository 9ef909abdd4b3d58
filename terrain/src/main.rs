//! `terrain`: terrain models from LiDAR as a CLI, AWS Lambda handler and AWS Batch worker.

fn main() -> std::process::ExitCode {
    cloud::binary::main::<terrain::stage::cli::TerrainCli>()
}
