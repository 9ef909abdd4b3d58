//! `lidar-partitioner`: the CLI, AWS Lambda handler and AWS Batch worker of the stage.

fn main() -> std::process::ExitCode {
    cloud::binary::main::<lidar_partitioner::stage::cli::Cli>()
}
