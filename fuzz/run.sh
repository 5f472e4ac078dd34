#!/usr/bin/env bash
# Runs one AFL++ target until it has run at least MIN_SECS (default 600) and found nothing new
# for QUIET_SECS (default 180), or MAX_SECS (default 1800) passed; prints the final stats.
# Usage: fuzz/run.sh TARGET [SEED_DIR]   (after `cargo afl build --release` in fuzz/)
set -euo pipefail
target=$1
here=$(cd "$(dirname "$0")" && pwd)
seeds=${2:-$here/corpus/$target}
out=${AFL_OUT:-$HOME/.cache/levee/afl-out}/$target
bin=${CARGO_TARGET_DIR:-$here/target}/release/$target
min=${MIN_SECS:-600} quiet=${QUIET_SECS:-180} max=${MAX_SECS:-1800}
rm -rf "$out"
mkdir -p "$(dirname "$out")"
AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  nice cargo afl fuzz -i "$seeds" -o "$out" -t 2000 -- "$bin" > "$out.log" 2>&1 &
pid=$!
stats=$out/default/fuzzer_stats
start=$(date +%s)
while kill -0 $pid 2>/dev/null; do
  sleep 15
  [ -f "$stats" ] || continue
  now=$(date +%s)
  # The newest queue entry is the last new find (fuzzer_stats lags by up to a minute).
  last_find=$(stat -c %Y "$out"/default/queue/id* | sort -n | tail -1)
  [ "$last_find" -lt "$start" ] && last_find=$start
  if [ $((now - start)) -ge "$min" ] && [ $((now - last_find)) -ge "$quiet" ]; then break; fi
  if [ $((now - start)) -ge "$max" ]; then break; fi
done
# SIGINT to afl-fuzz itself (the cargo-afl wrapper does not forward it): AFL writes its stats.
for child in $(pgrep -P $pid); do kill -INT "$child" 2>/dev/null || true; done
wait $pid || true
now=$(date +%s)
echo "target=$target wall_secs=$((now - start)) since_last_find=$((now - $(awk -F' *: *' '$1=="last_find"{print $2}' "$stats")))"
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg|edges_found|total_edges|last_find|stability)' "$stats"
