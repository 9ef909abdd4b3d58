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
//! - [`watershed`]: `skimage.segmentation.watershed` (same heap, same tie-breaking);
//! - [`crowns`]: the 11 NEON predictors per crown (`regionprops` + numpy percentiles);
//! - [`BiomassModel`]: smartcore random forest (100 trees, depth 30, fixed seed), JSON model.
//!
//! [`segment`] runs the whole chain on one array; [`segment_chunk`] + [`merge_chunks`] are the
//! serverless form (one task per chunk, then one merge task) and give the same result.
//! [`run`] is the full workflow over URIs, and [`stage::BiomassStage`] its task contract.

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
pub use forest::{BiomassModel, ForestParams, TrainingTable, r2_score};
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
