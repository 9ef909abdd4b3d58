#!/bin/sh
# Peer for the NDVI-difference benchmark: GDAL's gdal_calc.py (float32 NDVI of both dates,
# difference) to a tiled DEFLATE GeoTIFF, then gdal_translate -of COG (gdal_calc.py of GDAL
# 3.6 cannot create COGs directly). Usage: gdal_calc_peer.sh DATADIR OUT.tif
set -e
D=$1; OUT=$2; TMP=$OUT.tmp.tif
rm -f "$TMP" "$OUT"
gdal_calc.py -A "$D/s2_t1_red.tif" -B "$D/s2_t1_nir.tif" -C "$D/s2_t2_red.tif" -D "$D/s2_t2_nir.tif" \
  --outfile "$TMP" --type Float32 --NoDataValue nan --quiet \
  --calc "(D.astype(float32)-C)/(D.astype(float32)+C) - (B.astype(float32)-A)/(B.astype(float32)+A)" \
  --co TILED=YES --co BLOCKXSIZE=1024 --co BLOCKYSIZE=1024 --co COMPRESS=DEFLATE --co PREDICTOR=3
gdal_translate -q -of COG -co COMPRESS=DEFLATE -co PREDICTOR=YES -co BLOCKSIZE=1024 -co NUM_THREADS=ALL_CPUS "$TMP" "$OUT"
rm -f "$TMP"
