#!/usr/bin/env bash
# Live interop with the released Python AWS Encryption SDK (4.0.7) and JavaScript ESDK
# (@aws-crypto/client-node 5.0.2), through test-vector manifests.
#
# 1. A venv under target/interop/ gets aws-encryption-sdk[MPL]==4.0.7 and moto from PyPI; npm ci
#    installs the JS ESDK under target/interop/js (scripts/js-env.sh).
# 2. Fresh keys and the awses-encrypt manifests of the matrix are written (interop/esdk_runner.py).
# 3. For each manifest, Envelope encrypts and Python decrypts, and Python encrypts and Envelope
#    decrypts (frame lengths 1 and 7 only Envelope can write). Any failure fails the script.
# 4. The same for AWS KMS, through moto's KMS emulator on 127.0.0.1 (interop/moto_server.py):
#    the Python ESDK's AWS KMS keyring and Envelope's, every suite.
# 5. The JS ESDK: Envelope encrypts and JS decrypts, JS encrypts and Envelope decrypts, for the
#    js-* manifests, the caching CMMs of both and AWS KMS (interop/js/esdk_runner.js).
# The manifests and messages stay in target/interop/ and can be replayed by any ESDK's runner.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/python-env.sh
start_moto
source scripts/js-env.sh
py="$venv/bin/python interop/esdk_runner.py"
"$venv/bin/python" -c 'import aws_encryption_sdk; print("Python ESDK", aws_encryption_sdk.__version__)'

cargo build --locked --release --quiet -p envelope-vectors
envelope=target/release/envelope-vectors

$py keys --out "$work/keys.json"
$py matrix --keys "$work/keys.json" --out "$work/manifests"

fail=0
run() { # label, command...; with expect=TEXT set, the output must also contain TEXT
    local label=$1; shift
    local out
    if out=$("$@" 2>&1) && { [ "${strict_skips:-0}" = 0 ] || echo "$out" | grep -qE ', 0 skipped'; } \
        && { [ -z "${expect:-}" ] || echo "$out" | grep -qF -- "$expect"; }; then
        echo "$label: $(echo "$out" | grep -E 'passed|encrypted' | tail -n 1) $(echo "$out" | grep -oE '[a-z]+ took [0-9.]+s' | tail -n 1)"
    else
        echo "$out" | grep -E '^FAIL' | head -n 20
        echo "$label: FAILED: $(echo "$out" | grep -E 'passed|encrypted' | tail -n 1)${expect:+ (expected: $expect)}"
        fail=1
    fi
}

for name in both-ways required-ec envelope-only; do
    manifest="$work/manifests/$name.json"
    rm -rf "$work/envelope-to-python-$name"
    run "$name: Envelope encrypts" $envelope encrypt "$manifest" --out "$work/envelope-to-python-$name"
    run "$name: Python decrypts Envelope's messages" $py decrypt "$work/envelope-to-python-$name/manifest.json"
    rm -rf "$work/envelope-to-python-$name/ciphertexts"
    if [ "$name" != envelope-only ]; then
        rm -rf "$work/python-to-envelope-$name"
        run "$name: Python encrypts" $py encrypt "$manifest" --out "$work/python-to-envelope-$name"
        run "$name: Envelope decrypts Python's messages" $envelope decrypt "$work/python-to-envelope-$name/manifest.json"
        rm -rf "$work/python-to-envelope-$name/ciphertexts"
    fi
done
# Streaming both ways: Envelope's EncryptingWriter (100 kB writes) -> Python's stream() decryptor;
# Python's stream() encryptor -> Envelope's DecryptingReader (64 KiB chunks).
rm -rf "$work/stream-envelope-to-python" "$work/stream-python-to-envelope"
run "streaming: Envelope stream-encrypts" $envelope encrypt "$work/manifests/streaming.json" --out "$work/stream-envelope-to-python" --stream 100000
run "streaming: Python stream-decrypts Envelope's messages" $py decrypt --stream "$work/stream-envelope-to-python/manifest.json"
rm -rf "$work/stream-envelope-to-python/ciphertexts"
run "streaming: Python stream-encrypts" $py encrypt --stream "$work/manifests/streaming.json" --out "$work/stream-python-to-envelope"
run "streaming: Envelope stream-decrypts Python's messages" $envelope decrypt --stream 65536 "$work/stream-python-to-envelope/manifest.json"
rm -rf "$work/stream-python-to-envelope/ciphertexts"

