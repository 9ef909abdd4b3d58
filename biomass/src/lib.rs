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
//! `biomass crowns CHM -o OUT --flood inverted --truncate 4 --gaussian-mode nearest
//! --smooth-ground --min-distance 3 --min-height 2 --mask-above 2` against
//! `../shared/bench/skimage_bench.py` (the same call: gaussian, `peak_local_max`, watershed of
//! the negated smoothed CHM) on the generated 5000×5000 CHM (68 192 crowns, 361 groups of
//! tied marker heights; the labels are scikit-image's, crown for crown), whole processes,
//! 2 vCPU, n = 5 alternated pairs, 2026-12-04: 2.81 s vs 58.8 s wall (21×), 3.69 s vs 58.9 s
//! CPU (16×), peak RSS 863 vs 955 MiB. `cargo bench -p biomass --bench biomass_bench -- chm
//! CHM.tif` prints the steps: read 0.11 s, gaussian 0.38 s, peaks 0.31 s, watershed 1.88 s
//! (through the f64 [`watershed()`] API) against scikit-image 0.25.2's 0.30, 0.87, 9.07 and
//! 46.8 s in the same session.
//!
//! The watershed pops pixels in skimage's exact order from a two-level queue (coarse key
//! buckets, the current one sorted) over one 64-bit word per pixel in 2 MiB pages, fetching
//! the pixels a few pops ahead; the flood is bound by memory latency (each pop touches three
//! rows somewhere in a 200 MB table). Markers of equal height pop in an order set by skimage's
//! heap shape; the flood proves, group by group, that the order cannot change a label, and
//! otherwise reruns on skimage's own heap (see [`watershed()`]).
//!
//! The random forest (`biomass_bench rf` against `rf_bench.py`, scikit-learn 1.6.1, one
//! core; the README has the figures): fit 10.7×, predict 2.6×. Forest prediction uses
//! [`FlatForest`], smartcore's forest copied into flat node arrays and walked branch-free in
//! lockstep (bit-identical predictions; smartcore's own walk took 2.6–3.7 s here).
//!
//! ```
//! use biomass::{BorderMode, GaussianParams, gaussian_filter};
//!
//! // A single 1 m tree on flat ground, smoothed as scikit-image's `gaussian(sigma=1)`: the
//! // weights sum to one, so the height spreads without being lost.
//! let mut chm = ndarray::Array2::<f32>::zeros((9, 9));
//! chm[[4, 4]] = 1.0;
//! let p = GaussianParams { sigma: 1.0, truncate: 4.0, mode: BorderMode::Constant(0.0) };
//! let s = gaussian_filter(chm.view(), &p)?;
//! assert!((s.sum() - 1.0).abs() < 1e-3);
//! assert!((s[[4, 4]] - 0.159).abs() < 1e-3); // 1 / (2π σ²)
//! # Ok::<(), biomass::BiomassError>(())
//! ```

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
