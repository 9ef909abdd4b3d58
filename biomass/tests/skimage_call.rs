//! `biomass crowns` reproduces the scikit-image call the peer bench makes
//! (`../shared/bench/skimage_bench.py`): `gaussian(chm, sigma=2, preserve_range=True)`
//! (nearest edges, truncate 4, no zeroing over bare ground), `peak_local_max(min_distance=3,
//! threshold_abs=2)`, `watershed(-smoothed, markers, mask=smoothed > 2)` — crown for crown on
//! the NEON SJER CHM (the same partition of the pixels, label ids aside).
#![allow(clippy::unwrap_used)]

mod common;

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

#[test]
fn crowns_equal_the_scikit_image_call_of_the_bench() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crowns.tif");
    let o = Command::new(env!("CARGO_BIN_EXE_biomass"))
        .args(["crowns", common::SJER_CHM, "-o", out.to_str().unwrap()])
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
        .args(["-c", CHECK, common::SJER_CHM, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
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
