#!/usr/bin/env bash
# Build the one-folder app (dist/edgeapp/) with PyInstaller and smoke-check the built program.
# Usage: packaging/build.sh [--no-build]   (--no-build: only smoke-check an existing build)
# Needs the `app` and `package` extras: pip install -e '.[app,package]'. PYTHON picks the
# interpreter (default python3). Exit code: 0 built and checked, else the failing step's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
APP=dist/edgeapp/edgeapp
SMOKE="$(mktemp -d "${TMPDIR:-/tmp}/edgeapp-smoke.XXXXXX")"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$SMOKE"' EXIT

if [ "${1:-}" != "--no-build" ]; then
  start=$(date +%s)
  "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/pyinstaller/edgeapp.spec
  echo "build: $(( $(date +%s) - start )) s"
fi
[ -x "$APP" ] || { echo "build: $APP is missing" >&2; exit 1; }
echo "build: dist/edgeapp is $(du -sh dist/edgeapp | cut -f1) ($(du -sb dist/edgeapp | cut -f1) bytes)"

# A config for the smoke runs: its own sockets and data folder, so nothing else on this
# machine (a running demo on :5555) is touched; 2 stations, 1 local worker.
cat > "$SMOKE/headless.yaml" <<YAML
stations:
  - {name: smoke-1, source: synthetic}
  - {name: smoke-2, source: synthetic}
data_dir: $SMOKE/data
distributed:
  producer_bind: ipc://$SMOKE/p.sock
  collector_bind: ipc://$SMOKE/c.sock
  local_workers: 1
YAML

# check_run NAME: the run's summary (NAME.json) says frames were detected, and its log
# (NAME.log) holds no error: a part that fails to load frozen (a plugin, the AIF) logs one.
check_run() {
  if grep -E "Traceback| ERROR |CRITICAL" "$SMOKE/$1.log" >&2; then
    echo "smoke: $1: the run logged errors (above); its log: " >&2; tail -20 "$SMOKE/$1.log" >&2
    return 1
  fi
  "$PY" - "$SMOKE/$1.json" "$1" <<'PYCHECK'
import json, sys
summary = json.load(open(sys.argv[1]))
shown = {k: summary.get(k) for k in ("orders", "by_status", "verdict_accuracy", "frames_per_s",
                                 "controller")}
print(f"smoke: {sys.argv[2]}: {json.dumps(shown)}")
if not summary.get("frames_per_s"):
    sys.exit(f"smoke: {sys.argv[2]}: no frame was detected")
PYCHECK
}

echo "smoke: $APP --headless --duration 20 --json (1 local worker)"
"$APP" --config "$SMOKE/headless.yaml" --headless --duration 20 --json \
  > "$SMOKE/headless.json" 2> "$SMOKE/headless.log" \
  || { echo "smoke: headless exited with $?" >&2; tail -20 "$SMOKE/headless.log" >&2; exit 1; }
check_run headless

# The built worker against an engine with no local workers of its own: every frame the
# engine reports detected went through the built `--worker`.
sed 's/local_workers: 1/local_workers: 0/' "$SMOKE/headless.yaml" > "$SMOKE/remote.yaml"
echo "smoke: $APP --worker, feeding a headless engine that has local_workers 0"
"$APP" --config "$SMOKE/remote.yaml" --headless --duration 20 --json \
  > "$SMOKE/remote.json" 2> "$SMOKE/remote.log" &
engine=$!
"$APP" --worker --connect "ipc://$SMOKE/p.sock" --name smoke-worker --connect-timeout 60 \
  2> "$SMOKE/worker.log" &
worker=$!
wait "$engine" || { echo "smoke: headless exited with $?" >&2; tail -20 "$SMOKE/remote.log" >&2; exit 1; }
# The engine sends END when it stops: the worker leaves with 0.
wait "$worker" || { echo "smoke: the worker exited with $?" >&2; tail -20 "$SMOKE/worker.log" >&2; exit 1; }
check_run remote
echo "smoke: ok"