# Envelope's caching CMM: messages sharing cached data keys (4 messages per key) decrypt in Python
# (and, below, in the JS ESDK).
rm -rf "$work/envelope-cached"
# 162 messages of suites without key derivation bypass the cache; the other 432 share 144 data
# keys: 306 calls to the keyrings, the count the JS ESDK reports below.
expect="(cache: 288 hits, 306 data keys made)" \
    run "cached: Envelope encrypts with cached materials" $envelope encrypt "$work/manifests/cached.json" --out "$work/envelope-cached" --cache 4
run "cached: Python decrypts Envelope's messages" $py decrypt "$work/envelope-cached/manifest.json"

# AWS KMS through the same moto server: the Python ESDK's KMS keyring (MPL) and Envelope's
# AwsKmsKeyring, both ways, every suite.
(
    export AWS_ENDPOINT_URL_KMS="$ENVELOPE_KMS_ENDPOINT" AWS_ACCESS_KEY_ID=envelope-interop \
        AWS_SECRET_ACCESS_KEY=envelope-interop AWS_DEFAULT_REGION=us-west-2 AWS_REGION=us-west-2 \
        ENVELOPE_VECTORS_KMS=1
    strict_skips=1 # every KMS test must run
    # (set -e is off inside a subshell whose status is tested: each set-up step exits on failure.)
    cargo build --locked --quiet -p envelope-vectors --features kms || exit 1
    kms_envelope=target/debug/envelope-vectors
    $py kms-matrix --out "$work/manifests/kms" >/dev/null || exit 1
    rm -rf "$work/kms-envelope" "$work/kms-python-to-envelope" "$work/kms-js-to-envelope"
    fail=0
    run "kms: Envelope encrypts" $kms_envelope encrypt "$work/manifests/kms/kms.json" --out "$work/kms-envelope"
    run "kms: Python decrypts Envelope's messages" $py decrypt "$work/kms-envelope/manifest.json"
    run "kms: Python encrypts" $py encrypt "$work/manifests/kms/kms.json" --out "$work/kms-python-to-envelope"
    run "kms: Envelope decrypts Python's messages" $kms_envelope decrypt "$work/kms-python-to-envelope/manifest.json"
    # The JS ESDK's KmsKeyringNode (AWS SDK for JavaScript v3, which reads AWS_ENDPOINT_URL_KMS).
    run "kms: JS decrypts Envelope's messages" $js decrypt "$work/kms-envelope/manifest.json"
    run "kms: JS encrypts" $js encrypt "$work/manifests/kms/kms.json" --out "$work/kms-js-to-envelope"
    run "kms: Envelope decrypts JS's messages" $kms_envelope decrypt "$work/kms-js-to-envelope/manifest.json"
    rm -rf "$work/kms-envelope/ciphertexts" "$work/kms-python-to-envelope/ciphertexts" "$work/kms-js-to-envelope/ciphertexts"
    exit $fail
) || fail=1

# The JavaScript ESDK (@aws-crypto/client-node 5.0.2, interop/js) on the same keys: its manifests
# (js-both-ways: frame lengths 128, 512 and 4096, 0 B to 1 MiB; js-small-frames: 1 and 7), its
# caching materials manager, and AWS KMS on the same moto server.
echo "== interop with the JS ESDK"
for name in js-both-ways js-small-frames; do
    manifest="$work/manifests/$name.json"
    rm -rf "$work/envelope-to-js-$name" "$work/js-to-envelope-$name"
    run "$name: Envelope encrypts" $envelope encrypt "$manifest" --out "$work/envelope-to-js-$name"
    run "$name: JS decrypts Envelope's messages" $js decrypt "$work/envelope-to-js-$name/manifest.json"
    run "$name: JS encrypts" $js encrypt "$manifest" --out "$work/js-to-envelope-$name"
    run "$name: Envelope decrypts JS's messages" $envelope decrypt "$work/js-to-envelope-$name/manifest.json"
