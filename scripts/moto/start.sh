#!/usr/bin/env bash
# Starts moto's server on the host, no Docker, no internet: the second S3 implementation
# the store contract runs against (LocalStack is the first). A venv from exact pins
# (created once, re-created when constraints.txt changes), the server in the background
# on 127.0.0.1:$MOTO_PORT, waits until it answers, and prints its PID on stdout
# (progress goes to stderr). Stop it with scripts/localstack/stop.sh PID.
#
# moto 5.2.5, with only what its server needs for S3 (moto[s3] + flask, flask-cors:
# 140 MB instead of moto[server]'s 317 MB). Unlike LocalStack and AWS, it accepts
# wrong checksums and returns no multipart composite checksum: the contract passing on
# it shows repovault works with a less complete S3, not that checksums are checked.
#
# Env: MOTO_PORT (5000), MOTO_PYTHON (python3), MOTO_START_TIMEOUT (60 s),
#      EMU_DIR (<repo>/.emulators: venv, log).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EMU_DIR=${EMU_DIR:-$(cd "$HERE/../.." && pwd)/.emulators}
PORT=${MOTO_PORT:-5000}
PY=${MOTO_PYTHON:-python3}
TIMEOUT=${MOTO_START_TIMEOUT:-60}
CONSTRAINTS=$HERE/constraints.txt
VENV=$EMU_DIR/venv-moto
LOG=$EMU_DIR/moto-$PORT.log
MOTO_VERSION=$(sed -n 's/^moto==//p' "$CONSTRAINTS")

log() { echo "[moto] $*" >&2; }
mkdir -p "$EMU_DIR"

STAMP=$(sha256sum "$CONSTRAINTS" | cut -c1-16)
if [ "$(cat "$VENV/.pins" 2>/dev/null)" != "$STAMP" ]; then
  log "creating $VENV (moto==$MOTO_VERSION, $("$PY" --version 2>&1))"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -c "$CONSTRAINTS" \
      "moto[s3]==$MOTO_VERSION" flask flask-cors >&2
  "$VENV/bin/python" -c 'import moto.server, moto.s3' >&2
  echo "$STAMP" > "$VENV/.pins"
fi

if "$VENV/bin/python" -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(0 if s.connect_ex(('127.0.0.1',$PORT))==0 else 1)"; then
  log "port $PORT is already in use; not starting (set MOTO_PORT)"; exit 1
fi

# One server for every service moto has; buckets live in memory only.
setsid "$VENV/bin/python" -m moto.server -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 </dev/null &
PID=$!

"$VENV/bin/python" - "$PORT" "$PID" "$TIMEOUT" <<'PYEOF' || { log "not healthy; see $LOG"; tail -n 20 "$LOG" >&2; kill "$PID" 2>/dev/null || true; exit 1; }
import os, sys, time, urllib.request
port, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.time() + timeout
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("server process exited")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=2).read()
        sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit("timeout")
PYEOF
log "moto $MOTO_VERSION healthy on http://127.0.0.1:$PORT, pid $PID, log $LOG"
echo "$PID"
