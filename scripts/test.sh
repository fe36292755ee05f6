#!/usr/bin/env bash
# Bootstrap, then run the whole test suite (extra arguments go to pytest):
#   bash scripts/test.sh                      # everything
#   bash scripts/test.sh tests/test_simulator.py -x
#
# Without arguments, the printer tests run on Klipper and Kalico, and a second leg follows where bootstrap could build it: the component's
# tests again with pytest and Moonraker 0.10.0 on Python 3.9, the oldest pair printer hosts
# run (Moonraker 0.11 needs Python 3.10).
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
            tests/test_sensor_labels.py tests/test_go_migration.py
            tests/sidecar)

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
rc=0
run_pytest .venv/moonraker/bin/python tests --klippy-flavour=all || rc=$?
if [[ -x .venv/moonraker-py39/bin/python ]]; then
    echo "[test] Python 3.9 + Moonraker 0.10.0 leg"
    MOONRAKER_PROMETHEUS_MOONRAKER_VENV=moonraker-py39 \
        run_pytest .venv/moonraker-py39/bin/python "${PY39_TESTS[@]}" || rc=$?
else
    echo "[test] Python 3.9 leg skipped: bootstrap found no Python 3.9 interpreter"
fi
exit "$rc"
