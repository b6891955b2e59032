#!/usr/bin/env bash
# How long `spoke --demo` takes from launch to its first frame, as a whole
# process in a real terminal: each run starts the demo in a fresh tmux
# session at 160x48 and polls the screen every 10 ms until the brief queue
# is drawn. Prints each run and the median.
#
#   benches/demo-start.sh [RUNS] [BINARY]
#
# RUNS defaults to 5, BINARY to target/release/spoke (build it first with
# `cargo build --release`). Needs tmux.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-5}
BIN=${2:-$ROOT/target/release/spoke}
command -v tmux >/dev/null || { echo "demo-start: install tmux" >&2; exit 1; }
[ -x "$BIN" ] || { echo "demo-start: no $BIN; run cargo build --release" >&2; exit 1; }

SOCKET="spoke-demo-start-$$"
WORK=$(mktemp -d)
trap 'tmux -L "$SOCKET" kill-server 2>/dev/null || true; rm -rf "$WORK"' EXIT
: >"$WORK/config.toml"

times=()
for run in $(seq 1 "$RUNS"); do
    start=$(date +%s%N)
    tmux -L "$SOCKET" new-session -d -s demo -x 160 -y 48 \
        "$BIN --config $WORK/config.toml --demo --home $WORK/home-$run"
    until tmux -L "$SOCKET" capture-pane -p -t demo 2>/dev/null | grep -q "Briefs 2[0-9]/"; do
        sleep 0.01
        if [ $(( ($(date +%s%N) - start) / 1000000 )) -gt 60000 ]; then
            echo "demo-start: no first frame within 60 s" >&2
            tmux -L "$SOCKET" capture-pane -p -t demo >&2 || true
            exit 1
        fi
    done
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    times+=("$ms")
    echo "run $run: ${ms} ms"
    tmux -L "$SOCKET" send-keys -t demo q
    while tmux -L "$SOCKET" has-session -t demo 2>/dev/null; do sleep 0.05; done
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median of $RUNS: ${median} ms (launch to first frame, 160x48)"
