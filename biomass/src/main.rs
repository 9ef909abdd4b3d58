//! `biomass`: tree tops, watershed crowns and random-forest biomass from a canopy height model —
//! the CLI, the AWS Lambda handler and the AWS Batch worker of the `biomass` stage.

fn main() -> std::process::ExitCode {
    cloud::binary::main::<biomass::stage::cli::Cli>()
}
