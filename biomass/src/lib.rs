//! Tree tops, watershed crowns and random-forest biomass from a canopy height model: the NEON
//! "Calculate Vegetation Biomass from LiDAR Data in Python" method (SJER), CloudButton D2.5
//! §8.7, with scipy/scikit-image/numpy semantics reproduced exactly.
//!
//! Steps (library functions on arrays; heights in metres, pixels of the CHM's grid):
//! - [`smooth_chm`]: `scipy.ndimage.gaussian_filter(σ=2, truncate=2, mode='constant')`, then 0
//!   where the CHM is 0 (separable, rayon-parallel, bit-identical to scipy);
//! - [`peak_local_max`]: skimage 0.25 semantics (footprint, plateaus, `exclude_border`,
//!   thresholds, `min_distance`, `num_peaks`);
//! - [`label_mask`]: `ndi.label` of the peaks into markers (imageproc connected components);
//! - [`watershed()`]: `skimage.segmentation.watershed` (same heap, same tie-breaking);
//! - [`crowns`]: the 11 NEON predictors per crown (`regionprops` + numpy percentiles);
//! - [`BiomassModel`]: smartcore random forest (100 trees, depth 30, fixed seed), JSON model.
//!
//! [`segment()`] runs the whole chain on one array; [`segment_chunk`] + [`merge_chunks`] are the
//! serverless form (one task per chunk, then one merge task) and give the same result.
//! [`run`] is the full workflow over URIs, and [`stage::BiomassStage`] its task contract.
//!
//! # Performance
//!
//! `cargo run --release -p biomass --bin biomass-bench -- chm CHM.tif | rf` against
//! `../shared/bench/skimage_bench.py` and `rf_bench.py`, generated 5000×5000 CHM, 2 vCPU shared
//! with a concurrent CI build (wall seconds; loaded, so CPU seconds are given too):
//!
//! | step | ours | peer | |
//! |---|---|---|---|
//! | read + gaussian + peak_local_max | 1.7 s | 15.4 s (skimage) | 9× |
//! | watershed (68 192 markers, 361 groups of tied marker values) | 12.7–15.4 s (≈ 9–10 s CPU) | 61.7 s (15.7 s on a quieter machine) | ≈ 4× here |
//! | whole process (CPU user+sys) | ≈ 10.3–11.9 s | 68.2 s | ≈ 6× |
//! | forest predict, 100 trees, 100 000 rows | 0.42 s (median of 3) | 0.92 s (scikit-learn, 1 core) | 2.2× |
//! | forest fit, 1000 × 6 | 0.05 s | 0.31 s | 6× |
//!
//! The watershed reproduces skimage's binary heap exactly because markers of equal value pop
//! in the order of that heap's shape; when no two markers tie (e.g. SJER) it runs a
//! hierarchical queue instead (O(1) per pixel). On the benchmark CHM markers tie, so the
//! binary heap (≈ 15 M pops on a heap of millions of 16-byte items, cache-miss bound) remains
//! the bottleneck and the ≥ 10× end-to-end target is not met. Forest prediction uses
//! [`FlatForest`], smartcore's forest copied into flat node arrays and walked branch-free in
//! lockstep (bit-identical predictions; smartcore's own walk took 2.6–3.7 s here).

pub mod error;
pub mod forest;
pub mod gaussian;
pub mod grid;
pub mod output;
pub mod peaks;
pub mod predictors;
pub mod segment;
pub mod stage;
pub mod watershed;
pub mod workflow;

pub use error::BiomassError;
pub use forest::{BiomassModel, FlatForest, ForestParams, TrainingTable, r2_score};
pub use gaussian::{BorderMode, GaussianParams, gaussian_filter, smooth_chm};
pub use peaks::{
    Candidate, Connectivity, ExcludeBorder, PNorm, PeakParams, label_mask, maximum_filter,
    peak_local_max,
};
pub use predictors::{Crown, N_PREDICTORS, PREDICTOR_NAMES, crowns};
pub use segment::{
    ArraySource, ChmSource, ChunkResult, ChunkWindow, SegmentParams, Segmentation, TreeTop,
    chunk_grid, merge_chunks, sanitise_chm, segment, segment_chunk, segment_chunked,
};
pub use watershed::{Flood, watershed};
pub use workflow::{RunOutput, RunParams, run};
