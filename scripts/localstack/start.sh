#!/usr/bin/env bash
# Starts LocalStack (S3 + SQS + SNS + Secrets Manager) on the host, no Docker, no internet: a venv from
# exact pins (created once, re-created when constraints.txt changes), the server in the
# background on 127.0.0.1:$LOCALSTACK_PORT, waits until S3, SQS, SNS and Secrets Manager run, and
# prints its PID on stdout (progress goes to stderr). Stop it with stop.sh PID.
#
# localstack-core 4.13.1 is the newest release that runs on Python 3.11. Pins that
# matter: cbor2<5.7 (LocalStack imports cbor2._decoder), pyOpenSSL 26.1.0 (26.2
# dropped X509.add_extensions).
#
# Env: LOCALSTACK_PORT (4566), LS_PYTHON (python3), LS_START_TIMEOUT (120 s),
#      EMU_DIR (<repo>/.emulators: venv, log, pid).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EMU_DIR=${EMU_DIR:-$(cd "$HERE/../.." && pwd)/.emulators}
PORT=${LOCALSTACK_PORT:-4566}
PY=${LS_PYTHON:-python3}
TIMEOUT=${LS_START_TIMEOUT:-120}
CONSTRAINTS=$HERE/constraints.txt
VENV=$EMU_DIR/venv-localstack
LOG=$EMU_DIR/localstack-$PORT.log
LS_VERSION=$(sed -n 's/^localstack-core==//p' "$CONSTRAINTS")
FS_ROOT=$VENV/localstack-fs   # LocalStack's cache/lib/tmp/state dirs in host mode

log() { echo "[localstack] $*" >&2; }
mkdir -p "$EMU_DIR"

STAMP=$(sha256sum "$CONSTRAINTS" | cut -c1-16)
if [ "$(cat "$VENV/.pins" 2>/dev/null)" != "$STAMP" ]; then
  log "creating $VENV (localstack-core==$LS_VERSION, $("$PY" --version 2>&1))"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  # moto-ext: LocalStack's SNS provider is built on it (notifications are tested on SNS).
  "$VENV/bin/pip" install -q --disable-pip-version-check -c "$CONSTRAINTS" \
      "localstack-core[base-runtime]==$LS_VERSION" "moto-ext==$(sed -n 's/^moto-ext==//p' "$CONSTRAINTS")" >&2
  "$VENV/bin/python" -c 'import localstack.aws.components, localstack.services.sqs.provider, localstack.services.s3.provider, localstack.services.sns.provider, localstack.services.secretsmanager.provider' >&2
  # Pre-build the service catalog: otherwise the first start parses every botocore
  # model (+5 s, ~480 MB RSS).
  mkdir -p "$FS_ROOT/usr/lib/localstack"
  env OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$FS_ROOT" "$VENV/bin/python" -m localstack.aws.spec >&2
  echo "$STAMP" > "$VENV/.pins"
fi

if "$VENV/bin/python" -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(0 if s.connect_ex(('127.0.0.1',$PORT))==0 else 1)"; then
  log "port $PORT is already in use; not starting (set LOCALSTACK_PORT)"; exit 1
fi

# OVERRIDE_IN_DOCKER=0: the machine has /.dockerenv; use FILESYSTEM_ROOT, not /var/lib/localstack.
# GATEWAY_SERVER=hypercorn: the host-mode gateway. EAGER_SERVICE_LOADING: "running" means ready.
# DNS_ADDRESS=0, DISABLE_EVENTS, SKIP_SSL_CERT_DOWNLOAD: no DNS server, no outbound calls.
# LOCALSTACK_HOST + SQS_ENDPOINT_STRATEGY=path: queue URLs http://127.0.0.1:PORT/queue/<region>/<acct>/<name>.
# S3 bodies go to the hard-coded /tmp/localstack-s3-storage/<bucket>: use distinct bucket names.
env GATEWAY_SERVER=hypercorn GATEWAY_LISTEN="127.0.0.1:$PORT" SERVICES=s3,sqs,sns,secretsmanager \
    EAGER_SERVICE_LOADING=1 DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
    LOCALSTACK_HOST="127.0.0.1:$PORT" SQS_ENDPOINT_STRATEGY=path SQS_DISABLE_CLOUDWATCH_METRICS=1 \
    OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$FS_ROOT" \
    setsid "$VENV/bin/python" -m localstack.runtime.main >"$LOG" 2>&1 </dev/null &
PID=$!

"$VENV/bin/python" - "$PORT" "$PID" "$TIMEOUT" <<'PYEOF' || { log "not healthy; see $LOG"; tail -n 20 "$LOG" >&2; kill "$PID" 2>/dev/null || true; exit 1; }
import json, os, sys, time, urllib.request
port, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.time() + timeout
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("server process exited")
    try:
        h = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/_localstack/health", timeout=2))
        if all(h["services"].get(s) == "running" for s in ("s3", "sqs", "sns", "secretsmanager")):
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit("timeout")
PYEOF
log "localstack-core $LS_VERSION healthy on http://127.0.0.1:$PORT, pid $PID, log $LOG"
echo "$PID"
