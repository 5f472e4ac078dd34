#!/usr/bin/env bash
# Levee against its peers, side by side in one run, on loopback only.
#
# Installs the peers into a cache directory outside the repository (ferrokinesis with cargo,
# kinesis-mock as the npm package kinesis-local, kinesalite with npm), builds Levee (run embedded,
# `levee`, and as a 3-process fleet, `levee-fleet`: control plane, storage node, front-end) and
# levee-bench (release), measures the machine's fdatasync limits, then starts each server in turn
# on a 127.0.0.1 port, runs the same workloads against it, stops it, and writes a Markdown report
# to bench/results/<date>.md (plus the raw JSON lines and, with gnuplot, a PNG chart beside it).
#
# Every setting is an environment variable; see bench/README.md. Examples:
#   bench/compare.sh                                  # everything, 10 s per workload
#   DURATION=3 PEERS="ferrokinesis" bench/compare.sh  # a quick look
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-10}          # measured seconds per workload
WARMUP=${WARMUP:-1}               # unmeasured seconds before each
FSYNC_DURATION=${FSYNC_DURATION:-5}
SHARDS=${SHARDS:-4}
BACKLOG=${BACKLOG:-100000}        # records read back by `get`
SLOW_BACKLOG=${SLOW_BACKLOG:-10000} # backlog for kinesis-mock, which stores ~1k records/s
PEERS=${PEERS:-"levee-fleet ferrokinesis ferrokinesis-durable kinesalite kinesis-mock"}
WORKLOADS=${WORKLOADS:-"put-records-100 put-records-1k put-record get e2e e2e-subscribe growth mixed-1 mixed"}
MIXED_SHARDS=${MIXED_SHARDS:-1000}   # shards of the `mixed` workload
MIXED_RATE=${MIXED_RATE:-10000}      # records/s put by `mixed` (PutRecords of 100)
MIXED_POLL_MS=${MIXED_POLL_MS:-200}  # pause after an empty GetRecords per shard in `mixed`
GROWTH_DURATION=${GROWTH_DURATION:-$((${DURATION%.*} * 2))} # growth runs longer, to let the shard grow
METRICS_IP=127.0.0.5 # Levee's storage admin listener (same port as the target's): /metrics
CACHE=${LEVEE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/levee-bench}
FERROKINESIS_VERSION=${FERROKINESIS_VERSION:-0.7.0}
KINESIS_LOCAL_VERSION=${KINESIS_LOCAL_VERSION:-0.6.2}
KINESALITE_VERSION=${KINESALITE_VERSION:-3.3.3}
BASE_PORT=${BASE_PORT:-4710}
DATE=$(date -u +%Y-%m-%d)
OUT=${OUT:-$ROOT/bench/results/$DATE.md}
RAW=${OUT%.md}.jsonl

export RUST_BACKTRACE=0
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/levee-bench-run.XXXXXX")
RESULTS=$RUN_DIR/results.jsonl
FAILURES=$RUN_DIR/failures.md
LOGS=$RUN_DIR/logs
mkdir -p "$LOGS" "$(dirname "$OUT")"
: >"$RESULTS"
: >"$FAILURES"

SERVER_PID=""
cleanup() {
    stop_server
    rm -rf "$RUN_DIR/data"
}
trap cleanup EXIT

log() { printf '[compare %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() { # target, what, log file: remembered for the report
    local tail=""
    if [[ -n ${3:-} && -f $3 ]]; then
        tail=$(tail -n 5 "$3" | tr '\n`' " '" | cut -c1-400)
    fi
    printf -- '- %s: %s%s\n' "$1" "$2" "${tail:+ — \`$tail\`}" >>"$FAILURES"
    log "FAILED $1: $2"
}

# --- peers -------------------------------------------------------------------------------------

FERRO_BIN=$CACHE/cargo/bin/ferrokinesis
NPM_DIR=$CACHE/npm/node_modules

