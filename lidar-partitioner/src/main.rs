//! `lidar-partitioner`: the CLI, AWS Lambda handler and AWS Batch worker of the stage.

fn main() -> std::process::ExitCode {
    cloud::entry::main::<lidar_partitioner::PartitionStage>()
}
