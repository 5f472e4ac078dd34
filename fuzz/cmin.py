"""Minimises a queue to a corpus that reaches every edge the queue reaches (hit counts ignored,
as afl-cmin -e), by a greedy cover. Usage: python3 cmin.py TARGET QUEUE_DIR OUT_DIR
(needs the instrumented binary in $CARGO_TARGET_DIR/release/TARGET)."""
import os, shutil, subprocess, sys, tempfile

target, queue, out = sys.argv[1:4]
binary = os.path.join(os.environ["CARGO_TARGET_DIR"], "release", target)
maps = tempfile.mkdtemp()
env = dict(os.environ, AFL_SKIP_CPUFREQ="1")
subprocess.run(["cargo", "afl", "showmap", "-q", "-e", "-t", "5000", "-i", queue, "-o", maps,
                "--", binary], env=env, check=False, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
edges = {}
for name in sorted(os.listdir(queue)):
    path = os.path.join(queue, name)
    if not os.path.isfile(path) or not os.path.exists(os.path.join(maps, name)):
        continue
    with open(os.path.join(maps, name)) as f:
        edges[path] = {line.split(":")[0] for line in f}
# Greedy cover: repeatedly keep the input that reaches the most not-yet-reached edges per byte.
seen, keep = set(), []
left = dict(edges)
while left:
    path = max(left, key=lambda p: (len(left[p] - seen) / (os.path.getsize(p) + 16), p))
    new = left.pop(path) - seen
    if not new:
        break
    seen |= new
    keep.append(path)
    left = {p: e for p, e in left.items() if e - seen}
best = seen
os.makedirs(out, exist_ok=True)
for i, p in enumerate(keep):
    shutil.copy(p, os.path.join(out, f"{i:04}"))
shutil.rmtree(maps)
print(f"{target}: {len(best)} edges, {len(keep)} inputs kept")
