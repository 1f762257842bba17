#!/usr/bin/env bash
# Envelope, the official Rust ESDK (aws-esdk 1.2.4 from crates.io), the Python ESDK 4.0.7 and the
# JavaScript ESDK (@aws-crypto/client-node 5.0.2, js_peer.js) on the same workloads, interleaved in
# one run, as rates per CPU-second of each process, plus the peak memory of a 16 MiB encrypt; the
# hier-* workloads put each SDK's hierarchical keyring (warm branch-key cache) over one key store on
# moto's DynamoDB and KMS on 127.0.0.1, made by the Python Material Providers Library 1.11.3;
# burst-64 counts the master-key calls of 64 concurrent encrypts on an empty caching
# CMM whose master key takes 50 ms. Not part of CI (the peer takes minutes to build).
#
# usage: bash benches/compare/run.sh [ROUNDS] [SECONDS_PER_RUN]
# output: target/compare/results.jsonl and the markdown table on stdout (also target/compare/table.md)
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
rounds=${1:-3}
seconds=${2:-2}
out="$root/target/compare"
mkdir -p "$out"

echo "== building (aws-esdk is large: minutes on first build)" >&2
CARGO_TARGET_DIR="$root/target/compare/cargo" cargo build --release --quiet
rust="$root/target/compare/cargo/release/envelope-compare"

# The project's Python environment (the Python ESDK 4.0.7 with the MPL 1.11.3, and moto) and an
# emulator on a free port for the hier-* workloads; both stop with this script.
cd "$root"
# shellcheck source=../../scripts/python-env.sh
source scripts/python-env.sh
start_moto
# shellcheck source=../../scripts/js-env.sh
source scripts/js-env.sh
node="env NODE_PATH=$root/$js_dir/node_modules node"
cd - >/dev/null
export AWS_ENDPOINT_URL_KMS="$ENVELOPE_KMS_ENDPOINT" AWS_ENDPOINT_URL_DYNAMODB="$ENVELOPE_KMS_ENDPOINT"
export AWS_REGION=us-west-2 AWS_DEFAULT_REGION=us-west-2 AWS_ACCESS_KEY_ID=compare AWS_SECRET_ACCESS_KEY=compare
venv="$root/$venv"
read -r ENVELOPE_COMPARE_KEY_ARN ENVELOPE_COMPARE_TABLE ENVELOPE_COMPARE_BRANCH_KEY < <("$venv/bin/python" python_peer.py setup)
export ENVELOPE_COMPARE_KEY_ARN ENVELOPE_COMPARE_TABLE ENVELOPE_COMPARE_BRANCH_KEY
echo "== key store $ENVELOPE_COMPARE_TABLE, branch key $ENVELOPE_COMPARE_BRANCH_KEY" >&2
python="$venv/bin/python python_peer.py"

peer_cmd() { # peer -> command prefix
    case $1 in
        python) echo "$python" ;;
        js) echo "$node js_peer.js" ;;
        *) echo "$rust $1" ;;
    esac
}

workloads="enc-1k-0478 dec-1k-0478 enc-1k-0578 dec-1k-0578 enc-16m-0478 dec-16m-0478 enc-16m-0578 dec-16m-0578 cache-1k-0478 hier-1k-0478 hierdec-1k-0478 burst-64"
peers="envelope aws-esdk python js"
results="$out/results.jsonl"
: > "$results"
for round in $(seq 1 "$rounds"); do
    echo "== round $round of $rounds" >&2
    for w in $workloads; do
        for p in $peers; do
            case "$p/$w" in aws-esdk/cache-* | aws-esdk/burst-*) continue ;; esac
            $(peer_cmd "$p") "$w" "$seconds" >> "$results" || echo "{\"peer\": \"$p\", \"workload\": \"$w\", \"error\": true}" >> "$results"
        done
    done
done

echo "== peak memory, 16 MiB encrypt (0x0578), RSS above an idle process of the same peer" >&2
for p in $peers; do
    for w in idle mem-16m-0578; do
        kb=$( { /usr/bin/time -f '%M' $(peer_cmd "$p") "$w" 1 >/dev/null; } 2>&1 | tail -n 1)
        echo "{\"peer\": \"$p\", \"workload\": \"rss-$w\", \"max_rss_kib\": $kb}" >> "$results"
    done
done

"$venv/bin/python" summarize.py "$results" | tee "$out/table.md"