install_peers() {
    mkdir -p "$CACHE"
    if [[ " $PEERS " == *" ferrokinesis"* ]] && [[ ! -x $FERRO_BIN ]]; then
        log "installing ferrokinesis $FERROKINESIS_VERSION (cargo install, a few minutes)"
        cargo install --locked --root "$CACHE/cargo" --version "$FERROKINESIS_VERSION" ferrokinesis \
            >"$LOGS/install-ferrokinesis.log" 2>&1 ||
            fail ferrokinesis "cargo install ferrokinesis failed" "$LOGS/install-ferrokinesis.log"
    fi
    local want=()
    [[ " $PEERS " == *" kinesalite "* && ! -f $NPM_DIR/kinesalite/cli.js ]] && want+=("kinesalite@$KINESALITE_VERSION")
    [[ " $PEERS " == *" kinesis-mock "* && ! -f $NPM_DIR/kinesis-local/main.js ]] && want+=("kinesis-local@$KINESIS_LOCAL_VERSION")
    if ((${#want[@]})); then
        log "installing ${want[*]} (npm)"
        npm install --no-audit --no-fund --prefix "$CACHE/npm" "${want[@]}" >"$LOGS/install-npm.log" 2>&1 ||
            fail "${want[*]}" "npm install failed" "$LOGS/install-npm.log"
    fi
}

peer_version() {
    case $1 in
    levee | levee-fleet)
        local rev changed
        rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
        changed=$(git -C "$ROOT" status --porcelain --untracked-files=no -- . ':(exclude)bench' ':(exclude)Cargo.toml' ':(exclude)Cargo.lock' 2>/dev/null | wc -l)
        echo "$rev ($changed changed tracked files outside bench/ and the Cargo manifests)"
        ;;
    ferrokinesis*) cargo install --list --root "$CACHE/cargo" 2>/dev/null | sed -n 's/^ferrokinesis v\([^:]*\):.*/\1/p' ;;
    kinesalite) sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$NPM_DIR/kinesalite/package.json" 2>/dev/null ;;
    kinesis-mock) sed -n 's/.*"version" *: *"\([^"]*\)".*/\1/p' "$NPM_DIR/kinesis-local/package.json" 2>/dev/null ;;
    esac
}

