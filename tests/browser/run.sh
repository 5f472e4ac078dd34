#!/usr/bin/env bash
# The browser suite: installs what it needs (Chromium from the distribution, playwright-core
# from npm into a cache outside the repo), then renders /status in headless Chromium.
# Usage: tests/browser/run.sh   (LEVEE_BIN, LEVEE_PYTHON optional; LEVEE_UPDATE_SCREENSHOT=1
# also writes docs/status.png)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${LEVEE_NODE_CACHE:-$HOME/.cache/levee/node}"

chromium_bin() { command -v chromium || command -v chromium-browser || true; }
if [ -z "$(chromium_bin)" ]; then
  if [ "$(id -u)" = 0 ]; then
    for try in 1 2 3; do
      if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; then
        break
      fi
      echo "apt-get failed (try $try); retrying" >&2
      sleep 5
    done
  else
    sudo -n apt-get update -qq && sudo -n apt-get install -y -qq chromium
  fi
fi
CHROMIUM_BIN="$(chromium_bin)"
[ -n "$CHROMIUM_BIN" ] || { echo "chromium is not installed" >&2; exit 1; }

mkdir -p "$cache"
cp "$here/package.json" "$cache/package.json"
if ! cmp -s "$here/package.json" "$cache/.installed" 2>/dev/null || [ ! -d "$cache/node_modules/playwright-core" ]; then
  for try in 1 2 3; do
    if npm install --prefix "$cache" --no-audit --no-fund --loglevel=error; then
      cp "$here/package.json" "$cache/.installed"
      break
    fi
    echo "npm install failed (try $try); retrying" >&2
    sleep 5
  done
fi
[ -d "$cache/node_modules/playwright-core" ] || { echo "playwright-core is not installed" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-$repo/target}"
export LEVEE_BIN="${LEVEE_BIN:-$target/debug/levee}"
[ -x "$LEVEE_BIN" ] || (cd "$repo" && cargo build -p levee)
export LEVEE_PYTHON="${LEVEE_PYTHON:-${LEVEE_VENV:-$HOME/.cache/levee/venv}/bin/python}"
export LEVEE_NODE_MODULES="$cache/node_modules"
export CHROMIUM_BIN
exec node --test --test-reporter=spec "$here/status.test.mjs"
