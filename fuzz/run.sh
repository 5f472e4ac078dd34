#!/usr/bin/env bash
# Runs one AFL++ target until it has run at least MIN_SECS (default 600) and found no new edge
# for QUIET_SECS (default 180), or MAX_SECS (default 1800) passed; prints the final stats and the
# executions done since the last new edge (so a quiet window on a starved machine shows as such).
# Coverage is edges (AFL's `edges_found`, sampled every few seconds in plot_data); new queue entries
# that only change an edge's hit-count bucket are not new coverage.
# Usage: fuzz/run.sh TARGET [SEED_DIR...]   (after `cargo afl build --release` in fuzz/)
# Several seed directories are merged (e.g. the committed corpus and a previous run's queue).
set -euo pipefail
target=$1
here=$(cd "$(dirname "$0")" && pwd)
shift
out=${AFL_OUT:-$HOME/.cache/levee/afl-out}/$target
bin=${CARGO_TARGET_DIR:-$here/target}/release/$target
min=${MIN_SECS:-600} quiet=${QUIET_SECS:-180} max=${MAX_SECS:-1800}
rm -rf "$out" "$out.seeds"
mkdir -p "$(dirname "$out")" "$out.seeds"
for dir in "${@:-$here/corpus/$target}"; do
  for f in "$dir"/*; do [ -f "$f" ] && cp "$f" "$out.seeds/$(sha1sum < "$f" | cut -c1-16)"; done
done
seeds=$out.seeds
AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  nice cargo afl fuzz -i "$seeds" -o "$out" -t 2000 -- "$bin" > "$out.log" 2>&1 &
pid=$!
stats=$out/default/fuzzer_stats
plot=$out/default/plot_data
start=$(date +%s)
edges=-1 edge_time=$start edge_execs=0
while kill -0 $pid 2>/dev/null; do
  sleep 15
  [ -f "$plot" ] || continue
  now=$(date +%s)
  # plot_data columns: relative_time ... total_execs (12), edges_found (13).
  read -r cur_execs cur_edges < <(awk -F', *' '!/^#/{e=$12; g=$13} END{print e+0, g+0}' "$plot")
  if [ "$cur_edges" != "$edges" ]; then edges=$cur_edges edge_time=$now edge_execs=$cur_execs; fi
  if [ $((now - start)) -ge "$min" ] && [ $((now - edge_time)) -ge "$quiet" ]; then break; fi
  if [ $((now - start)) -ge "$max" ]; then break; fi
done
# SIGINT to afl-fuzz itself (the cargo-afl wrapper does not forward it): AFL writes its stats.
for child in $(pgrep -P $pid); do kill -INT "$child" 2>/dev/null || true; done
wait $pid || true
now=$(date +%s)
final_execs=$(awk -F' *: *' '$1=="execs_done"{print $2}' "$stats")
echo "target=$target wall_secs=$((now - start)) secs_since_new_edge=$((now - edge_time))" \
  "execs_since_new_edge=$((final_execs - edge_execs))"
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg|edges_found|total_edges|last_find|stability)' "$stats"
