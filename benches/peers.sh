#!/usr/bin/env bash
# Relay fan-out side by side: the Spoke relay, y-sweet 0.9.1, the y-websocket
# server (@y/websocket-server 0.1.1) and nats-server (core and JetStream),
# each driven in its own protocol by server/benches/fanout (the generator).
#
# Installs missing peers into a cache outside the repo, starts each on
# 127.0.0.1 pinned to core 0 (the generator runs on core 1), runs the same
# matrix for each (N subscribers x payload size, publisher rate stepped up
# until p99 > 100 ms or fewer than 99.9% delivered), stops it, and prints one
# table. A peer that fails to install or start is reported and skipped.
#
#   benches/peers.sh [--quick] [--peers "spoke y-sweet y-websocket nats nats-jetstream"]
#                    [--subscribers 100,500,1000] [--payloads 200,4096] [--seconds 5]
#                    [--rate 100000 [--repeat 3]] [--nats-nodes 3|1]
#
# The relay on JetStream: peers `spoke-js` (one relay) and `spoke-js2` (two
# relays serving one hub, publisher on A, subscribers split over A and B),
# each on a NATS cluster of --nats-nodes nodes (default 3, one copy per
# node) that the generator starts on loopback; every relay and NATS node on
# core 0. For them (and `spoke`) a second table splits CPU: each relay's
# µs per delivery it made, and the NATS nodes' µs per op published.
#
# With --rate, every server instead gets the same load (that many deliveries
# per second) --repeat times, each on a fresh server process, and a second
# table gives the median of the runs: the fair place to compare CPU per
# delivery, since a server that falls behind batches more and spends less.
#
# Environment: PEERS_QUICK=1 (10,100 subscribers, 200 B, 2 s steps),
# PEERS, PEERS_SUBSCRIBERS, PEERS_PAYLOADS, PEERS_SECONDS, PEERS_START_RATE,
# PEERS_MAX_RATE, PEERS_RATE, PEERS_REPEAT, PEERS_NATS_NODES, SPOKE_PEERS_CACHE (default ~/.cache/spoke-peers),
# PEERS_OUT (results folder; default under the cache).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${SPOKE_PEERS_CACHE:-$HOME/.cache/spoke-peers}
QUICK=${PEERS_QUICK:-0}
PEERS=${PEERS:-"spoke y-sweet y-websocket nats nats-jetstream"}
SUBSCRIBERS=${PEERS_SUBSCRIBERS:-}
PAYLOADS=${PEERS_PAYLOADS:-}
STEP_SECONDS=${PEERS_SECONDS:-}
START_RATE=${PEERS_START_RATE:-25000}
MAX_RATE=${PEERS_MAX_RATE:-3200000}
RATE=${PEERS_RATE:-}
REPEAT=${PEERS_REPEAT:-3}
NATS_NODES=${PEERS_NATS_NODES:-3}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --peers) PEERS=$2; shift ;;
        --subscribers) SUBSCRIBERS=$2; shift ;;
        --payloads) PAYLOADS=$2; shift ;;
        --seconds) STEP_SECONDS=$2; shift ;;
        --rate) RATE=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        --nats-nodes) NATS_NODES=$2; shift ;;
        -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
        *) echo "peers.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    SUBSCRIBERS=${SUBSCRIBERS:-10,100}
    PAYLOADS=${PAYLOADS:-200}
    STEP_SECONDS=${STEP_SECONDS:-2}
else
    SUBSCRIBERS=${SUBSCRIBERS:-100,500,1000}
    PAYLOADS=${PAYLOADS:-200,4096}
    STEP_SECONDS=${STEP_SECONDS:-5}
fi

