//! `biomass crowns` reproduces the scikit-image call the peer bench makes
//! (`../shared/bench/skimage_bench.py`): `gaussian(chm, sigma=2, preserve_range=True)`
//! (nearest edges, truncate 4, no zeroing over bare ground), `peak_local_max(min_distance=3,
//! threshold_abs=2)`, `watershed(-smoothed, markers, mask=smoothed > 2)` — crown for crown on
//! the NEON SJER CHM (the same partition of the pixels, label ids aside).

use crate::common;

use std::process::Command;

const CHECK: &str = r#"
import json, sys
import numpy as np, rasterio
from skimage.filters import gaussian
from skimage.feature import peak_local_max
from skimage.segmentation import watershed
chm = rasterio.open(sys.argv[1]).read(1).astype(np.float32)
sm = gaussian(chm, sigma=2, preserve_range=True)
peaks = peak_local_max(sm, min_distance=3, threshold_abs=2.0)
markers = np.zeros(chm.shape, np.int32)
markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
labels = watershed(-sm, markers, mask=sm > 2.0)
ours = rasterio.open(sys.argv[2]).read(1).astype(np.int64)
pairs = set(zip(labels[labels > 0].tolist(), ours[ours > 0].tolist()))
print(json.dumps({"skimage": int(len(peaks)), "ours": int(ours.max()),
                  "foreground_differs": int(((labels > 0) != (ours > 0)).sum()),
                  "label_pairs": len(pairs)}))
"#;

/// Runs the bench's call on `chm` with `biomass crowns` and compares with scikit-image.
fn crowns_like_the_bench(
    chm: &str,
    out: &std::path::Path,
) -> (serde_json::Value, serde_json::Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_biomass"))
        .args(["crowns", chm, "-o", out.to_str().unwrap()])
        .args([
            "--flood",
            "inverted",
            "--truncate",
            "4",
            "--gaussian-mode",
            "nearest",
        ])
        .args([
            "--smooth-ground",
            "--min-distance",
            "3",
            "--min-height",
            "2",
        ])
        .args(["--mask-above", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = Command::new("python3")
        .args(["-c", CHECK, chm, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (said, serde_json::from_slice(&o.stdout).unwrap())
}

#[test]
fn crowns_equal_the_scikit_image_call_of_the_bench() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crowns.tif");
    let (said, r) = crowns_like_the_bench(common::SJER_CHM, &out);
    assert_eq!(r["skimage"], 839, "{r}");
    assert_eq!(said["crowns"], r["skimage"]);
    assert_eq!(r["ours"], r["skimage"]);
    assert_eq!(r["foreground_differs"], 0, "{r}");
    // Each scikit-image crown is exactly one of ours: the same partition.
    assert_eq!(r["label_pairs"], r["skimage"], "{r}");

    // The NEON defaults are not that call, and the chunked form refuses what it cannot do.
    let o = Command::new(env!("CARGO_BIN_EXE_biomass"))
        .args(["crowns", common::SJER_CHM, "-o", out.to_str().unwrap()])
        .args(["--chunks", "2", "--mask-above", "2"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("mask_above"));
}

/// The benchmark CHM (`../shared/bench/gen_data.py --only chm`: 5000², 68 192 crowns, 361
/// groups of tied marker heights, so the watershed's tie proof is exercised): label for label.
/// About two minutes (scikit-image's own run is most of it), so opt-in:
/// `GEOBUTTON_BENCH_CHM=/path/chm.tif cargo test -p biomass --test integration -- skimage_call:: --ignored`.
#[test]
#[ignore = "needs GEOBUTTON_BENCH_CHM (gen_data.py's chm.tif); about two minutes"]
fn bench_chm_crowns_equal_scikit_image() {
    let chm = std::env::var("GEOBUTTON_BENCH_CHM")
        .expect("GEOBUTTON_BENCH_CHM: the chm.tif written by ../shared/bench/gen_data.py");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crowns.tif");
    let (said, r) = crowns_like_the_bench(&chm, &out);
    assert_eq!(r["skimage"], 68_192, "{r}");
    assert_eq!(said["crowns"], r["skimage"]);
    assert_eq!(r["ours"], r["skimage"]);
    assert_eq!(r["foreground_differs"], 0, "{r}");
    assert_eq!(r["label_pairs"], r["skimage"], "{r}");
}
