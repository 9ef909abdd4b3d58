# Starts the services the tests talk to, on loopback only, and exports their addresses.
# Source it: `source scripts/test-services.sh` (scripts/test.sh does).
#
# - S3: moto's server (PyPI `moto[server]`) on 127.0.0.1:${GEOBUTTON_S3_PORT:-5000}.
# Lambda runtime emulation (cargo-lambda) and the HTTP range server (nginx) are started by
# the tests that use them, on ports of their own.

export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
# Never ask the EC2 instance metadata service (an address outside loopback).
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

GEOBUTTON_S3_PORT=${GEOBUTTON_S3_PORT:-5000}
export GEOBUTTON_TEST_S3_ENDPOINT="http://127.0.0.1:${GEOBUTTON_S3_PORT}"

_geobutton_s3_up() {
    python3 - "$GEOBUTTON_TEST_S3_ENDPOINT" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/", timeout=2).read()
PY
}

if ! _geobutton_s3_up; then
    command -v moto_server >/dev/null || { echo "moto_server not found: pip install 'moto[server]'" >&2; return 1 2>/dev/null || exit 1; }
    mkdir -p "${TMPDIR:-/tmp}/geobutton-services"
    nohup moto_server -H 127.0.0.1 -p "$GEOBUTTON_S3_PORT" \
        > "${TMPDIR:-/tmp}/geobutton-services/moto.log" 2>&1 &
    echo $! > "${TMPDIR:-/tmp}/geobutton-services/moto.pid"
    for _ in $(seq 1 100); do
        _geobutton_s3_up && break
        sleep 0.2
    done
    if ! _geobutton_s3_up; then
        echo "the S3 server did not start; see ${TMPDIR:-/tmp}/geobutton-services/moto.log" >&2
        return 1 2>/dev/null || exit 1
    fi
fi
echo "S3 test server: $GEOBUTTON_TEST_S3_ENDPOINT" >&2