OUT=${PEERS_OUT:-$CACHE/results-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$CACHE" "$OUT" || { echo "peers.sh: cannot create $CACHE or $OUT" >&2; exit 1; }
ROWS=$OUT/rows.md
SPLIT=$OUT/split.md
STEPS=$OUT/steps.log
: > "$ROWS"
: > "$SPLIT"
: > "$STEPS"

# Ports on loopback for the peers; checked free before each start.
YSWEET_PORT=18480
YWS_PORT=18481
NATS_WS_PORT=18482
NATS_PORT=18483

say() { printf '%s\n' "$*" >&2; }
fail_row() { # peer, reason: one row that says why a peer has no numbers
    printf '| %s | | %s | %s | not run: %s | | | | | | | | |\n' "$1" "$SUBSCRIBERS" "$PAYLOADS" "$2" >> "$ROWS"
    say "peers.sh: $1: $2"
}

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
TASKSET=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    TASKSET=(taskset -c 0)
    GEN_TASKSET=(taskset -c 1)
else
    say "peers.sh: no taskset or fewer than 2 cores; server and generator will share cores"
    GEN_TASKSET=()
fi

# --- the generator ---------------------------------------------------------
say "peers.sh: building the fan-out generator (cargo bench --no-run)"
BENCH=$(cd "$ROOT" && cargo bench -p spoke-relay --bench fanout --no-run --message-format=json 2>"$OUT/build.log" |
    jq -r 'select(.executable != null and .target.name == "fanout") | .executable' | tail -1)
if [ -z "$BENCH" ] || [ ! -x "$BENCH" ]; then
    say "peers.sh: building the generator failed; see $OUT/build.log"
    tail -20 "$OUT/build.log" >&2
    exit 1
fi

# --- installing the peers (outside the repo) -------------------------------
YSWEET_BIN=$CACHE/y-sweet/bin/y-sweet
YWS_DIR=$CACHE/y-websocket
YWS_SERVER=$YWS_DIR/node_modules/@y/websocket-server/src/server.js

install_ysweet() {
    [ -x "$YSWEET_BIN" ] && return 0
    command -v cargo >/dev/null || { say "cargo not found"; return 1; }
    say "peers.sh: installing y-sweet 0.9.1 into $CACHE/y-sweet (about 5 min on 2 cores)"
    cargo install y-sweet --version 0.9.1 --locked --root "$CACHE/y-sweet" >"$CACHE/y-sweet-install.log" 2>&1 ||
        { tail -5 "$CACHE/y-sweet-install.log" >&2; return 1; }
    [ -x "$YSWEET_BIN" ]
}

install_ywebsocket() {
    [ -f "$YWS_SERVER" ] && return 0
    command -v npm >/dev/null && command -v node >/dev/null || { say "node/npm not found"; return 1; }
    say "peers.sh: installing @y/websocket-server 0.1.1 into $YWS_DIR"
    mkdir -p "$YWS_DIR" &&
        { [ -f "$YWS_DIR/package.json" ] || echo '{"name":"spoke-peer-ywebsocket","private":true}' > "$YWS_DIR/package.json"; } &&
        (cd "$YWS_DIR" && npm i @y/websocket-server@0.1.1 yjs@13 ws >"$CACHE/y-websocket-install.log" 2>&1) ||
        { tail -5 "$CACHE/y-websocket-install.log" >&2; return 1; }
    [ -f "$YWS_SERVER" ]
}

install_nats() {
    command -v nats-server >/dev/null && return 0
    say "peers.sh: installing nats-server with apt-get"
    { apt-get update -qq && apt-get install -y nats-server; } >"$CACHE/nats-install.log" 2>&1 ||
        { tail -5 "$CACHE/nats-install.log" >&2; return 1; }
    command -v nats-server >/dev/null
}

# --- starting and stopping -------------------------------------------------
PEER_PID=
PEER_ADDR=
PEER_DATA=
START_ERROR=

port_free() { ! ss -ltn 2>/dev/null | awk '{print $4}' | grep -q "[:.]$1\$"; }

wait_listening() { # port, log: wait for the port, fail if the peer died
    local port=$1 log=$2 i
    for i in $(seq 1 150); do
        if ! kill -0 "$PEER_PID" 2>/dev/null; then
            START_ERROR="exited during start-up, see $log"
            say "peers.sh: the server exited during start-up; last lines of $log:"
            tail -10 "$log" >&2
            return 1
        fi
        port_free "$port" || return 0
        sleep 0.1
    done
    START_ERROR="not listening on 127.0.0.1:$port after 15 s, see $log"
    say "peers.sh: nothing listening on 127.0.0.1:$port after 15 s; last lines of $log:"
    tail -10 "$log" >&2
    return 1
}

start_peer() { # peer, label: sets PEER_PID and PEER_ADDR
    local peer=$1 label=$2 log
    PEER_DATA=$OUT/data/$label
    rm -rf "$PEER_DATA" && mkdir -p "$PEER_DATA"
    log=$OUT/$label.server.log
    case "$peer" in
        y-sweet)
            port_free $YSWEET_PORT || { START_ERROR="port $YSWEET_PORT is taken"; return 1; }
            "${TASKSET[@]}" "$YSWEET_BIN" serve "$PEER_DATA" --host 127.0.0.1 --port $YSWEET_PORT \
                >"$log" 2>&1 </dev/null &
            PEER_PID=$!
            PEER_ADDR=127.0.0.1:$YSWEET_PORT
            wait_listening $YSWEET_PORT "$log"
            ;;
        y-websocket)
            port_free $YWS_PORT || { START_ERROR="port $YWS_PORT is taken"; return 1; }
            env HOST=127.0.0.1 PORT=$YWS_PORT "${TASKSET[@]}" node "$YWS_SERVER" >"$log" 2>&1 </dev/null &
            PEER_PID=$!
            PEER_ADDR=127.0.0.1:$YWS_PORT
            wait_listening $YWS_PORT "$log"
            ;;
        nats|nats-jetstream)
            port_free $NATS_WS_PORT && port_free $NATS_PORT || { START_ERROR="port $NATS_PORT or $NATS_WS_PORT is taken"; return 1; }
            {
                echo "listen: 127.0.0.1:$NATS_PORT"
                echo "websocket { listen: \"127.0.0.1:$NATS_WS_PORT\", no_tls: true }"
                [ "$peer" = nats-jetstream ] && echo "jetstream { store_dir: \"$PEER_DATA/js\" }"
            } > "$PEER_DATA/nats.conf"
            "${TASKSET[@]}" nats-server -c "$PEER_DATA/nats.conf" >"$log" 2>&1 </dev/null &
            PEER_PID=$!
            PEER_ADDR=127.0.0.1:$NATS_WS_PORT
            wait_listening $NATS_WS_PORT "$log"
            ;;
    esac
}

