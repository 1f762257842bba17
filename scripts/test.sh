#!/usr/bin/env bash
# Runs the whole test suite on both crypto backends, the core suite on the FIPS backend
# (scripts/test-fips.sh: it needs CMake and Go), the examples, and live interop with the
# Python and JavaScript ESDKs. The Python ESDK and moto (the AWS KMS emulator the KMS tests run
# against, on a free 127.0.0.1 port) are installed into a venv under target/ on first use, the JS
# ESDK with npm under target/interop/js (it needs Node.js 20 or later).
#
# The vector tests read ../shared/vectors (or $ENVELOPE_VECTORS); without them they say so and skip,
# unless ENVELOPE_REQUIRE_VECTORS is set (CI sets it), in which case their absence fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/python-env.sh
start_moto
# The KMS and Kinesis tests fail rather than skip when the emulator (or the Python peer) is missing.
export ENVELOPE_REQUIRE_KMS=1
export ENVELOPE_PYTHON="$PWD/$venv/bin/python"
export ENVELOPE_PYTHON_CLI="$PWD/$cli_venv/bin/aws-encryption-cli"
export ENVELOPE_REQUIRE_PYTHON_CLI=1

echo "== tests, aws-lc-rs backend"
ENVELOPE_EXPECT_BACKEND=aws-lc-rs cargo test --workspace --locked --features envelope/tokio,envelope/kms,envelope/kinesis,envelope/hierarchy

echo "== tests, RustCrypto backend"
ENVELOPE_EXPECT_BACKEND=RustCrypto cargo test --workspace --locked --no-default-features --features rustcrypto,envelope/tokio,envelope/kms,envelope/kinesis,envelope/hierarchy

bash scripts/test-fips.sh

echo "== examples"
for example in quickstart raw_aes raw_rsa multi_keyring; do
    cargo run --locked --quiet --example "$example" >/dev/null
    echo "example $example: ok"
done
AWS_ENDPOINT_URL_KMS="$ENVELOPE_KMS_ENDPOINT" AWS_REGION=us-west-2 AWS_ACCESS_KEY_ID=example \
    AWS_SECRET_ACCESS_KEY=example cargo run --locked --quiet -p envelope --features kms --example kms | tail -n 1
echo "example kms (against moto): ok"
AWS_ENDPOINT_URL_KMS="$ENVELOPE_KMS_ENDPOINT" AWS_ENDPOINT_URL_KINESIS="$ENVELOPE_KMS_ENDPOINT" AWS_REGION=us-west-2 \
    AWS_ACCESS_KEY_ID=example AWS_SECRET_ACCESS_KEY=example \
    cargo run --locked --quiet -p envelope --features kinesis --example kinesis | grep -E 'per 1,000|consumed|ok$'

AWS_ENDPOINT_URL_KMS="$ENVELOPE_KMS_ENDPOINT" AWS_ENDPOINT_URL_DYNAMODB="$ENVELOPE_KMS_ENDPOINT" AWS_REGION=us-west-2 \
    AWS_ACCESS_KEY_ID=example AWS_SECRET_ACCESS_KEY=example \
    cargo run --locked --quiet -p envelope --features kms,hierarchy --example hierarchical | tail -n 2

echo "== interop with the Python and JS ESDKs"
bash scripts/interop.sh
