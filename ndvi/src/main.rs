//! `ndvi`: NDVI and NDVI differences of Sentinel-2 scenes as COGs — the CLI, the AWS Lambda
//! handler and the AWS Batch worker of the `ndvi` stage.

fn main() -> std::process::ExitCode {
    cloud::binary::main::<ndvi::stage::cli::Cli>()
}
