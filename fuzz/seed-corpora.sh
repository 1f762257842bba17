#!/usr/bin/env bash
# Builds the seed corpora under fuzz/corpus/<target>/ from the shared test vectors
# ($ENVELOPE_VECTORS, else ../shared/vectors). The vectors are never copied into the repository:
# corpus/ is ignored by git. Each seed is laid out as its target reads its input
# (see crates/envelope-properties).
set -euo pipefail
cd "$(dirname "$0")"
vectors="${ENVELOPE_VECTORS:-../../shared/vectors}"
if [ ! -d "$vectors" ]; then
    echo "error: test vectors not found at $vectors (set ENVELOPE_VECTORS)" >&2
    exit 1
fi
python3 - "$vectors" <<'PY'
import hashlib, os, struct, sys
from pathlib import Path

vectors = Path(sys.argv[1])
out = Path("corpus")
targets = ["header_round_trip", "frames_and_footer", "encryption_context", "decrypt_one_shot",
           "streaming_decrypt", "caching_cmm_model"]
for t in targets:
    (out / t).mkdir(parents=True, exist_ok=True)

def put(target, data):
    name = hashlib.sha1(data).hexdigest()
    (out / target / name).write_bytes(data)

def header_parts(m):
    """(header length, frame length, aad bytes) of an ESDK message, or None."""
    try:
        v = m[0]
        at = 1 if v == 2 else 2
        suite = struct.unpack(">H", m[at:at + 2])[0]; at += 2
        at += 32 if v == 2 else 16
        aad_len = struct.unpack(">H", m[at:at + 2])[0]; at += 2
        aad = m[at:at + aad_len]; at += aad_len
        count = struct.unpack(">H", m[at:at + 2])[0]; at += 2
        for _ in range(count):
            for _ in range(3):
                n = struct.unpack(">H", m[at:at + 2])[0]; at += 2 + n
        at += 1  # content type
        if v == 1:
            at += 5
        frame = struct.unpack(">I", m[at:at + 4])[0]; at += 4
        if v == 2:
            at += 32
        at += 16 if v == 2 else 28
        return at, frame, aad
    except Exception:
        return None

messages = []
for path in sorted(vectors.rglob("*")):
    if not path.is_file() or path.suffix in (".json", ".md", ".pem"):
        continue
    if "ciphertext" not in str(path).lower():
        continue
    data = path.read_bytes()
    if 0 < len(data) <= 64 * 1024 and data[0] in (1, 2):
        messages.append(data)
# Keep the corpora small enough to start fast: the distinct shapes, not every vector.
seen = set()
kept = []
for m in messages:
    parts = header_parts(m)
    shape = (m[:3], len(m) // 512, parts[1] if parts else None)
    if shape in seen:
        continue
    seen.add(shape)
    kept.append((m, parts))
for m, parts in kept:
    put("header_round_trip", bytes([6]) + m)
    put("decrypt_one_shot", m)
    put("streaming_decrypt", bytes([2, 6, 255, 0]) + m)
    put("streaming_decrypt", bytes([1, 0, 1]) + m)
    if parts:
        header_len, frame, aad = parts
        put("frames_and_footer", struct.pack(">I", frame) + m[header_len:])
        if aad:
            put("encryption_context", aad)
for seed in range(16):
    put("caching_cmm_model", hashlib.sha512(bytes([seed])).digest() * 2)
for t in targets:
    print(f"{t}: {len(os.listdir(out / t))} seeds")
PY
