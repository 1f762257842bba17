#!/usr/bin/env bash
# Runs the whole test suite on both crypto backends, then the quickstart example.
#
# The vector tests read ../shared/vectors (or $ENVELOPE_VECTORS); without them they say so and skip,
# unless ENVELOPE_REQUIRE_VECTORS is set (CI sets it), in which case their absence fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== tests, aws-lc-rs backend"
ENVELOPE_EXPECT_BACKEND=aws-lc-rs cargo test --workspace --locked

echo "== tests, RustCrypto backend"
ENVELOPE_EXPECT_BACKEND=RustCrypto cargo test --workspace --locked --no-default-features --features rustcrypto

echo "== examples"
cargo run --locked --quiet --example quickstart
