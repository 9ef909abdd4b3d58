#!/usr/bin/env python3
"""Independent check of LAS/LAZ files with laspy (lazrs backend): prints one JSON object per
file given on the command line (or a JSON error object when laspy cannot read it).
With `--core-digest INPUT TILE...`, also a last line comparing the multiset of the input's
records with that of the tiles' non-withheld records; with `--groups`, the same for each
group of a JSON list read from standard input (one process for many checks).

Fields: header version, point format, counts (header and actual), scales/offsets, header and
actual bounds, points by return (header and actual), withheld count, VLR/EVLR ids with a
SHA-256 of their record data, global encoding, compressed flag.
"""
import hashlib
import json
import sys

import laspy
import numpy as np


def rec_id(v):
    try:
        data = v.record_data_bytes() if hasattr(v, "record_data_bytes") else bytes(v.record_data)
        digest = hashlib.sha256(data).hexdigest()
    except NotImplementedError:  # laspy cannot re-serialise some known records (COPC info)
        digest = None
    return [v.user_id, int(v.record_id), digest]


def summary(path):
    with laspy.open(path, laz_backend=laspy.LazBackend.Lazrs) as f:
        h = f.header
        las = f.read()
    x = np.asarray(las.x)
    y = np.asarray(las.y)
    z = np.asarray(las.z)
    rn = np.asarray(las.return_number)
    by_return = [int((rn == r).sum()) for r in range(1, 16)]
    n = len(las.points)
    return {
        "path": path,
        "version": f"{h.version.major}.{h.version.minor}",
        "point_format": int(h.point_format.id),
        "header_count": int(h.point_count),
        "count": int(n),
        "compressed": bool(f.header.are_points_compressed) if hasattr(f.header, "are_points_compressed") else path.lower().endswith(".laz"),
        "scales": [float(v) for v in h.scales],
        "offsets": [float(v) for v in h.offsets],
        "header_min": [float(v) for v in h.mins],
        "header_max": [float(v) for v in h.maxs],
        "min": [float(x.min()), float(y.min()), float(z.min())] if n else None,
        "max": [float(x.max()), float(y.max()), float(z.max())] if n else None,
        "header_by_return": [int(v) for v in h.number_of_points_by_return],
        "by_return": by_return,
        "withheld": int(np.asarray(las.withheld).astype(bool).sum()),
        "vlrs": [rec_id(v) for v in h.vlrs],
        "evlrs": [rec_id(v) for v in (las.evlrs or [])],
        "global_encoding": int(h.global_encoding.value) if hasattr(h.global_encoding, "value") else None,
    }


def record_rows(path):
    """Raw point records as rows of bytes, and the withheld flags."""
    las = laspy.read(path, laz_backend=laspy.LazBackend.Lazrs)
    arr = las.points.array
    rows = np.frombuffer(arr.tobytes(), dtype=np.uint8).reshape(len(arr), arr.dtype.itemsize).copy()
    mask = 0x04 if las.header.point_format.id >= 6 else 0x80
    withheld = (rows[:, 15] & mask) != 0
    rows[:, 15] &= np.uint8(0xFF ^ mask)
    return rows, withheld


def multiset_digest(rows):
    void = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel()
    return hashlib.sha256(np.sort(void).tobytes()).hexdigest()


def core_digest(input_path, tiles):
    """Digest of the input's records (withheld cleared) and of the tiles' non-withheld ones."""
    rows, _ = record_rows(input_path)
    parts = []
    for t in tiles:
        r, w = record_rows(t)
        parts.append(r[~w])
    core = np.concatenate(parts) if parts else rows[:0]
    return {"input_n": int(len(rows)), "core_n": int(len(core)),
            "input_digest": multiset_digest(rows), "core_digest": multiset_digest(core)}


def main():
    if sys.argv[1:2] == ["--groups"]:
        # JSON on stdin: [{"input": path, "tiles": [path, ...]}, ...]; one line per group.
        for g in json.load(sys.stdin):
            summaries = [summary(p) for p in [g["input"]] + g["tiles"]]
            print(json.dumps({"summaries": summaries, "digest": core_digest(g["input"], g["tiles"])}))
        return
    if sys.argv[1:2] == ["--core-digest"]:
        # Summaries of the input and of every tile, then the digests.
        for path in sys.argv[2:]:
            print(json.dumps(summary(path)))
        print(json.dumps(core_digest(sys.argv[2], sys.argv[3:])))
        return
    for path in sys.argv[1:]:
        try:
            out = summary(path)
        except Exception as e:  # report, do not stop: the Rust test asserts on it
            out = {"path": path, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
