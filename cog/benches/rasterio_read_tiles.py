#!/usr/bin/env python3
"""Peer for benches/read_tiles.rs: rasterio windowed reads of every block of band 1.

    python3 rasterio_read_tiles.py PATH_OR_S3URI [--window-tiles N] [--repeat R]

--window-tiles N reads windows of N×N blocks (the last ones clipped), row by row, as
`read_tiles --window-tiles N` does (default 1: every block window).

For s3:// URIs set AWS_S3_ENDPOINT=127.0.0.1:5000 AWS_HTTPS=NO AWS_VIRTUAL_HOSTING=FALSE
(GDAL /vsis3/ to the loopback S3 server). Prints one JSON line per run.
"""
import json
import sys
import time

import numpy as np
import rasterio
from rasterio.windows import Window


def main():
    uri = sys.argv[1]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
    k = int(sys.argv[sys.argv.index("--window-tiles") + 1]) if "--window-tiles" in sys.argv else 1
    for _ in range(repeat):
        t = time.perf_counter()
        total = 0
        n = 0
        with rasterio.open(uri) as src:
            bw, bh = src.block_shapes[0][1] * k, src.block_shapes[0][0] * k
            windows = [Window(c, r, min(bw, src.width - c), min(bh, src.height - r))
                       for r in range(0, src.height, bh) for c in range(0, src.width, bw)]
            for window in windows:
                a = src.read(1, window=window)
                total += int(a.sum(dtype=np.uint64))
                n += 1
            mb = src.width * src.height * np.dtype(src.dtypes[0]).itemsize / 1e6
        secs = time.perf_counter() - t
        print(json.dumps({"tool": "rasterio", "uri": uri, "windows": n, "seconds": round(secs, 4),
                          "decoded_mb": round(mb, 1), "mb_per_s": round(mb / secs, 1), "checksum": total}))


if __name__ == "__main__":
    main()
