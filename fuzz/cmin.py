"""Minimises a queue to a corpus, as afl-cmin -e does: for every edge seen (hit counts ignored),
keep the smallest input that reaches it. Usage: python3 cmin.py TARGET QUEUE_DIR OUT_DIR
(needs the instrumented binary in $CARGO_TARGET_DIR/release/TARGET)."""
import os, shutil, subprocess, sys, tempfile

target, queue, out = sys.argv[1:4]
binary = os.path.join(os.environ["CARGO_TARGET_DIR"], "release", target)
maps = tempfile.mkdtemp()
env = dict(os.environ, AFL_SKIP_CPUFREQ="1")
subprocess.run(["cargo", "afl", "showmap", "-q", "-e", "-t", "5000", "-i", queue, "-o", maps,
                "--", binary], env=env, check=False, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
best = {}
for name in sorted(os.listdir(queue)):
    path = os.path.join(queue, name)
    if not os.path.isfile(path) or not os.path.exists(os.path.join(maps, name)):
        continue
    size = os.path.getsize(path)
    with open(os.path.join(maps, name)) as f:
        for line in f:
            edge = line.split(":")[0]
            if edge not in best or size < best[edge][0]:
                best[edge] = (size, path)
keep = sorted({p for _, p in best.values()})
os.makedirs(out, exist_ok=True)
for i, p in enumerate(keep):
    shutil.copy(p, os.path.join(out, f"{i:04}"))
shutil.rmtree(maps)
print(f"{target}: {len(best)} edges, {len(keep)} inputs kept")
