#!/usr/bin/env bash
# Bootstrap, then run the whole test suite (extra arguments go to pytest):
#   bash scripts/test.sh                      # everything
#   bash scripts/test.sh tests/test_simulator.py -x
#   bash scripts/test.sh -m unit              # the fast tests, in seconds
#
# Without arguments, five legs run, each in its own pytest process: every test but the slow
# ones with the printer tests on Klipper (Moonraker 0.11.0; tests/test_moonraker_versions.py
# starts 0.8.0, 0.9.3 and 0.10.0 too); the slow ones; the printer tests again on Kalico;
# and, where bootstrap could build them, the component's tests on Python 3.9 with
# Moonraker 0.10.0, then with Moonraker 0.9.3 (Moonraker's component API has not changed
# since 0.9; 0.11 needs Python 3.10). The live printer tests spend most of their time waiting for simulated
# heaters and motion, so the Klipper leg runs beside the other four (one after the other);
# each leg's output is printed when it ends.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
bash scripts/bootstrap.sh
TIMEOUT="${TEST_TIMEOUT:-120}"
PY39_TESTS=(tests/test_component.py tests/test_component_exporters.py
            tests/test_component_exporter_faults.py tests/test_ready_window.py
            tests/test_printer_integration.py tests/test_moonraker_collectors.py
            tests/test_catalogue.py tests/test_exposition.py tests/test_printer_collector.py
            tests/test_printer_readers.py tests/test_moonraker_unit.py tests/test_placeholders.py
            tests/test_sensor_labels.py tests/test_go_migration.py tests/test_merge_freeze.py
            tests/test_regex_linearity.py tests/sidecar)

run_pytest() {  # run_pytest PYTHON ARGS...: pytest's exit code, with "no tests" a failure
    local python="$1" rc=0; shift
    "$python" -m pytest -p no:cacheprovider --timeout="$TIMEOUT" "$@" || rc=$?
    if [[ $rc -eq 5 ]]; then
        echo "[test] ERROR: pytest collected no tests" >&2
        return 1
    fi
    return "$rc"
}

if [[ $# -gt 0 ]]; then
    run_pytest .venv/moonraker/bin/python "$@"
    exit $?
fi
LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT

leg() {  # leg NAME PYTHON ARGS...: one pytest process, output and exit code in $LOGS
    local name="$1" rc=0; shift
    run_pytest "$@" --basetemp="$LOGS/tmp-$name" >"$LOGS/$name.log" 2>&1 || rc=$?
    echo "$rc" >"$LOGS/$name.rc"
}

# The slow tests (no process of their own, minutes of CPU: the merge's fast-path sweep,
# the regex timing, the promtool corpus) run beside the printer tests, not after them.
leg klipper .venv/moonraker/bin/python tests --klippy-flavour=klipper -m "not slow" &
klipper_pid=$!
{
    leg slow .venv/moonraker/bin/python tests -m slow
    # the tests parametrized by flavour, on Kalico (their ids carry "kalico")
    leg kalico .venv/moonraker/bin/python tests --klippy-flavour=kalico -k kalico
    # the component's tests on older Moonrakers (bootstrap's .venv/NAME.unavailable: none
    # could be built); the differential promtool test (marked slow) checks pure-Python
    # parsing: once is enough
    for old in py39:moonraker-py39 mr093:moonraker-0.9; do
        venv="${old#*:}"
        if [[ -x ".venv/$venv/bin/python" && ! -f ".venv/$venv.unavailable" ]]; then
            MOONRAKER_PROMETHEUS_MOONRAKER_VENV="$venv" \
                leg "${old%%:*}" ".venv/$venv/bin/python" "${PY39_TESTS[@]}" -m "not slow"
        fi
    done
} &
others_pid=$!
wait "$klipper_pid" "$others_pid" || true

rc=0
for name in slow kalico py39 mr093 klipper; do
    case "$name" in
        slow) title="Slow leg: the slow tests (merge sweep, regex timing, promtool corpus)" ;;
        kalico) title="Kalico leg: the printer tests on Kalico" ;;
        py39) title="Python 3.9 + Moonraker 0.10.0 leg"; venv=moonraker-py39 ;;
        mr093) title="Python 3.9 + Moonraker 0.9.3 leg"; venv=moonraker-0.9 ;;
        klipper) title="Main leg: every test but the slow ones, printer tests on Klipper" ;;
    esac
    if [[ ! -f "$LOGS/$name.rc" ]]; then
        echo "[test] $title: skipped ($(cat ".venv/$venv.unavailable" 2>/dev/null \
            || echo "bootstrap built no .venv/$venv"))"
        continue
    fi
    echo "[test] ===== $title ====="
    cat "$LOGS/$name.log"
    leg_rc="$(cat "$LOGS/$name.rc")"
    [[ "$leg_rc" == 0 ]] || rc="$leg_rc"
done
exit "$rc"
