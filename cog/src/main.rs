//! `cog`: GeoTIFF/COG info, windowed reads and conversion; also the `translate` stage as
//! AWS Lambda handler and Batch worker.

fn main() -> std::process::ExitCode {
    cloud::binary::main::<cog::stage::cli::CogCli>()
}
