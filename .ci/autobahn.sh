#!/usr/bin/env bash
# Start the release binary on a free loopback port and run the strict
# Autobahn fuzzingclient against /echo (categories 1-11; 12 and 13 are
# permessage-deflate, which Switchboard does not negotiate).
# Usage: .ci/autobahn.sh path/to/switchboard
set -euo pipefail
bin="$1"
conformance="$(cd "$(dirname "$0")/.." && pwd)/conformance"
log="$(mktemp /tmp/switchboard-autobahn.XXXXXX.log)"

# Case 9 sends messages of up to 16 MiB; a small board's defaults are
# 1 MiB per echo and 64 MiB buffered in all.
"$bin" --listen 127.0.0.1:0 --log-level info --db :memory: --connect-rate 0 \
    --echo-max-message 16MiB --max-buffered 256MiB 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT

addr=""
for _ in $(seq 1 100); do
  addr="$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$log" | head -n 1)"
  [ -n "$addr" ] && break
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "autobahn.sh: the server did not start; its log:" >&2
  cat "$log" >&2
  exit 1
fi
echo "autobahn.sh: server pid $pid on $addr"
AUTOBAHN_STRICT=1 bash "$conformance/run.sh" --agent switchboard "ws://$addr/echo"
# The server must have survived the whole run.
kill -0 "$pid"