stop_peer() {
    if [ -n "$PEER_PID" ] && kill -0 "$PEER_PID" 2>/dev/null; then
        kill "$PEER_PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$PEER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PEER_PID" 2>/dev/null
        wait "$PEER_PID" 2>/dev/null
    fi
    PEER_PID=
    [ -n "$PEER_DATA" ] && rm -rf "$PEER_DATA"
    PEER_DATA=
}
trap 'stop_peer' EXIT
trap 'stop_peer; exit 130' INT TERM

# --- the matrix ------------------------------------------------------------
run_bench() { # extra generator arguments...
    if [ -n "$RATE" ]; then
        "${GEN_TASKSET[@]}" "$BENCH" --no-header --seconds "$STEP_SECONDS" \
            --deliveries-per-sec "$RATE" "$@" >>"$ROWS" 2> >(tee -a "$STEPS" >&2)
    else
        "${GEN_TASKSET[@]}" "$BENCH" --step-up --no-header --seconds "$STEP_SECONDS" \
            --start-rate "$START_RATE" --max-rate "$MAX_RATE" "$@" >>"$ROWS" 2> >(tee -a "$STEPS" >&2)
    fi
}
RUNS=1
[ -n "$RATE" ] && RUNS=$REPEAT

for peer in $PEERS; do
    case "$peer" in
        spoke) ;;
        spoke-js|spoke-js2) install_nats || { fail_row "$peer" "nats-server install failed"; continue; } ;;
        y-sweet) install_ysweet || { fail_row "$peer" "install failed"; continue; } ;;
        y-websocket) install_ywebsocket || { fail_row "$peer" "install failed"; continue; } ;;
        nats|nats-jetstream) install_nats || { fail_row "$peer" "install failed"; continue; } ;;
        *) fail_row "$peer" "unknown peer (spoke, spoke-js, spoke-js2, y-sweet, y-websocket, nats, nats-jetstream)"; continue ;;
    esac
    for n in ${SUBSCRIBERS//,/ }; do
        for size in ${PAYLOADS//,/ }; do
          for run in $(seq 1 "$RUNS"); do
            say "peers.sh: $peer, $n subscribers, $size B (run $run of $RUNS); load average $(cut -d' ' -f1-3 /proc/loadavg)"
            echo "load average before $peer N=$n $size B run $run: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$STEPS"
            case "$peer" in
                spoke|spoke-js|spoke-js2)
                    # The generator starts the relays (and NATS) itself, on core 0.
                    run_bench --target "$peer" --nats-nodes "$NATS_NODES" --split-rows "$SPLIT" \
                        --subscribers "$n" --payload-bytes "$size"
                    continue ;;
            esac
            START_ERROR=
            if ! start_peer "$peer" "$peer-$n-$size"; then
                printf '| %s | | %s | %s | not run: failed to start: %s | | | | | | | | |\n' \
                    "$peer" "$n" "$size" "${START_ERROR:-see $OUT}" >> "$ROWS"
                say "peers.sh: $peer failed to start: ${START_ERROR:-see $OUT}"
                stop_peer
                continue
            fi
            run_bench --target "$peer" --addr "$PEER_ADDR" --pid "$PEER_PID" \
                --subscribers "$n" --payload-bytes "$size"
            stop_peer
          done
        done
    done
done
wait 2>/dev/null

# Medians of the repeated same-rate runs: server, N, payload -> p50, p99,
# CPU per delivery, RSS, generator CPU, and the worst delivered/expected.
medians() {
    awk -F'|' '
        function trim(x) { gsub(/^ +| +$/, "", x); return x }
        $2 ~ /[a-z]/ && $6 ~ /^ *[0-9]+ *$/ {
            k = trim($2) "|" trim($4) "|" trim($5)
            if (!(k in n)) order[++keys] = k
            i = ++n[k]
            p50[k, i] = trim($8); p99[k, i] = trim($9); cpu[k, i] = trim($11)
            rss[k, i] = trim($12); gen[k, i] = trim($13)
            split(trim($7), de, "/")
            if (!(k in worst) || de[1] / de[2] < ratio[k]) { worst[k] = trim($7); ratio[k] = de[1] / de[2] }
        }
        function med(a, k, m,   v, j, t, c) {
            c = 0
            for (j = 1; j <= m; j++) v[++c] = a[k, j] + 0
            for (j = 2; j <= c; j++) { t = v[j]; for (x = j - 1; x >= 1 && v[x] > t; x--) v[x + 1] = v[x]; v[x + 1] = t }
            return (c % 2) ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
        }
        END {
            print "| server | subscribers | payload B | runs | worst delivered/expected | p50 ms | p99 ms | server CPU µs per delivery | server peak RSS MiB | generator CPU % |"
            print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
            for (o = 1; o <= keys; o++) {
                k = order[o]; split(k, f, "|"); m = n[k]
                printf "| %s | %s | %s | %d | %s | %.2f | %.2f | %.2f | %.1f | %.0f |\n", f[1], f[2], f[3], m, worst[k],
                    med(p50, k, m), med(p99, k, m), med(cpu, k, m), med(rss, k, m), med(gen, k, m)
            }
        }' "$ROWS"
}

# Medians of the repeated split rows: setup, N, payload, load -> every
# numeric column's median, the worst delivered/expected.
split_medians() {
    awk -F'|' '
        function trim(x) { gsub(/^ +| +$/, "", x); return x }
        function med(k, c, m,   v, j, t, x, n2) {
            n2 = 0
            for (j = 1; j <= m; j++) if (val[k, j, c] != "–") v[++n2] = val[k, j, c] + 0
            if (n2 == 0) return "–"
            for (j = 2; j <= n2; j++) { t = v[j]; for (x = j - 1; x >= 1 && v[x] > t; x--) v[x + 1] = v[x]; v[x + 1] = t }
            return sprintf("%.2f", (n2 % 2) ? v[(n2 + 1) / 2] : (v[n2 / 2] + v[n2 / 2 + 1]) / 2)
        }
        $2 ~ /[a-z]/ {
            k = trim($2) "|" trim($3) "|" trim($4) "|" trim($5)
            if (!(k in n)) order[++keys] = k
            i = ++n[k]
            for (c = 6; c <= 19; c++) val[k, i, c] = trim($c)
            split(trim($7), de, "/")
            if (!(k in worst) || de[1] / de[2] < ratio[k]) { worst[k] = trim($7); ratio[k] = de[1] / de[2] }
        }
        END {
            for (o = 1; o <= keys; o++) {
                k = order[o]; m = n[k]; label = k; gsub(/\|/, " | ", label)
                line = "| " label " | " m " | " med(k, 6, m) " | " worst[k]
                for (c = 8; c <= 19; c++) line = line " | " med(k, c, m)
                print line " |"
            }
        }' "$SPLIT"
}

{
    echo
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; server on core 0, generator on core 1."
    if [ -n "$RATE" ]; then
        echo "Same load for every server: $RATE deliveries/s, subscribers $SUBSCRIBERS; payloads $PAYLOADS B; $STEP_SECONDS s per run, $RUNS runs each on a fresh server process."
        echo
        "$BENCH" --header-only
        cat "$ROWS"
        echo
        echo "Medians of the $RUNS runs:"
        echo
        medians
    else
        echo "Matrix: subscribers $SUBSCRIBERS; payloads $PAYLOADS B; $STEP_SECONDS s per step from $START_RATE deliveries/s, doubling (then one step between the last pass and the first failure) until p99 > 100 ms or < 99.9% delivered, at most $MAX_RATE/s."
        echo
        "$BENCH" --header-only
        cat "$ROWS"
    fi
    if [ -s "$SPLIT" ]; then
        echo
        echo "CPU by process (relays and NATS nodes all on core 0; NATS: $NATS_NODES node(s), one copy per node):"
        echo
        "$BENCH" --split-header-only
        cat "$SPLIT"
        if [ -n "$RATE" ]; then
            echo
            echo "Medians of the $RUNS runs:"
            echo
            echo "| setup | subscribers | payload B | load | runs | deliveries/s | worst delivered/expected | p99 ms | relay A µs per delivery | relay A deliveries/s | relay A CPU % | relay B µs per delivery | relay B deliveries/s | relay B CPU % | NATS CPU µs per op | NATS CPU % | ops/s | NATS idle CPU % | NATS µs per op net of idle |"
            echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
            split_medians
        fi
    fi
} | tee "$OUT/table.md"
say "peers.sh: table in $OUT/table.md, every step in $STEPS"
