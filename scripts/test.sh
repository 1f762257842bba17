#!/usr/bin/env bash
# Runs the whole test suite on both crypto backends, the examples, and live interop with the
# Python ESDK (installed into a venv under target/ on first use).
#
# The vector tests read ../shared/vectors (or $ENVELOPE_VECTORS); without them they say so and skip,
# unless ENVELOPE_REQUIRE_VECTORS is set (CI sets it), in which case their absence fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== tests, aws-lc-rs backend"
ENVELOPE_EXPECT_BACKEND=aws-lc-rs cargo test --workspace --locked --features envelope/tokio

echo "== tests, RustCrypto backend"
ENVELOPE_EXPECT_BACKEND=RustCrypto cargo test --workspace --locked --no-default-features --features rustcrypto,envelope/tokio

echo "== examples"
for example in quickstart raw_aes raw_rsa multi_keyring; do
    cargo run --locked --quiet --example "$example" >/dev/null
    echo "example $example: ok"
done

echo "== interop with the Python ESDK"
bash scripts/interop.sh
