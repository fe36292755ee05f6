#!/usr/bin/env bash
# Bootstrap, then run the whole test suite (extra arguments go to pytest):
#   bash scripts/test.sh                      # everything
#   bash scripts/test.sh tests/test_simulator.py -x
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
bash scripts/bootstrap.sh
TIMEOUT="${TEST_TIMEOUT:-120}"
if [[ $# -eq 0 ]]; then
    set -- tests
fi
rc=0
.venv/moonraker/bin/python -m pytest -p no:cacheprovider --timeout="$TIMEOUT" "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
    echo "[test] ERROR: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