# wait_line FILE PREFIX PID: until FILE has a line starting with PREFIX (1 if PID exits first or
# after 60 s).
wait_line() {
    local i
    for ((i = 0; i < 6000; i++)); do
        grep -qs "^$2" "$1" && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

# run_fleet PORT DATA LOG: Levee as a fleet of three processes on loopback, each with its own data
# directory and one shared master key: the control plane on 127.0.0.2:PORT, then (once it
# listens) a storage node on 127.0.0.3:PORT, then (once that is registered) the front-end on
# 127.0.0.1:PORT. Run in the background as the "server" compare.sh starts and stops: on SIGTERM it
# stops all three. The workloads go to the front-end; the server CPU and memory figures cover
# all three processes.
run_fleet() {
    local port=$1 data=$2 log=$3 pids=()
    trap 'kill -TERM "${pids[@]}" 2>/dev/null || true; wait; exit 0' TERM INT
    local key=(--master-key-file "$data/master.key")
    "$LEVEE_BIN" serve --role control --control-listen "127.0.0.2:$port" --admin-listen 127.0.0.2:0 \
        --data-dir "$data/control" "${key[@]}" >"$log.control" 2>&1 &
    pids+=($!)
    wait_line "$log.control" "control listening on" "${pids[0]}" || {
        kill -TERM "${pids[@]}" 2>/dev/null || true
        exit 1
    }
    "$LEVEE_BIN" serve --role storage --control "127.0.0.2:$port" --storage-listen "127.0.0.3:$port" \
        --admin-listen "$METRICS_IP:$port" --data-dir "$data/storage" "${key[@]}" >"$log.storage" 2>&1 &
    pids+=($!)
    wait_line "$log.storage" "registered as storage node" "${pids[1]}" || {
        kill -TERM "${pids[@]}" 2>/dev/null || true
        exit 1
    }
    "$LEVEE_BIN" serve --role frontend --control "127.0.0.2:$port" --listen "127.0.0.1:$port" \
        --admin-listen 127.0.0.4:0 --data-dir "$data/frontend" "${key[@]}" --auth insecure \
        >"$log.frontend" 2>&1 &
    pids+=($!)
    wait
}

# start_server TARGET PORT: starts it in the background, sets SERVER_PID and STARTUP_MS (launch
# to the port accepting connections, polled every 10 ms); 1 if it can't start.
start_server() {
    local target=$1 port=$2 log=$LOGS/$1.log data=$RUN_DIR/data/$1
    mkdir -p "$data"
    local launched_ns
    STARTUP_MS=""
    launched_ns=$(date +%s%N)
    case $target in
    levee)
        "$LEVEE_BIN" serve --listen "127.0.0.1:$port" --admin-listen "$METRICS_IP:$port" --data-dir "$data" >"$log" 2>&1 &
        ;;
    levee-fleet) # a control plane, a storage node and a front-end (on PORT): see run_fleet
        # shellcheck disable=SC2094 # the third argument is only the prefix of its processes' logs
        run_fleet "$port" "$data" "$log" >"$log" 2>&1 &
        ;;
    ferrokinesis) # in memory (its default); binds 0.0.0.0, we only send to 127.0.0.1
        [[ -x $FERRO_BIN ]] || return 1
        "$FERRO_BIN" serve --port "$port" --shard-limit 10000 --log-level warn >"$log" 2>&1 &
        ;;
    ferrokinesis-durable) # WAL + snapshots in a state directory
        [[ -x $FERRO_BIN ]] || return 1
        "$FERRO_BIN" serve --port "$port" --shard-limit 10000 --log-level warn --state-dir "$data" >"$log" 2>&1 &
        ;;
    kinesalite) # in memory (LevelDB memdown); binds all interfaces, we only send to 127.0.0.1
        [[ -f $NPM_DIR/kinesalite/cli.js ]] || return 1
        node "$NPM_DIR/kinesalite/cli.js" --port "$port" --shardLimit 10000 >"$log" 2>&1 &
        ;;
    kinesis-mock) # needs its package directory as cwd (server.json); plain HTTP port + a TLS port
        [[ -f $NPM_DIR/kinesis-local/main.js ]] || return 1
        (cd "$NPM_DIR/kinesis-local" && KINESIS_MOCK_PLAIN_PORT=$port KINESIS_MOCK_TLS_PORT=$((port + 100)) \
            SHARD_LIMIT=10000 LOG_LEVEL=WARN exec node main.js) >"$log" 2>&1 &
        ;;
    *) return 1 ;;
    esac
    SERVER_PID=$!
    local i
    for ((i = 0; i < 6000; i++)); do # up to 60 s
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            SERVER_PID=""
            return 1
        fi
        # The fleet's front-end listens before it is registered with the control plane.
        if [[ $target == levee-fleet ]] && ! grep -qs "^registered as front-end" "$log.frontend"; then
            sleep 0.01
            continue
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            STARTUP_MS=$((($(date +%s%N) - launched_ns) / 1000000))
            return 0
        fi
        sleep 0.01
    done
    stop_server
    return 1
}

# server_line TARGET: a result line with the server's start-up time and its peak resident memory
# (VmHWM of the process compare.sh started; for kinesis-mock and kinesalite that is node).
# For levee-fleet: the sums over its three processes (the peaks of each, summed).
server_line() {
    local hwm_kib rss_kib threads status=("/proc/$SERVER_PID/status")
    if [[ $1 == levee-fleet ]]; then
        status=()
        local kid
        for kid in $(ps -o pid= --ppid "$SERVER_PID"); do status+=("/proc/$kid/status"); done
    fi
    hwm_kib=$(awk '/^VmHWM:/ {s += $2; n++} END {if (n) print s}' "${status[@]}" 2>/dev/null || true)
    rss_kib=$(awk '/^VmRSS:/ {s += $2; n++} END {if (n) print s}' "${status[@]}" 2>/dev/null || true)
    threads=$(awk '/^Threads:/ {s += $2; n++} END {if (n) print s}' "${status[@]}" 2>/dev/null || true)
    printf '{"target":"%s","kind":"server","workload":"server process","params":{"startup_ms":%s,"vmhwm_mib":%s,"vmrss_mib":%s,"threads":%s}}\n' \
        "$1" "${STARTUP_MS:-null}" \
        "$(awk -v k="${hwm_kib:-}" 'BEGIN { if (k == "") print "null"; else printf "%.1f", k / 1024 }')" \
        "$(awk -v k="${rss_kib:-}" 'BEGIN { if (k == "") print "null"; else printf "%.1f", k / 1024 }')" \
        "${threads:-null}" >>"$RESULTS"
}

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    local kid kids # levee-fleet's processes, stopped by their parent on SIGTERM, killed here if not
    kids=$(ps -o pid= --ppid "$SERVER_PID" 2>/dev/null || true)
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    for kid in $kids; do kill -KILL "$kid" 2>/dev/null || true; done
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# --- workloads ---------------------------------------------------------------------------------

