#!/usr/bin/env bash
# Build Switchboard, the load generator and every peer, then run every
# scenario against every server in interleaved rounds (bench/bench.py).
#
#   bench/run.sh            quick mode (under 2 minutes)
#   bench/run.sh full       full mode (under 15 minutes), written to bench/results/DATE.md
#
# Then the cluster's cost (bench/cluster.py: one node vs three and a Redis).
#
# Installs what it needs: Debian's libpoco-dev, libboost-dev and redis-server (when missing), the npm
# package ws into bench/peers/node, and websockets into bench/.venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
mode="${1:-quick}"
shift || true

# A C++ peer (DIR/server.cpp -> DIR/server) is compiled only when its
# source changed: Beast is header-only and takes about 30 s.
compile() {
  local dir="$1"
  shift
  if [ ! -x "$dir/server" ] || [ "$dir/server.cpp" -nt "$dir/server" ]; then
    g++ -O2 -std=c++17 "$dir/server.cpp" -o "$dir/server" "$@"
  fi
}

echo "== building Switchboard and the load generator"
(cd "$root" && cargo build --release --quiet && cargo build --release --quiet --example loadgen)

echo "== peer: Rust thread-per-connection on tungstenite"
(cd "$here/peers/tungstenite" && cargo build --release --quiet)

echo "== peer: Poco C++"
if [ ! -e /usr/include/Poco/Net/WebSocket.h ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpoco-dev >/dev/null
fi
compile "$here/peers/poco" -lPocoNet -lPocoFoundation -lpthread

echo "== peer: Boost.Beast"
if [ ! -e /usr/include/boost/beast.hpp ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libboost-dev >/dev/null
fi
compile "$here/peers/beast" -lpthread

echo "== peer: Node ws"
(cd "$here/peers/node" && npm ci --no-audit --no-fund --silent)

echo "== peer: Python websockets"
if [ ! -x "$here/.venv/bin/python" ]; then python3 -m venv "$here/.venv"; fi
"$here/.venv/bin/pip" install -q -r "$here/peers/python/requirements.txt"

out=()
if [ "$mode" = full ]; then
  out=(--out "$here/results/$(date -u +%Y-%m-%d).md")
fi
echo "== running ($mode)"
python3 "$here/bench.py" "$mode" "${out[@]}" "$@"

# The cluster's cost (issue 18): one node vs three nodes and one Redis.
if ! command -v redis-server >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
cluster_out=()
if [ "$mode" = full ]; then
  cluster_out=(--out "$here/results/$(date -u +%Y-%m-%d)-cluster.md")
fi
echo "== cluster ($mode)"
python3 "$here/cluster.py" "$mode" "${cluster_out[@]}"