done
# Caching both ways: Envelope's caching CMM (4 messages per data key) -> Node's caching CMM on
# decrypt; Node's caching CMM (4 messages per data key) -> Envelope. Of cached.json's 594 messages,
# the 162 of the three suites without key derivation are never cached (by either SDK, as the
# specification requires) and the other 432 share 144 data keys: 306 in all. On decrypt, Node's
# cache then calls its keyring once per data key.
rm -rf "$work/js-cached-to-envelope"
expect="594 messages under 306 data keys, 306 keyring calls" \
    run "cached: JS decrypts Envelope's messages through its caching CMM" $js decrypt --cache "$work/envelope-cached/manifest.json"
expect="594 messages under 306 data keys, 306 keyring calls" \
    run "cached: JS encrypts through its caching CMM" $js encrypt "$work/manifests/cached.json" --out "$work/js-cached-to-envelope" --cache 4
run "cached: Envelope decrypts JS's messages" $envelope decrypt "$work/js-cached-to-envelope/manifest.json"

# The JS ESDK's raw AES keyring as built by default sorts the encryption context with localeCompare
# for the key-wrapping AAD (aws-encryption-sdk-javascript #428). Exactly the raw AES messages with
# the non-BMP context then fail, both ways, and everything else still reads.
# 66 of cached.json's tests: 11 suites x 6 sizes.
grep -oE '"[0-9a-f]{4}-aes256-ec-nonbmp-[a-z0-9]+"' "$work/manifests/cached.json" | tr -d '"' | sort -u > "$work/js-sorting-expected" || true
expected_failures=$(wc -l < "$work/js-sorting-expected")
tests=$("$venv/bin/python" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["tests"]))' "$work/manifests/cached.json")
expected_passes=$(( tests - expected_failures ))
[ "$expected_failures" = 66 ] || { echo "sorting: FAILED: expected 66 raw AES, non-BMP tests in cached.json, found $expected_failures"; fail=1; }
expect="$expected_passes passed, $expected_failures failed as expected, 0 failed, 0 skipped" \
    run "sorting: JS's default keyring on Envelope's messages" $js decrypt --default-sorting \
    --expect-failures "$work/js-sorting-expected" "$work/envelope-cached/manifest.json"
rm -rf "$work/js-sorting-to-envelope"
run "sorting: JS encrypts with its default keyring" $js encrypt --default-sorting "$work/manifests/cached.json" --out "$work/js-sorting-to-envelope"
out=$($envelope decrypt "$work/js-sorting-to-envelope/manifest.json" 2>&1 || true)
if [ "$(echo "$out" | sed -nE 's/^FAIL [^:]*: ([^:]+): .*/\1/p' | sort)" = "$(cat "$work/js-sorting-expected")" ] \
    && [ "$(echo "$out" | tail -n 1)" = "$expected_passes passed, $expected_failures failed, 0 skipped" ]; then
    echo "sorting: Envelope decrypts JS's default-keyring messages but the $(wc -l < "$work/js-sorting-expected") raw AES, non-BMP ones: $(echo "$out" | tail -n 1)"
else
    echo "$out" | grep -E '^FAIL' | head -n 20
    echo "sorting: FAILED: Envelope's failures on JS's default-keyring messages are not exactly the raw AES, non-BMP ones"
    fail=1
fi
rm -rf "$work/envelope-to-js-"*/ciphertexts "$work/js-to-envelope-"*/ciphertexts "$work/envelope-cached/ciphertexts" \
    "$work/js-cached-to-envelope/ciphertexts" "$work/js-sorting-to-envelope/ciphertexts"

echo "== cache ids computed by the Python ESDK"
$py cache-ids --out "$work/cache-ids.json" --count 200
if ENVELOPE_CACHE_ID_CASES="$(pwd)/$work/cache-ids.json" cargo test --locked --quiet -p envelope-cache --test cache_ids -- --nocapture 2>&1 | grep -E "equal the Python|test result"; then :; else fail=1; fi
exit $fail