run_workload() { # TARGET PORT WORKLOAD
    local target=$1 port=$2 w=$3 backlog=$BACKLOG duration=$DURATION
    [[ $w == growth ]] && duration=$GROWTH_DURATION
    [[ $target == kinesis-mock ]] && backlog=$SLOW_BACKLOG
    local common=(--endpoint "http://127.0.0.1:$port" --target "$target" --server-pid "$SERVER_PID"
        --duration "$duration" --warmup "$WARMUP" --json-out "$RESULTS")
    # Levee's storage node (embedded or the fleet's) reports its fsyncs and group commits.
    [[ $target == levee || $target == levee-fleet ]] && common+=(--metrics-url "http://$METRICS_IP:$port/metrics")
    local args
    case $w in
    put-records-100) args=(put --op put-records --batch-size 500 --record-size 100 --concurrency 8 --shards "$SHARDS") ;;
    put-records-1k) args=(put --op put-records --batch-size 100 --record-size 1024 --concurrency 8 --shards "$SHARDS") ;;
    put-record) args=(put --op put-record --record-size 100 --concurrency 1 --shards "$SHARDS") ;;
    get) args=(get --backlog-records "$backlog" --record-size 100 --shards "$SHARDS") ;;
    e2e) args=(e2e --consumer poll --rate 200 --record-size 100 --shards 1) ;;
    e2e-subscribe) args=(e2e --consumer subscribe --rate 200 --record-size 100 --shards 1) ;;
    mixed) args=(mixed --consumer poll --shards "$MIXED_SHARDS" --rate "$MIXED_RATE" --producers 4 --batch-size 100
        --record-size 100 --poll-interval-ms "$MIXED_POLL_MS") ;;
    mixed-1) # the same load on one shard read by MIXED_SHARDS readers: the threads baseline
        args=(mixed --consumer poll --shards 1 --readers-per-shard "$MIXED_SHARDS" --rate "$MIXED_RATE" --producers 4
            --batch-size 100 --record-size 100 --poll-interval-ms "$MIXED_POLL_MS") ;;
    growth) args=(put --op put-records --batch-size 500 --record-size 100 --concurrency 8 --shards 1 --slices 5) ;;
    *)
        fail "$target" "unknown workload $w"
        return
        ;;
    esac
    log "$target: $w"
    # Bounded: the workload's own deadline, plus stream set-up and backlog fill.
    if ! timeout --kill-after=10 $((${duration%.*} * 3 + 360)) \
        "$BENCH_BIN" "${args[@]}" "${common[@]}" >/dev/null 2>"$LOGS/$target-$w.log"; then
        fail "$target" "workload $w failed" "$LOGS/$target-$w.log"
    fi
    cat "$LOGS/$target-$w.log" >&2
}

# --- the run -----------------------------------------------------------------------------------

install_peers

if [[ -z ${LEVEE_BIN:-} || -z ${BENCH_BIN:-} ]]; then
    log "building levee and levee-bench (release)"
    cargo build --release -p levee -p levee-bench >"$LOGS/build.log" 2>&1 || {
        tail -n 30 "$LOGS/build.log" >&2
        log "build failed; see above"
        exit 1
    }
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
LEVEE_BIN=${LEVEE_BIN:-${TARGET_DIR:-$ROOT/target}/release/levee}
BENCH_BIN=${BENCH_BIN:-${TARGET_DIR:-$ROOT/target}/release/levee-bench}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine limits: fdatasync latency and bandwidth in $RUN_DIR"
mkdir -p "$RUN_DIR/data"
"$BENCH_BIN" fsync --dir "$RUN_DIR/data" --duration "$FSYNC_DURATION" --json-out "$RESULTS" >/dev/null 2>"$LOGS/fsync.log" ||
    fail machine "fsync measurement failed" "$LOGS/fsync.log"
cat "$LOGS/fsync.log" >&2

