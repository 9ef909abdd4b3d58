//! `geobutton`: run the geobutton pipelines locally, on AWS Lambda or on AWS Batch.
//!
//! ```text
//! geobutton demo [-o DIR]
//! geobutton run <lidar|ndvi|water|biomass> --input URI... --output URI
//!               [--executor local|lambda|batch|STEP=KIND,…] [--concurrency N] [--memory MB] [options]
//! geobutton status OUTPUT
//! geobutton report OUTPUT [--png DIR]
//! geobutton deploy --dry-run|--apply --bucket B [...]
//! ```

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cloud::{ProgressMode, Store};
use driver::exec::batch::{BatchConfig, BatchExecutor};
use driver::exec::lambda::{LambdaConfig, LambdaExecutor};
use driver::exec::local::LocalExecutor;
use driver::exec::mix::{ExecutorMix, ExecutorSpec};
use driver::exec::throttle::ThrottlePolicy;
use driver::exec::{Executor, RetryPolicy, seconds};
use driver::pipeline::Pipeline;
use driver::pipeline::biomass::BiomassPipeline;
use driver::pipeline::lidar::LidarPipeline;
use driver::pipeline::ndvi::{NdviInput, NdviPipeline};
use driver::pipeline::water::WaterPipeline;
use driver::run::{RunConfig, RunSummary};
use driver::{DriverError, StageKind};

#[derive(Parser, Debug)]
#[command(
    name = "geobutton",
    version,
    about = "geobutton pipelines on one machine, AWS Lambda or AWS Batch"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make a synthetic scene in DIR and run every pipeline on it locally.
    Demo {
        /// Output folder (the scene and every run go there).
        #[arg(short, long, default_value = "geobutton-demo")]
        output: String,
        /// Tasks run at once (0: one per core).
        #[arg(long, default_value_t = 0)]
        concurrency: usize,
    },
    /// Run a pipeline.
    Run {
        #[command(subcommand)]
        pipeline: PipelineCommand,
    },
    /// Task states of a run (from its status objects).
    Status {
        output: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild report.json and the figures of a run.
    Report {
        output: String,
        /// Folder for timeline.png and durations.png (default OUTPUT/report).
        #[arg(long)]
        png: Option<String>,
    },
    /// Create the S3 layout, Lambda functions and Batch job definitions.
    Deploy(DeployArgs),
    /// Remove what `geobutton deploy` made (resources tagged made-by=geobutton-deploy):
    /// functions, job queue, compute environment, job definitions, roles, the layout's
    /// README (and with --delete-data everything under the prefix). The bucket stays.
    Undeploy(UndeployArgs),
}

/// What `deploy` and `undeploy` act on, and whether they act.
#[derive(Args, Debug)]
struct DeployTarget {
    /// Print what would be done; do nothing.
    #[arg(long, conflicts_with = "apply", required_unless_present = "apply")]
    dry_run: bool,
    /// Do it.
    #[arg(long)]
    apply: bool,
    #[arg(long)]
    bucket: String,
    /// Key prefix of the layout in the bucket.
    #[arg(long, default_value = "geobutton")]
    prefix: String,
    #[arg(long)]
    region: Option<String>,
    /// Endpoint for S3, Lambda, Batch and IAM (emulators).
    #[arg(long)]
    endpoint: Option<String>,
}

#[derive(Args, Debug)]
struct UndeployArgs {
    #[command(flatten)]
    target: DeployTarget,
    /// Also delete every object under s3://BUCKET/PREFIX/ (inputs and runs).
    #[arg(long)]
    delete_data: bool,
    #[arg(long, default_value = "geobutton-fargate")]
    compute_environment: String,
    #[arg(long, default_value = "geobutton")]
    job_queue: String,
}

/// `--mosaic`: how tile products are assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MosaicArg {
    /// One COG per product, written by bands of rows (memory independent of its height).
    Cog,
    /// A GDAL VRT per product over the tile COGs (no copy).
    Vrt,
    /// No mosaic: the tiles are the products.
    None,
}

