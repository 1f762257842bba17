# Sourced by interop.sh: the JavaScript ESDK (@aws-crypto/client-node 5.0.2, pinned with its
# dependencies in interop/js/package-lock.json) installed with `npm ci` under target/interop/js,
# and $js, the command that runs interop/js/esdk_runner.js against it.
js_dir=target/interop/js
# The pinned AWS SDK for JavaScript v3 packages declare `engines: node >=20`.
if ! command -v node >/dev/null || ! command -v npm >/dev/null \
    || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "error: the JS ESDK interop needs Node.js 20 or later and npm (found: $(node --version 2>/dev/null || echo none))" >&2
    return 1
fi
# installed.lock is written only after npm ci succeeded, so an interrupted install is redone.
if ! cmp -s interop/js/package-lock.json "$js_dir/installed.lock"; then
    echo "== installing the JS ESDK into $js_dir (npm ci)"
    rm -rf "$js_dir"
    mkdir -p "$js_dir"
    cp interop/js/package.json interop/js/package-lock.json "$js_dir/"
    (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp interop/js/package-lock.json "$js_dir/installed.lock"
fi
# Node 18.19.1 / 20.11.1 and later refuse RSA PKCS#1 v1.5 decryption (CVE-2023-46809, the Marvin
# attack), so the JS ESDK cannot unwrap raw RSA PKCS#1 data keys unless the peer process reverts that
# fix; it does, as a test peer only (see interop/README.md).
js_flags=""
if node --security-revert=CVE-2023-46809 -e 0 >/dev/null 2>&1; then
    js_flags="--security-revert=CVE-2023-46809"
fi
js="env NODE_PATH=$PWD/$js_dir/node_modules node $js_flags $PWD/interop/js/esdk_runner.js"
