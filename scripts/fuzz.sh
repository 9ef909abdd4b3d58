#!/usr/bin/env bash
# Runs the cargo-fuzz target of the cog IFD parser for a bounded time (called from .ci/run).
#
#   bash scripts/fuzz.sh [SECONDS]        # default: $FUZZ_SECONDS or 60
#   bash scripts/fuzz.sh --build-only     # install cargo-fuzz and build the target, no run
#
# Installs cargo-fuzz when missing, seeds the corpus with the small GeoTIFF fixtures of
# ../shared/data (when present) so the fuzzer starts from real IFD layouts, and fails when
# libFuzzer finds a crash, a timeout or an out-of-memory (the reproducer is left under
# cog/fuzz/artifacts/). The fuzz crate builds `cog` without the `remote` feature (no AWS SDK
# under the sanitizer); RUSTC_BOOTSTRAP lets the stable toolchain take cargo-fuzz's -Z flags.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_only=0
if [ "${1:-}" = --build-only ]; then
    build_only=1
    shift
fi
seconds="${1:-${FUZZ_SECONDS:-60}}"
CARGO_FUZZ_VERSION=0.13.2
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! cargo install --list | grep -q "^cargo-fuzz v$CARGO_FUZZ_VERSION:"; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
# The same crate versions as the workspace: cargo keeps the lock's versions and adds
# libfuzzer-sys.
cp Cargo.lock cog/fuzz/Cargo.lock
corpus="${TMPDIR:-/tmp}/geobutton-fuzz-corpus/ifd"
mkdir -p "$corpus"
if [ -d ../shared/data ]; then
    find ../shared/data -name '*.tif' -size -300k -exec cp -n {} "$corpus/" \;
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${GEOBUTTON_FUZZ_TARGET:-${TMPDIR:-/tmp}/geobutton-fuzz-target}"
cd cog/fuzz
if ((build_only)); then
    exec cargo fuzz build ifd
fi
cargo fuzz run ifd "$corpus" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -max_len=262144 -print_final_stats=1