impl MosaicArg {
    fn format(self) -> Option<terrain::stage::MosaicFormat> {
        match self {
            MosaicArg::Cog => Some(terrain::stage::MosaicFormat::Cog),
            MosaicArg::Vrt => Some(terrain::stage::MosaicFormat::Vrt),
            MosaicArg::None => None,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Inputs: files or URIs; for the lidar and water pipelines also folders and S3 prefixes
    /// (their .las/.laz or .tif/.asc files), globs (`tiles/*.laz`,
    /// `s3://bucket/pnoa/**/*.laz`) and `@list.txt` (one of these per line). Required but
    /// by `ndvi --before/--after` (scenes found by a STAC search).
    #[arg(long = "input", short = 'i', num_args = 1..)]
    inputs: Vec<String>,
    /// Output location (directory or s3:// prefix).
    #[arg(long, short = 'o')]
    output: String,
    /// Where the tasks run: local, lambda or batch for every step, or per step
    /// (`preprocess=batch,windows=lambda`; a kind without a step for the steps not named,
    /// else local).
    #[arg(long, default_value = "local")]
    executor: String,
    /// Tasks running at once (local: 0 = one per core; lambda: invocations in flight, at
    /// most the account's unreserved concurrency, lowered while Lambda throttles).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Lambda: longest a task waits on throttling (429) in all before it fails, seconds.
    #[arg(long, default_value_t = 1800.0)]
    throttle_wait: f64,
    /// Memory per task, MB (Lambda function size; Batch container override).
    #[arg(long)]
    memory: Option<u32>,
    /// Memory for retries, MB.
    #[arg(long)]
    retry_memory: Option<u32>,
    /// Attempts per task (1 = no retries).
    #[arg(long, default_value_t = 3)]
    attempts: u32,
    /// A task still running after this many seconds fails (default: 900 on Lambda and
    /// Batch, 21600 locally, where it stops at its next read or write).
    #[arg(long)]
    timeout: Option<f64>,
    /// Run every task again, even those finished by an earlier run.
    #[arg(long)]
    force: bool,
    /// Print the plan (tasks to run or skip and why, inputs, estimated cost) and stop,
    /// touching nothing.
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: predict the wall time and cost of the tasks to run on N concurrent
    /// Lambda functions (per-task times from earlier runs of the tasks, else of their step,
    /// else typical figures; or --task-seconds).
    #[arg(long, requires = "dry_run")]
    lambdas: Option<usize>,
    /// With --lambdas: seconds of task time by step, measured elsewhere
    /// (`partition=4.2,terrain=9`), in place of the plan's estimates.
    #[arg(long, value_delimiter = ',', requires = "lambdas")]
    task_seconds: Vec<String>,
    /// With --lambdas: seconds each invocation adds to its task (round trip, cold starts).
    #[arg(long, default_value_t = 0.2, requires = "lambdas")]
    invocation_overhead: f64,
    /// Print errors only.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Folder for the figures (default OUTPUT/report).
    #[arg(long)]
    png: Option<String>,
    /// Lambda function name template.
    #[arg(long, default_value = driver::exec::lambda::DEFAULT_FUNCTION_TEMPLATE)]
    function_template: String,
    /// Lambda API endpoint (default from the AWS environment).
    #[arg(long)]
    lambda_endpoint: Option<String>,
    /// Lambda architecture (pricing): x86_64 or arm64.
    #[arg(long, default_value = "x86_64")]
    arch: String,
    /// Batch job queue.
    #[arg(long, default_value = "geobutton")]
    job_queue: String,
    /// Batch job definition template.
    #[arg(long, default_value = driver::exec::batch::DEFAULT_DEFINITION_TEMPLATE)]
    job_definition: String,
    /// Batch API endpoint (default from the AWS environment).
    #[arg(long)]
    batch_endpoint: Option<String>,
    /// vCPUs of the Batch job definitions (cost estimate).
    #[arg(long, default_value_t = 1.0)]
    vcpus: f32,
    /// Seconds between DescribeJobs calls.
    #[arg(long, default_value_t = 10.0)]
    poll_interval: f64,
}

#[derive(Subcommand, Debug)]
enum PipelineCommand {
    /// LAS/LAZ → partitions → terrain models per partition → mosaics.
    Lidar {
        #[command(flatten)]
        common: Common,
        /// Core points per partition tile.
        #[arg(long)]
        capacity: Option<u64>,
        /// Target size of a partition tile's core points, MB (when no --capacity).
        #[arg(long, default_value_t = 50.0)]
        target_mb: f64,
        /// Buffer around each partition tile, m (default: what the models reach, 2·SMRF
        /// window + 3 cells + 2 cells: 37 m at 1 m).
        #[arg(long)]
        buffer: Option<f64>,
        /// Partition each input alone, without the points of neighbouring inputs in its
        /// buffers (seams along file borders).
        #[arg(long)]
        no_neighbours: bool,
        /// Partition only (the seed's LiDAR run): the partition tiles and their manifests
        /// are the products; no terrain models, no mosaics.
        #[arg(long)]
        partition_only: bool,
        /// Raster resolution, m.
        #[arg(long, default_value_t = 1.0)]
        resolution: f64,
        /// Products.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "dem,dsm,chm,fcc,slope,aspect"
        )]
        products: Vec<String>,
        /// EPSG of the coordinates when the files record no CRS.
        #[arg(long)]
        epsg: Option<u32>,
        /// How each product's tiles are assembled: cog, vrt or none.
        #[arg(long, value_enum, default_value_t = MosaicArg::Cog)]
        mosaic: MosaicArg,
    },
    /// Two dates of red/NIR bands → NDVI windows → merge.
    Ndvi {
        #[command(flatten)]
        common: Common,
        /// How --input is read: bands = BEFORE_B04 BEFORE_B08 AFTER_B04 AFTER_B08; scenes =
        /// BEFORE AFTER as dates (with --mgrs), scene ids or STAC items.
        #[arg(long, value_enum, default_value_t = NdviInputKind::Bands)]
        input_kind: NdviInputKind,
        /// MGRS tile (scenes given by date).
        #[arg(long)]
        mgrs: Option<String>,
        /// Archive root in the sentinel-cogs layout.
        #[arg(long, default_value = ndvi::scene::SENTINEL_COGS_ROOT)]
        root: String,
        /// DN offset of the bands (−1000 for processing baseline 04.00).
        #[arg(long, allow_hyphen_values = true, default_value_t = 0.0)]
        offset_dn: f64,
        /// Window (task) size, px.
        #[arg(long, default_value_t = 1024)]
        window: u64,
        /// Block size of the product COGs.
        #[arg(long, default_value_t = 512)]
        blocksize: u32,
        /// No PNG quicklook.
        #[arg(long)]
        no_quicklook: bool,
        /// Search: the period of the earlier scenes, YYYY-MM-DD/YYYY-MM-DD (with --after, and
        /// --bbox or --mgrs T1,T2,…): the least-cloudy scene of each tile in each period.
        #[arg(long, requires = "after")]
        before: Option<String>,
        /// Search: the period of the later scenes.
        #[arg(long, requires = "before")]
        after: Option<String>,
        /// Search: the area, W,S,E,N in degrees (WGS 84), at most 10° a side.
        #[arg(long, allow_hyphen_values = true, conflicts_with = "mgrs")]
        bbox: Option<String>,
        /// Search: the most cloud cover accepted, percent.
        #[arg(long, default_value_t = 20.0)]
        max_cloud: f64,
        /// Search: the STAC API.
        #[arg(long, default_value = ndvi::search::EARTH_SEARCH)]
        stac: String,
        /// Search and --preprocess: do not mask cloud, shadow and cirrus with the SCL band.
        #[arg(long)]
        no_mask_scl: bool,
        /// --input BEFORE AFTER are Sentinel-2 products (`.SAFE` folders, local or on S3):
        /// a first step, `preprocess`, converts them to COGs in the sentinel-cogs layout
        /// (Level-1C through Sen2Cor's L2A_Process), the windows read those.
        #[arg(long, conflicts_with_all = ["before", "input_kind"])]
        preprocess: bool,
        /// --preprocess: where the COGs and STAC items go (default OUTPUT/archive).
        #[arg(long, requires = "preprocess")]
        archive: Option<String>,
        /// --preprocess: convert Level-1C top-of-atmosphere bands when Sen2Cor is not
        /// installed (no atmospheric correction, no SCL).
        #[arg(long, requires = "preprocess")]
        allow_l1c: bool,
        /// --preprocess: Sen2Cor's L2A_Process, when it is not on PATH.
        #[arg(long, requires = "preprocess")]
        sen2cor: Option<String>,
    },
    /// DTM tiles + stations (+ plots) → ET0/ETc per tile → mosaics and per-plot water use.
    Water {
        #[command(flatten)]
        common: Common,
        /// Station table; over a season, one per day with `{date}` in its name
        /// (`siam/{date}.csv`), or one table with a `date` column.
        #[arg(long)]
        stations: String,
        /// Day (YYYY-MM-DD).
        #[arg(long, required_unless_present = "dates", conflicts_with = "dates")]
        date: Option<String>,
        /// A season, FIRST/LAST (YYYY-MM-DD/YYYY-MM-DD, at most 366 days): a task per tile
        /// per day, then each tile's days added up (`et0_season.tif`, `plots_season.csv`).
        #[arg(long)]
        dates: Option<String>,
        /// An NDVI product (e.g. an `ndvi` run's `ndvi_after.tif`, in the plots' CRS): the
        /// per-plot table gains the plot's mean NDVI and its irrigated area (with --plots).
        #[arg(long, requires = "plots")]
        ndvi: Option<String>,
        /// NDVI above which a pixel (and a plot, by its mean) counts as irrigated.
        #[arg(
            long,
            default_value_t = 0.4,
            requires = "ndvi",
            allow_hyphen_values = true
        )]
        irrigated_ndvi: f64,
        /// Plots (GeoJSON or shapefile) with `uso_sigpac`.
        #[arg(long)]
        plots: Option<String>,
        /// Kc overrides CSV.
        #[arg(long)]
        kc: Option<String>,
        /// Windows per side of a tile.
        #[arg(long, default_value_t = 3)]
        windows: u32,
        /// EPSG assumed for DTMs without a CRS.
        #[arg(long, default_value_t = 25830)]
        dtm_epsg: u32,
        /// How the tiles' ET0/ETc are assembled (two tiles or more): cog, vrt or none.
        #[arg(long, value_enum, default_value_t = MosaicArg::Cog)]
        mosaic: MosaicArg,
    },
    /// CHM → chunks → merge: tree tops, crowns, biomass.
    Biomass {
        #[command(flatten)]
        common: Common,
        /// Training CSV (headerless: biomass kg, then the 11 predictors).
        #[arg(long)]
        training: Option<String>,
        /// A fitted model.json instead of training.
        #[arg(long, conflicts_with = "training")]
        model: Option<String>,
        /// Chunks per side.
        #[arg(long, default_value_t = 2)]
        chunks: usize,
        /// Watershed halo of each chunk, px.
        #[arg(long, default_value_t = biomass::workflow::DEFAULT_HALO)]
        halo: usize,
        /// No PNG maps.
        #[arg(long)]
        no_maps: bool,
    },
}

