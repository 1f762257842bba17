#!/usr/bin/env bash
# Fuzz one target (or all, one after another) for a given number of seconds each, on the nightly
# toolchain with cargo-fuzz (`cargo install cargo-fuzz`), starting from the seed corpus
# (./seed-corpora.sh builds it from the shared vectors) and growing it in corpus/<target>/.
# Crashes land in artifacts/<target>/; copy each into regressions/<target>/ once it is fixed, so
# `cargo test` replays it on stable.
#
#   fuzz/run.sh header_round_trip 1200     # 20 minutes of one target
#   fuzz/run.sh all 10                     # the CI smoke: 10 s of each
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: run.sh TARGET|all SECONDS}
seconds=${2:?usage: run.sh TARGET|all SECONDS}
targets=(header_round_trip frames_and_footer encryption_context decrypt_one_shot streaming_decrypt caching_cmm_model)
if [ "$target" != all ]; then
    targets=("$target")
fi
[ -d corpus ] || ./seed-corpora.sh
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== $t: ${seconds}s"
    cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" 2>&1 | grep -E 'DONE|^stat::|^Done|^==[0-9]+==|SUMMARY|panicked' || true
    if [ -n "$(ls -A "artifacts/$t")" ]; then
        echo "$t: crash inputs in fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
