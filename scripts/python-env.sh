# Sourced by test.sh and interop.sh: the Python venv under target/interop/ (the Python ESDK 4.0.7
# and moto, from interop/requirements.txt), aws-encryption-sdk-cli in a venv of its own, and, with
# start_moto, moto's KMS emulator on a free 127.0.0.1 port for the rest of the calling script.

work=target/interop
venv=$work/venv
mkdir -p "$work"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aws_encryption_sdk, aws_cryptographic_material_providers, moto, flask_cors' 2>/dev/null; then
    echo "== creating $venv with the Python ESDK and moto"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r interop/requirements.txt
fi

# aws-encryption-sdk-cli 4.3.0 in a venv of its own: it needs the Python ESDK 3.x.
cli_venv=$work/cli-venv
if [ ! -x "$cli_venv/bin/aws-encryption-cli" ] || ! "$cli_venv/bin/aws-encryption-cli" --version 2>/dev/null | grep -q 'aws-encryption-sdk-cli/4.3.0'; then
    echo "== creating $cli_venv with aws-encryption-sdk-cli"
    python3 -m venv "$cli_venv"
    "$cli_venv/bin/pip" install --quiet --disable-pip-version-check -r interop/requirements-cli.txt
fi

# Start moto (patched for multi-Region keys) unless ENVELOPE_KMS_ENDPOINT already names one; export
# ENVELOPE_KMS_ENDPOINT and stop the server when the calling script exits.
start_moto() {
    if [ -n "${ENVELOPE_KMS_ENDPOINT:-}" ]; then
        return 0
    fi
    local port
    port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$venv/bin/python" interop/moto_server.py "$port" >"$work/moto.log" 2>&1 &
    moto_pid=$!
    trap 'kill $moto_pid 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
            export ENVELOPE_KMS_ENDPOINT="http://127.0.0.1:$port"
            echo "moto KMS emulator at $ENVELOPE_KMS_ENDPOINT (pid $moto_pid)"
            return 0
        fi
        sleep 0.2
    done
    echo "moto did not start; its log:" >&2
    cat "$work/moto.log" >&2
    return 1
}
