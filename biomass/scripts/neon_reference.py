#!/usr/bin/env python3
"""Reference outputs of the NEON SJER biomass method with scipy / scikit-image / scikit-learn.

Usage: neon_reference.py CHM.tif TRAINING.csv OUTDIR

Follows NEON-Data-Skills "Calculate Vegetation Biomass from LiDAR Data in Python" with the
pinned stack of scripts/requirements-test.txt (scipy 1.15.3, scikit-image 0.25.2,
scikit-learn 1.6.1, numpy 2.2.6, rasterio 1.4.3). Writes little-endian raw arrays and a
meta.json that the biomass crate's tests compare against:

  chm.f32        the CHM as read (float32, rows x cols)
  smooth.f32     gaussian_filter(chm, 2, mode='constant', cval=0, truncate=2); 0 where chm == 0
  peaks.i64      peak_local_max(smooth, footprint=ones((5,5))) as (row, col) pairs, skimage order
  markers.i32    ndi.label(peak mask)[0]
  labels.i32     watershed(smooth, markers, mask=chm > 0)         (the NEON call)
  labels_inv.i32 watershed(-smooth, markers, mask=chm > 0)        (--flood inverted)
  labels8.i32    watershed(smooth, markers, connectivity=2, mask=chm > 0)
  predictors.f64 per label (1..n, regionprops order): label + the 11 NEON predictors
  meta.json      shapes, counts, and the scikit-learn random forest figures
"""
import json
import sys

import numpy as np
import rasterio
import scipy.ndimage as ndi
from skimage.feature import peak_local_max
from skimage.measure import regionprops
from skimage.segmentation import watershed
from sklearn.ensemble import RandomForestRegressor


def crown_geometric_volume_pct(tree_data, min_tree_height, pct):
    p = np.percentile(tree_data, pct)
    tree_data_pct = [v if v < p else p for v in tree_data]
    crown_geometric_volume_pct = np.sum(tree_data_pct - min_tree_height)
    return crown_geometric_volume_pct, p


def get_predictors(tree, chm_array, labels):
    indexes_of_tree = np.asarray(np.where(labels == tree.label)).T
    tree_crown_heights = chm_array[indexes_of_tree[:, 0], indexes_of_tree[:, 1]]
    full_crown = np.sum(tree_crown_heights - np.min(tree_crown_heights))
    crown50, p50 = crown_geometric_volume_pct(tree_crown_heights, tree.min_intensity, 50)
    crown60, p60 = crown_geometric_volume_pct(tree_crown_heights, tree.min_intensity, 60)
    crown70, p70 = crown_geometric_volume_pct(tree_crown_heights, tree.min_intensity, 70)
    return [tree.label, float(tree.area), tree.major_axis_length, tree.max_intensity,
            tree.min_intensity, p50, p60, p70, full_crown, crown50, crown60, crown70]


def main():
    chm_path, training_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    with rasterio.open(chm_path) as ds:
        chm = ds.read(1)
    assert chm.dtype == np.float32
    chm.astype("<f4").tofile(f"{out}/chm.f32")

    smooth = ndi.gaussian_filter(chm, 2, mode="constant", cval=0, truncate=2.0)
    smooth[chm == 0] = 0
    smooth.astype("<f4").tofile(f"{out}/smooth.f32")

    peaks = peak_local_max(smooth, footprint=np.ones((5, 5)))
    peaks.astype("<i8").tofile(f"{out}/peaks.i64")
    local_maxi = np.zeros(smooth.shape, dtype=bool)
    local_maxi[tuple(peaks.T)] = True
    markers = ndi.label(local_maxi)[0]
    markers.astype("<i4").tofile(f"{out}/markers.i32")

    mask = chm > 0
    assert np.array_equal(mask, smooth != 0), "chm > 0 and the tutorial's smooth != 0 differ"
    labels = watershed(smooth, markers, mask=mask)
    labels.astype("<i4").tofile(f"{out}/labels.i32")
    watershed(-smooth, markers, mask=mask).astype("<i4").tofile(f"{out}/labels_inv.i32")
    watershed(smooth, markers, connectivity=2, mask=mask).astype("<i4").tofile(
        f"{out}/labels8.i32")

    tree_properties = regionprops(labels, intensity_image=chm)
    predictors = np.array([get_predictors(t, chm, labels) for t in tree_properties],
                          dtype=np.float64)
    predictors.astype("<f8").tofile(f"{out}/predictors.f64")

    data = np.loadtxt(training_path, delimiter=",")
    y, X = data[:, 0], data[:, 1:]
    rf = RandomForestRegressor(n_estimators=100, max_depth=30, random_state=2, max_features=1.0)
    rf.fit(X, y)
    r2_train = rf.score(X, y)
    pred = rf.predict(predictors[:, 1:])
    # scikit-learn's own seed-to-seed spread (the forests' random streams differ from smartcore's).
    totals, r2s = [], []
    for seed in range(20):
        m = RandomForestRegressor(n_estimators=100, max_depth=30, random_state=seed,
                                  max_features=1.0).fit(X, y)
        totals.append(m.predict(predictors[:, 1:]).sum())
        r2s.append(m.score(X, y))
    meta = {
        "sklearn_seeds_total_mean_kg": float(np.mean(totals)),
        "sklearn_seeds_total_std_kg": float(np.std(totals)),
        "sklearn_seeds_r2_min": float(np.min(r2s)),
        "sklearn_seeds_r2_max": float(np.max(r2s)),
        "rows": int(chm.shape[0]),
        "cols": int(chm.shape[1]),
        "n_peaks": int(len(peaks)),
        "n_markers": int(markers.max()),
        "n_crowns": int(len(predictors)),
        "sklearn_r2_train": float(r2_train),
        "sklearn_total_biomass_kg": float(pred.sum()),
        "sklearn_mean_biomass_kg": float(pred.mean()) if len(pred) else 0.0,
        "versions": {
            "numpy": np.__version__,
            "scipy": __import__("scipy").__version__,
            "skimage": __import__("skimage").__version__,
            "sklearn": __import__("sklearn").__version__,
        },
    }
    with open(f"{out}/meta.json", "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
