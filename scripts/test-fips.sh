#!/usr/bin/env bash
# The core test suite on the FIPS backend (aws-lc-rs on the AWS-LC FIPS module): the format, crypto,
# keyring, cache, hierarchy and facade crates and every shared vector (the vector tests assert each
# set's exact counts, the same on every backend). Building the module needs CMake and Go (Debian: cmake golang-go; .ci/run
# installs them). See docs/fips.md.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cmake go; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: the FIPS module's build needs $tool: apt-get install -y cmake golang-go" >&2
        exit 1
    fi
done

# The crates whose tests make up the core suite, each with its `fips` feature.
packages=(envelope-format envelope-crypto envelope-keyring envelope-cache envelope-hierarchy envelope envelope-vectors)
features=envelope-crypto/fips,envelope-keyring/fips,envelope-cache/fips,envelope-hierarchy/fips,envelope/fips,envelope/tokio,envelope-vectors/fips
args=(--locked --no-default-features --features "$features")
for p in "${packages[@]}"; do args+=(-p "$p"); done

if [ "${1:-}" = "--clippy" ]; then
    echo "== clippy, FIPS backend"
    cargo clippy --all-targets "${args[@]}" -- -D warnings
    exit 0
fi

echo "== tests, FIPS backend"
ENVELOPE_EXPECT_BACKEND="aws-lc-rs (FIPS module)" cargo test "${args[@]}"
