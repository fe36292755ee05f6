#!/usr/bin/env bash
# Install moonraker-prometheus into an existing Moonraker on a printer host.
#
# Links the component into Moonraker's components folder (hidden from Moonraker's own
# update check through .git/info/exclude, as moonraker-timelapse does), installs the Python
# requirements into Moonraker's virtualenv, adds [prometheus] and an [update_manager]
# entry to moonraker.conf when they are missing, and restarts Moonraker.
#
#   ./install.sh                      default layout: ~/moonraker, ~/moonraker-env,
#                                     ~/printer_data/config, service "moonraker"
#   ./install.sh -m DIR -e ENV -c CONFIG_DIR -s SERVICE
#   ./install.sh --no-config          do not touch moonraker.conf
#   ./install.sh --no-restart         do not restart Moonraker
#   ./install.sh --uninstall          remove the link (moonraker.conf is left to you)
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MOONRAKER_DIR="${HOME}/moonraker"
MOONRAKER_ENV="${HOME}/moonraker-env"
CONFIG_DIR="${HOME}/printer_data/config"
SERVICE="moonraker"
EDIT_CONFIG=1
RESTART=1
UNINSTALL=0

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        -m|--moonraker) MOONRAKER_DIR="$2"; shift 2 ;;
        -e|--env) MOONRAKER_ENV="$2"; shift 2 ;;
        -c|--config) CONFIG_DIR="$2"; shift 2 ;;
        -s|--service) SERVICE="$2"; shift 2 ;;
        --no-config) EDIT_CONFIG=0; shift ;;
        --no-restart) RESTART=0; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown argument '$1'" >&2; usage 2 ;;
    esac
done

COMPONENTS_DIR="${MOONRAKER_DIR}/moonraker/components"
LINK="${COMPONENTS_DIR}/prometheus"
EXCLUDE_ENTRY="moonraker/components/prometheus"

[ -d "$COMPONENTS_DIR" ] || die "no Moonraker components folder at ${COMPONENTS_DIR} (use -m DIR)"

exclude_file() {
    local gitdir
    gitdir="$(git -C "$MOONRAKER_DIR" rev-parse --git-dir 2>/dev/null)" || return 1
    case "$gitdir" in /*) ;; *) gitdir="${MOONRAKER_DIR}/${gitdir}" ;; esac
    echo "${gitdir}/info/exclude"
}

restart_moonraker() {
    [ "$RESTART" = 1 ] || return 0
    if command -v systemctl >/dev/null 2>&1 && systemctl list-unit-files "${SERVICE}.service" >/dev/null 2>&1; then
        echo "Restarting ${SERVICE}"
        sudo systemctl restart "$SERVICE"
    else
        echo "No systemd service '${SERVICE}' found: restart Moonraker yourself"
    fi
}

if [ "$UNINSTALL" = 1 ]; then
    if [ -L "$LINK" ]; then rm -f "$LINK"; echo "Removed ${LINK}"; fi
    if excl="$(exclude_file)" && [ -f "$excl" ]; then
        grep -vxF "$EXCLUDE_ENTRY" "$excl" > "${excl}.tmp" || true
        mv "${excl}.tmp" "$excl"
    fi
    echo "Remove the [prometheus] and [update_manager moonraker-prometheus] sections from moonraker.conf."
    restart_moonraker
    exit 0
fi

# 1. The component link.
if [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
    die "${LINK} exists and is not a link; refusing to replace it"
fi
ln -sfn "${REPO_DIR}/moonraker_prometheus" "$LINK"
echo "Linked ${LINK} -> ${REPO_DIR}/moonraker_prometheus"

# 2. Keep Moonraker's own repository clean for its update manager.
if excl="$(exclude_file)"; then
    mkdir -p "$(dirname "$excl")"
    touch "$excl"
    grep -qxF "$EXCLUDE_ENTRY" "$excl" || echo "$EXCLUDE_ENTRY" >> "$excl"
fi

# 3. Python requirements, into Moonraker's virtualenv.
PIP="${MOONRAKER_ENV}/bin/pip"
[ -x "$PIP" ] || PIP="${MOONRAKER_ENV}/bin/pip3"
[ -x "$PIP" ] || die "no pip in Moonraker's virtualenv ${MOONRAKER_ENV} (use -e ENV)"
"$PIP" install --disable-pip-version-check -q -r "${REPO_DIR}/requirements.txt"
echo "Installed requirements into ${MOONRAKER_ENV}"

# 4. moonraker.conf: only sections that are missing, after a backup.
if [ "$EDIT_CONFIG" = 1 ]; then
    CONF="${CONFIG_DIR}/moonraker.conf"
    [ -f "$CONF" ] || die "no ${CONF} (use -c CONFIG_DIR, or --no-config)"
    ORIGIN="$(git -C "$REPO_DIR" remote get-url origin 2>/dev/null || echo "$REPO_DIR")"
    BRANCH="$(git -C "$REPO_DIR" rev-parse --abbrev-ref HEAD 2>/dev/null || echo main)"
    added=""
    if ! grep -q '^\[prometheus\]' "$CONF"; then
        added="${added}
[prometheus]
# Metrics at /server/metrics on Moonraker's port; see moonraker.conf.example for options.
"
    fi
    if ! grep -q '^\[update_manager moonraker-prometheus\]' "$CONF"; then
        added="${added}
[update_manager moonraker-prometheus]
type: git_repo
path: ${REPO_DIR}
origin: ${ORIGIN}
primary_branch: ${BRANCH}
managed_services: moonraker
virtualenv: ${MOONRAKER_ENV}
requirements: requirements.txt
"
    fi
    if [ -n "$added" ]; then
        cp "$CONF" "${CONF}.bak-moonraker-prometheus"
        printf '%s' "$added" >> "$CONF"
        echo "Added sections to ${CONF} (backup: ${CONF}.bak-moonraker-prometheus)"
    else
        echo "${CONF} already has [prometheus] and its update_manager entry"
    fi
fi

restart_moonraker
echo "Done: metrics at http://<printer>:7125/server/metrics"
