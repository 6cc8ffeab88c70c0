#!/usr/bin/env bash
# Stops LocalStack (or moto) by the PID its start.sh printed: SIGTERM, then SIGKILL
# after ${STOP_TIMEOUT:-10} s (LocalStack's gateway can hang in shutdown; nothing is
# persisted).
set -u
PID=${1:?usage: stop.sh PID}
kill -TERM "$PID" 2>/dev/null || exit 0
for _ in $(seq 1 $(( ${STOP_TIMEOUT:-10} * 5 ))); do
  kill -0 "$PID" 2>/dev/null || exit 0
  sleep 0.2
done
echo "[stop] $PID ignored SIGTERM; sending SIGKILL" >&2
kill -KILL "$PID" 2>/dev/null || true
