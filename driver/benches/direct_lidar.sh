#!/usr/bin/env bash
# The lidar pipeline's work done by hand with the stage binaries, no driver: the peer of
# `geobutton run lidar` in the driver-overhead benchmark.
#   direct_lidar.sh BIN_DIR IN.las OUT CAPACITY BUFFER JOBS
set -euo pipefail
bin=$1 in=$2 out=$3 capacity=$4 buffer=$5 jobs=$6
rm -rf "$out"; mkdir -p "$out/tiles"
"$bin/lidar-partitioner" "$in" "$out/partitions" --capacity "$capacity" --buffer "$buffer" --json > "$out/partitions.json"
ls "$out"/partitions/*.la[sz] | xargs -P "$jobs" -I{} sh -c \
    "\"$bin/terrain\" models {} \"$out/tiles\" --name \$(basename {} | sed 's/\.la[sz]$//') > /dev/null"
printf '%s\n' dem dsm chm fcc slope aspect | xargs -P "$jobs" -I{} sh -c \
    "\"$bin/terrain\" mosaic \"$out\"/tiles/*_{}.tif \"$out/{}.tif\" 2> /dev/null"
