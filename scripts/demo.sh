#!/usr/bin/env bash
# Bootstrap, then run the simulated printer (real Klippy against simulated MCUs) +
# Moonraker with the component on 127.0.0.1:${PORT:-7125} until Ctrl-C.  The printer
# heats, homes and prints simulator/gcodes/cube_5_layers.gcode.  Extra arguments go to
# simulator/run.py (--flavour kalico, --print pause_print.gcode, --prometheus ...).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# only what the demo runs (scripts/test.sh installs everything); Kalico only when asked for
kalico=0
[[ "${FLAVOUR:-}" == kalico || " $* " == *" kalico "* || " $* " == *"--flavour=kalico"* ]] && kalico=1
BOOTSTRAP_PROFILE=demo BOOTSTRAP_KALICO="$kalico" bash scripts/bootstrap.sh
export PORT="${PORT:-7125}"
child=""
cleanup() {
    if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
.venv/moonraker/bin/python simulator/run.py --port "$PORT" "$@" &
child=$!
rc=0
wait "$child" || rc=$?
child=""
exit "$rc"