impl PipelineCommand {
    fn common(&self) -> &Common {
        match self {
            PipelineCommand::Lidar { common, .. }
            | PipelineCommand::Ndvi { common, .. }
            | PipelineCommand::Water { common, .. }
            | PipelineCommand::Biomass { common, .. } => common,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NdviInputKind {
    Bands,
    Scenes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlatformArg {
    Fargate,
    Ec2,
}

#[derive(Args, Debug)]
struct DeployArgs {
    #[command(flatten)]
    target: DeployTarget,
    /// The bucket exists already (made by hand, or another team's): do not create it.
    #[arg(long)]
    existing_bucket: bool,
    /// Memory sizes of the Lambda functions, MB.
    #[arg(long, value_delimiter = ',', default_value = "2048")]
    memory: Vec<u32>,
    /// Deploy arm64 zips (`cargo lambda build --release --arm64 --output-format zip`).
    #[arg(long)]
    arm64: bool,
    /// Folder of the zips (`<stage>/bootstrap.zip`).
    #[arg(long, default_value = "target/lambda")]
    zips: std::path::PathBuf,
    /// Execution role of the functions (no role: no functions).
    #[arg(long)]
    lambda_role: Option<String>,
    /// Container image with the stage binaries (no image: no job definitions).
    #[arg(long)]
    batch_image: Option<String>,
    #[arg(long)]
    batch_job_role: Option<String>,
    #[arg(long)]
    batch_execution_role: Option<String>,
    #[arg(long, default_value_t = 1.0)]
    batch_vcpus: f32,
    #[arg(long, default_value_t = 4096)]
    batch_memory: u32,
    /// What the Batch containers run on: fargate (its vCPU/memory pairs, an execution role)
    /// or ec2 (a compute environment and queue of your own, named with --job-queue).
    #[arg(long, value_enum, default_value = "fargate")]
    batch_platform: PlatformArg,
    /// Subnets of the Fargate compute environment to create with the job queue (comma
    /// separated); without them, the default VPC's subnets and `default` security group.
    #[arg(long, value_delimiter = ',')]
    subnets: Vec<String>,
    /// The --job-queue exists, on a compute environment of your own: require it and create
    /// no compute environment.
    #[arg(long, conflicts_with_all = ["subnets", "security_groups"])]
    existing_job_queue: bool,
    /// Security groups of the Fargate containers (with --subnets).
    #[arg(long, value_delimiter = ',')]
    security_groups: Vec<String>,
    /// Fargate containers without a public IP (private subnets with a NAT gateway or VPC
    /// endpoints for ECR, S3 and logs).
    #[arg(long)]
    no_public_ip: bool,
    /// Compute environment created or adopted.
    #[arg(long, default_value = "geobutton-fargate")]
    compute_environment: String,
    /// Job queue created, adopted or required (the `batch` executor's --job-queue).
    #[arg(long, default_value = "geobutton")]
    job_queue: String,
    /// Most vCPUs the compute environment runs at once.
    #[arg(long, default_value_t = 256)]
    max_vcpus: u32,
    /// Service role of the compute environment (default: AWS's service-linked role
    /// AWSServiceRoleForBatch).
    #[arg(long)]
    batch_service_role: Option<String>,
    /// Create (or update) the roles geobutton-lambda, geobutton-batch-job and
    /// geobutton-batch-execution with their trust and least-privilege permissions, and use
    /// them where no role ARN is given.
    #[arg(long)]
    create_roles: bool,
    /// Where the roles may write, s3://bucket/prefix (repeatable; default: the layout,
    /// s3://BUCKET/PREFIX).
    #[arg(long = "output-prefix")]
    output_prefixes: Vec<String>,
    /// Buckets the roles may read (repeatable), e.g. a requester-pays copy of CNIG data.
    #[arg(long = "input-bucket")]
    input_buckets: Vec<String>,
    /// Also print the IAM policies (trust and permissions).
    #[arg(long)]
    iam: bool,
}

/// The executors of `c.executor`: one kind, or a kind per step.
fn executor(c: &Common) -> Result<(ExecutorSpec, Box<dyn Executor>)> {
    let spec = ExecutorSpec::parse(&c.executor)?;
    let mut mix = ExecutorMix::new(executor_of_kind(c, &spec.default)?);
    for (step, kind) in &spec.steps {
        mix = mix.with_step(step, executor_of_kind(c, kind)?);
    }
    Ok((spec, Box::new(mix)))
}

/// An executor of kind `kind` (`local`, `lambda`, `batch`) with the settings of `c`.
fn executor_of_kind(c: &Common, kind: &str) -> Result<Box<dyn Executor>> {
    let retry = RetryPolicy {
        max_attempts: c.attempts.max(1),
        retry_memory_mb: c.retry_memory,
    };
    if let Some(t) = c.timeout
        && !(t.is_finite() && t > 0.0 && t <= 7.0 * 86_400.0)
    {
        bail!("--timeout must be a number of seconds in (0, 604800], not {t}");
    }
    if !(c.throttle_wait.is_finite() && (0.0..=86_400.0).contains(&c.throttle_wait)) {
        bail!(
            "--throttle-wait must be a number of seconds in [0, 86400], not {}",
            c.throttle_wait
        );
    }
    let timeout = |default: f64| seconds(c.timeout.unwrap_or(default));
    Ok(match kind {
        "local" => Box::new(LocalExecutor {
            concurrency: c.concurrency.unwrap_or(0),
            retry,
            timeout: Some(timeout(21_600.0)),
        }),
        "lambda" => Box::new(LambdaExecutor::new(LambdaConfig {
            function_template: c.function_template.clone(),
            memory_mb: c.memory.unwrap_or(2048),
            concurrency: c.concurrency.unwrap_or(64),
            deadline: timeout(900.0),
            retry,
            throttle: ThrottlePolicy {
                max_wait: seconds(c.throttle_wait),
                ..ThrottlePolicy::default()
            },
            endpoint: c.lambda_endpoint.clone(),
            region: None,
            architecture: c.arch.clone(),
        })),
        "batch" => Box::new(BatchExecutor::new(BatchConfig {
            job_queue: c.job_queue.clone(),
            definition_template: c.job_definition.clone(),
            memory_mb: c.memory,
            vcpus: c.vcpus,
            deadline: timeout(900.0),
            retry,
            poll_interval: seconds(c.poll_interval),
            endpoint: c.batch_endpoint.clone(),
            region: None,
            on_submit: None,
        })),
        other => bail!("--executor: {other:?} is not an executor"),
    })
}

/// The inputs a pipeline reads: `--input` expanded (folders, prefixes, globs, `@lists`),
/// never anything under the run's output; says how many and how large.
fn expand_inputs(store: &Store, common: &Common, extensions: &[&str]) -> Result<Vec<String>> {
    let set = cloud::Expansion::new(extensions)
        .excluding(&common.output)
        .expand(store, &common.inputs)
        .context("--input")?;
    if !common.quiet {
        eprintln!("geobutton: {}", set.summary());
    }
    Ok(set.uris())
}

fn pipeline(cmd: PipelineCommand, store: &Store) -> Result<(Common, Box<dyn Pipeline>)> {
    let searching = matches!(
        &cmd,
        PipelineCommand::Ndvi {
            before: Some(_),
            ..
        }
    );
    if !searching && cmd.common().inputs.is_empty() {
        bail!("--input is required (files, folders, globs, S3 prefixes or @list.txt)");
    }
    Ok(match cmd {
        PipelineCommand::Lidar {
            common,
            capacity,
            target_mb,
            buffer,
            no_neighbours,
            partition_only,
            resolution,
            products,
            epsg,
            mosaic,
        } => {
            let inputs = expand_inputs(store, &common, &[".las", ".laz"])?;
            let mut p = LidarPipeline::new(inputs, &common.output);
            p.capacity = capacity;
            p.target_mb = Some(target_mb);
            p.neighbours = !no_neighbours;
            p.partition_only = partition_only;
            p.epsg = epsg;
            p.mosaic = mosaic.format();
            p.models.resolution = resolution;
            p.models.products = products
                .iter()
                .map(|s| terrain::Product::parse(s))
                .collect::<Result<_, _>>()
                .context("--products")?;
            p.buffer_m =
                buffer.unwrap_or_else(|| driver::pipeline::lidar::seamless_buffer(&p.models));
            (common, Box::new(p))
        }
        PipelineCommand::Ndvi {
            common,
            input_kind,
            mgrs,
            root,
            offset_dn,
            window,
            blocksize,
            no_quicklook,
            before,
            after,
            bbox,
            max_cloud,
            stac,
            no_mask_scl,
            preprocess,
            archive,
            allow_l1c,
            sen2cor,
        } => {
            let input = match (before, after) {
                _ if preprocess => {
                    let [before, after] = common.inputs.as_slice() else {
                        bail!("ndvi --preprocess: --input takes two products: BEFORE AFTER");
                    };
                    NdviInput::Products(driver::pipeline::ndvi::NdviProducts {
                        before: before.clone(),
                        after: after.clone(),
                        archive: archive
                            .unwrap_or_else(|| cloud::uri::join(&common.output, "archive")),
                        allow_l1c,
                        sen2cor,
                        out: common.output.clone(),
                        window,
                        blocksize,
                        quicklook: !no_quicklook,
                        mask_scl: !no_mask_scl,
                    })
                }
                (Some(before), Some(after)) => {
                    if !common.inputs.is_empty() {
                        bail!("ndvi: --before/--after search for the scenes: give no --input");
                    }
                    let area = match (&bbox, &mgrs) {
                        (Some(b), None) => ndvi::search::Area::bbox(b)?,
                        (None, Some(t)) => ndvi::search::Area::tiles(t)?,
                        _ => bail!("ndvi: a search needs --bbox W,S,E,N or --mgrs T1,T2,…"),
                    };
                    NdviInput::Search(driver::pipeline::ndvi::NdviSearch {
                        stac,
                        request: ndvi::search::SearchRequest {
                            collection: ndvi::search::COLLECTION.to_string(),
                            area,
                            before: before.parse()?,
                            after: after.parse()?,
                            max_cloud,
                        },
                        out: common.output.clone(),
                        window,
                        blocksize,
                        quicklook: !no_quicklook,
                        mask_scl: !no_mask_scl,
                    })
                }
                _ => match input_kind {
                    NdviInputKind::Bands => {
                        let [br, bn, ar, an] = common.inputs.as_slice() else {
                            bail!(
                                "ndvi: --input takes four bands: BEFORE_B04 BEFORE_B08 AFTER_B04 AFTER_B08 (or use --input-kind scenes)"
                            );
                        };
                        NdviInput::Bands {
                            before: ndvi::SceneBands::from_uris(br, bn, None, offset_dn),
                            after: ndvi::SceneBands::from_uris(ar, an, None, offset_dn),
                            out: common.output.clone(),
                            window,
                            blocksize,
                            quicklook: !no_quicklook,
                        }
                    }
                    NdviInputKind::Scenes => {
                        let [before, after] = common.inputs.as_slice() else {
                            bail!("ndvi: --input takes two scenes: BEFORE AFTER");
                        };
                        let offset = (offset_dn != 0.0).then_some(offset_dn);
                        NdviInput::Request(ndvi::TileRequest {
                            tile: mgrs.as_deref().map(str::parse).transpose()?,
                            before: before.parse()?,
                            after: after.parse()?,
                            root,
                            out: common.output.clone(),
                            window,
                            scl_mask: Vec::new(),
                            before_offset_dn: offset,
                            after_offset_dn: offset,
                            assets: Default::default(),
                            blocksize,
                            level: None,
                            quicklook: !no_quicklook,
                        })
                    }
                },
            };
            (common, Box::new(NdviPipeline::new(input)))
        }
        PipelineCommand::Water {
            common,
            stations,
            date,
            dates,
            ndvi,
            irrigated_ndvi,
            plots,
            kc,
            windows,
            dtm_epsg,
            mosaic,
        } => {
            let dates = dates
                .as_deref()
                .map(driver::pipeline::water::parse_dates)
                .transpose()?
                .unwrap_or_default();
            let date = match (&date, dates.first()) {
                (Some(d), _) => d.clone(),
                (None, Some(d)) => d.format("%Y-%m-%d").to_string(),
                (None, None) => bail!("water: give --date DAY or --dates FIRST/LAST"),
            };
            let template: water::Params = serde_json::from_value(serde_json::json!({
                "dtm": "", "stations": stations, "date": date, "plots": plots, "kc": kc,
                "out": "", "dtm_epsg": dtm_epsg, "options": { "windows": windows }
            }))
            .context("water parameters")?;
            let dtms = expand_inputs(store, &common, &[".tif", ".tiff", ".asc"])?;
            let mut p = WaterPipeline::new(dtms, template, &common.output);
            p.mosaic = mosaic.format();
            p.dates = dates;
            p.irrigation = ndvi.map(|ndvi| driver::pipeline::water::Irrigation {
                ndvi,
                threshold: irrigated_ndvi,
            });
            (common, Box::new(p))
        }
        PipelineCommand::Biomass {
            common,
            training,
            model,
            chunks,
            halo,
            no_maps,
        } => {
            let [chm] = common.inputs.as_slice() else {
                bail!("biomass: --input takes one CHM");
            };
            let run: biomass::RunParams = serde_json::from_value(serde_json::json!({
                "chm": chm, "training": training, "model": model, "out": common.output,
                "halo": halo, "maps": !no_maps,
            }))
            .context("biomass parameters")?;
            (common.clone(), Box::new(BiomassPipeline::new(run, chunks)))
        }
    })
}

fn print_products(s: &RunSummary) {
    for p in &s.results.products {
        println!("  {:<4} {}  ({})", p.kind, p.uri, p.description);
    }
    println!("  report {}", s.report_uri);
    for f in &s.report.figures {
        println!("  png  {f}");
    }
}

/// `--lambdas`, `--task-seconds`, `--invocation-overhead`, checked.
fn forecast_options(common: &Common) -> Result<driver::run::ForecastOptions> {
    let mut f = driver::run::ForecastOptions {
        lambdas: common.lambdas,
        overhead_s: common.invocation_overhead,
        ..Default::default()
    };
    if let Some(n) = common.lambdas
        && !(1..=1_000_000).contains(&n)
    {
        bail!("--lambdas {n}: 1 to 1,000,000");
    }
    if !(0.0..=900.0).contains(&f.overhead_s) {
        bail!("--invocation-overhead {}: 0 to 900 s", f.overhead_s);
    }
    for item in &common.task_seconds {
        let parsed = item
            .split_once('=')
            .and_then(|(step, v)| Some((step.trim(), v.trim().parse::<f64>().ok()?)));
        match parsed {
            Some((step, secs)) if !step.is_empty() && (0.0..=900.0).contains(&secs) => {
                f.task_seconds.insert(step.to_string(), secs);
            }
            _ => bail!("--task-seconds {item:?}: STEP=SECONDS, 0 to 900 s (a Lambda's limit)"),
        }
    }
    Ok(f)
}

fn run(cmd: PipelineCommand) -> Result<ExitCode> {
    let store = Store::try_from_env().map_err(anyhow::Error::msg)?;
    let (common, mut p) = pipeline(cmd, &store)?;
    let (spec, exec) = executor(&common)?;
    spec.check_steps(p.name(), &p.steps())?;
    if !spec.all_local() && !common.output.starts_with("s3://") {
        bail!(
            "the {} executor needs an s3:// output (and s3:// or https:// inputs): its tasks run on other machines",
            spec.kinds()
                .into_iter()
                .find(|k| *k != "local")
                .unwrap_or("remote")
        );
    }
    let mut config = RunConfig::new(&common.output);
    config.force = common.force;
    if common.quiet {
        config.progress = ProgressMode::Silent;
    }
    if common.dry_run {
        config.cost.lambda_architecture = common.arch.clone();
        config.forecast = forecast_options(&common)?;
        let steps = p.steps();
        if let Some(s) = config
            .forecast
            .task_seconds
            .keys()
            .find(|s| !steps.contains(&s.as_str()))
        {
            bail!(
                "--task-seconds: the {} pipeline has no step {s:?} (its steps: {})",
                p.name(),
                steps.join(", ")
            );
        }
        let plan = driver::run::plan_pipeline(p.as_mut(), exec.as_ref(), &store, &config)?;
        print!("{}", plan.summary_text());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(d) = &common.png {
        config.figures = Some(d.clone());
    }
    config.cost.lambda_architecture = common.arch.clone();
    match driver::run_pipeline(p.as_mut(), exec.as_ref(), &store, &config) {
        Ok(s) => {
            print!("{}", s.report.summary_text());
            print_products(&s);
            Ok(ExitCode::SUCCESS)
        }
        Err(DriverError::StepFailed { summary, .. }) => {
            eprintln!("geobutton: {summary}");
            eprintln!(
                "geobutton: report {}",
                cloud::uri::join(&common.output, driver::run::REPORT)
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn main() -> ExitCode {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let cli = Cli::parse();
    let quiet = match &cli.command {
        Command::Run { pipeline } => pipeline.common().quiet,
        _ => false,
    };
    // Warnings, and a progress line every few seconds when standard error is not a
    // terminal (a bar when it is); errors only with --quiet. Colour only on a terminal.
    let default = if quiet {
        "error"
    } else {
        "warn,cloud::progress=info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .compact()
        .try_init();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("geobutton: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let store = Store::try_from_env().map_err(anyhow::Error::msg)?;
    match cli.command {
        Command::Run { pipeline } => run(pipeline),
        Command::Demo {
            output,
            concurrency,
        } => {
            let exec = LocalExecutor {
                concurrency,
                retry: RetryPolicy::default(),
                timeout: None,
            };
            let clock = std::time::Instant::now();
            let demo = driver::demo::run_demo(&store, &output, &exec, ProgressMode::detect())?;
            println!(
                "geobutton demo: synthetic scene in {}/scene ({} LiDAR points, {} trees; two dates of Sentinel-2-shaped bands; stations, plots, training table)",
                output.trim_end_matches('/'),
                demo.scene.points,
                demo.scene.trees
            );
            for (name, s) in &demo.runs {
                println!("\n{name}: {}", s.report.summary_text().trim_end());
                print_products(s);
            }
            println!(
                "\nall pipelines finished in {:.1} s",
                clock.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { output, json } => {
            let (record, steps) = driver::run::status(&store, &output)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&steps)?);
            } else {
                println!(
                    "{} pipeline, {} executor, started {}{}",
                    record.pipeline,
                    record.executor,
                    record.start,
                    match (&record.failed_step, record.end) {
                        (Some(s), _) => format!(", failed in step {s}"),
                        (None, Some(e)) => format!(", finished {e}"),
                        (None, None) => ", not finished".to_string(),
                    }
                );
                for s in &steps {
                    println!(
                        "  {:<10} {:<18} {:>5} tasks {:>5} ok {:>5} error {:>5} pending",
                        s.step, s.stage, s.tasks, s.ok, s.error, s.pending
                    );
                    for (id, e) in s.errors.iter().take(10) {
                        println!("      {id}: {e}");
                    }
                }
            }
            let done = steps.iter().all(|s| s.error == 0 && s.pending == 0)
                && record.end.is_some()
                && record.failed_step.is_none();
            Ok(if done {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Report { output, png } => {
            let dir = png.unwrap_or_else(|| cloud::uri::join(&output, "report"));
            let report = driver::run::regenerate_report(&store, &output, Some(dir))?;
            print!("{}", report.summary_text());
            println!(
                "  report {}",
                cloud::uri::join(&output, driver::run::REPORT)
            );
            for f in &report.figures {
                println!("  png  {f}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Undeploy(a) => {
            let config = driver::deploy::DeployConfig {
                bucket: a.target.bucket.clone(),
                prefix: a.target.prefix.trim_matches('/').to_string(),
                region: a.target.region.clone(),
                endpoint: a.target.endpoint.clone(),
                batch_compute_environment: a.compute_environment.clone(),
                batch_job_queue: a.job_queue.clone(),
                ..Default::default()
            };
            for line in driver::deploy::undeploy::undeploy(&config, a.target.apply, a.delete_data)?
            {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Deploy(a) => {
            let config = driver::deploy::DeployConfig {
                bucket: a.target.bucket.clone(),
                prefix: a.target.prefix.trim_matches('/').to_string(),
                region: a.target.region.clone(),
                endpoint: a.target.endpoint.clone(),
                stages: StageKind::ALL.to_vec(),
                memories: a.memory.clone(),
                architecture: if a.arm64 { "arm64" } else { "x86_64" }.to_string(),
                zips: a.zips.clone(),
                lambda_role_arn: a.lambda_role.clone(),
                batch_image: a.batch_image.clone(),
                batch_job_role_arn: a.batch_job_role.clone(),
                batch_execution_role_arn: a.batch_execution_role.clone(),
                batch_vcpus: a.batch_vcpus,
                batch_memory_mb: a.batch_memory,
                batch_platform: match a.batch_platform {
                    PlatformArg::Fargate => driver::deploy::BatchPlatform::Fargate,
                    PlatformArg::Ec2 => driver::deploy::BatchPlatform::Ec2,
                },
                batch_assign_public_ip: !a.no_public_ip,
                batch_subnets: a.subnets.clone(),
                batch_security_groups: a.security_groups.clone(),
                batch_compute_environment: a.compute_environment.clone(),
                batch_job_queue: a.job_queue.clone(),
                batch_existing_queue: a.existing_job_queue,
                batch_max_vcpus: a.max_vcpus,
                batch_service_role_arn: a.batch_service_role.clone(),
                existing_bucket: a.existing_bucket,
                create_roles: a.create_roles,
                output_prefixes: a.output_prefixes.clone(),
                input_buckets: a.input_buckets.clone(),
                ..Default::default()
            };
            let actions = driver::deploy::plan(&config)?;
            if a.target.dry_run {
                println!("{}", serde_json::to_string_pretty(&actions)?);
            } else {
                for line in driver::deploy::apply(&config, &actions)? {
                    println!("{line}");
                }
            }
            if a.iam {
                println!(
                    "function/container role policy:\n{}",
                    serde_json::to_string_pretty(&driver::deploy::role_policy(&config)?)?
                );
                for (role, service) in [
                    ("the functions' role", "lambda.amazonaws.com"),
                    (
                        "the containers' job and execution roles",
                        "ecs-tasks.amazonaws.com",
                    ),
                ] {
                    println!(
                        "trust policy of {role}:\n{}",
                        serde_json::to_string_pretty(&driver::deploy::iam::trust_policy(service))?
                    );
                }
                println!(
                    "driver policy:\n{}",
                    serde_json::to_string_pretty(&driver::deploy::driver_policy(
                        &a.target.bucket,
                        &config.prefix,
                        a.target.region.as_deref().unwrap_or("REGION"),
                        "ACCOUNT"
                    ))?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