VERSIONS=()
port=$BASE_PORT
for target in levee $PEERS; do
    port=$((port + 1))
    log "starting $target on 127.0.0.1:$port"
    if ! start_server "$target" "$port"; then
        fail "$target" "did not start (or is not installed)" "$LOGS/$target.log"
        continue
    fi
    VERSIONS+=("$target $(peer_version "$target")")
    for w in $WORKLOADS; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            fail "$target" "server exited before workload $w" "$LOGS/$target.log"
            break
        fi
        run_workload "$target" "$port" "$w"
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        server_line "$target"
    fi
    stop_server
    rm -rf "$RUN_DIR/data/$target"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

"$BENCH_BIN" report --baseline levee --chart-data "$RUN_DIR/chart.tsv" "$RESULTS" >"$RUN_DIR/report.md"
PNG=${OUT%.md}.png
CHART=""
if command -v gnuplot >/dev/null && (($(wc -l <"$RUN_DIR/chart.tsv") > 1)); then
    ncols=$(head -n1 "$RUN_DIR/chart.tsv" | awk -F'\t' '{print NF}')
    if gnuplot >"$LOGS/gnuplot.log" 2>&1 <<GNUPLOT; then
set terminal pngcairo size 1280,640 font "sans,10"
set output "$PNG"
set datafile separator "\t"
set datafile missing "NaN"
set title "records/s per workload, one run on one machine (log scale; higher is better)"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [100:*]
set grid ytics
set key outside right top
set xtics rotate by -15 left
plot for [i=2:$ncols] "$RUN_DIR/chart.tsv" using i:xtic(1) title columnheader(i)
GNUPLOT
        CHART=$(basename "$PNG")
    else
        fail chart "gnuplot failed" "$LOGS/gnuplot.log"
    fi
elif ! command -v gnuplot >/dev/null; then
    log "no gnuplot (apt-get install gnuplot-nox): no chart"
else
    log "no throughput workload in this run: no chart"
fi

{
    echo "# Levee against its peers — $DATE"
    echo
    echo "Produced by \`bench/compare.sh\` (levee-bench: Kinesis JSON over pooled HTTP/1.1, real SigV4, loopback)."
    echo
    echo "**These figures are noisy: the machine is shared (other builds ran during this run) and"
    echo "the generator runs on the same 2 cores as the server. Compare the ratios within this run,"
    echo "not absolute figures across runs.** Levee fsyncs (fdatasync) before it acknowledges; the"
    echo "in-memory peers do not; ferrokinesis-durable writes a WAL."
    echo
    echo "- Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r); load average $LOAD_BEFORE before, $LOAD_AFTER after"
    echo "- Settings: DURATION=${DURATION} s measured + WARMUP=${WARMUP} s per workload, SHARDS=$SHARDS, BACKLOG=$BACKLOG (SLOW_BACKLOG=$SLOW_BACKLOG for kinesis-mock), e2e: 200 PutRecord/s, consumer polls 1 ms after an empty GetRecords; e2e-subscribe: the same producer, an enhanced fan-out consumer on one SubscribeToShard event stream (HTTP/1.1); growth: PutRecords 500 × 100 B, c=8, into 1 shard for GROWTH_DURATION=${GROWTH_DURATION} s in 5 slices; mixed: 4 producers of PutRecords 100 × 100 B at MIXED_RATE=$MIXED_RATE records/s over MIXED_SHARDS=$MIXED_SHARDS shards, a GetRecords consumer per shard pausing MIXED_POLL_MS=$MIXED_POLL_MS ms after an empty answer; mixed-1: the same producers into 1 shard read by MIXED_SHARDS readers (one measured), the threads baseline"
    versions_line=$(printf '%s; ' "${VERSIONS[@]}")
    echo "- Versions: ${versions_line%; }"
    echo "- Reproduce: \`DURATION=$DURATION PEERS=\"$PEERS\" WORKLOADS=\"$WORKLOADS\" bench/compare.sh\`"
    echo
    if [[ -n $CHART ]]; then
        echo "![records/s per workload and server]($CHART)"
        echo
    fi
    cat "$RUN_DIR/report.md"
    if [[ -s $FAILURES ]]; then
        echo
        echo "## What failed in this run"
        echo
        cat "$FAILURES"
    fi
} >"$OUT"
cp "$RESULTS" "$RAW"
log "wrote $OUT, $RAW${CHART:+ and $PNG} (logs in $LOGS)"
