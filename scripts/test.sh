#!/usr/bin/env bash
# Runs every test of the workspace: installs what the tests need, starts the loopback
# services (S3 server), then `cargo test --workspace`. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-test-env.sh
# shellcheck source=scripts/test-services.sh
source scripts/test-services.sh
cargo test --workspace --locked "$@"
