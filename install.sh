#!/usr/bin/env bash
# Install moonraker-prometheus into an existing Moonraker on a printer host.
#
#   cd ~ && git clone https://github.com/moonraker-prometheus/moonraker-prometheus
#   ./moonraker-prometheus/install.sh
#
# Checks the layout first and changes nothing when something is missing. Then links the
# component into Moonraker's components folder (hidden from Moonraker's own update check
# through .git/info/exclude, as moonraker-timelapse does), installs what requirements.txt
# lists into Moonraker's virtualenv (today: nothing, the component needs only Moonraker's
# own packages), tags the clone with its version when it has no tags (Moonraker's update
# manager shows `git describe`), adds [prometheus] and an [update_manager] entry to
# moonraker.conf when they are missing, and restarts Moonraker.
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

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
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
CONF="${CONFIG_DIR}/moonraker.conf"
PACKAGE_INIT="${REPO_DIR}/moonraker_prometheus/__init__.py"

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

# Requirement lines of requirements.txt (comments and blank lines dropped).
requirements() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' "${REPO_DIR}/requirements.txt" | grep -v '^$' || true; }

# The port Moonraker listens on: [server] port in moonraker.conf, else Moonraker's default.
moonraker_port() {
    local port=""
    if [ -f "$CONF" ]; then
        port="$(awk '
            /^\[/ { in_server = ($0 ~ /^\[server\][[:space:]]*$/) ; next }
            in_server && /^port[[:space:]]*[:=]/ { sub(/^port[[:space:]]*[:=][[:space:]]*/, ""); sub(/[[:space:]#].*$/, ""); print; exit }
        ' "$CONF")"
    fi
    echo "${port:-7125}"
}

# Moonraker's update manager shows `git describe --tags`: without a tag it invents
# v0.0.0-N-g<sha>-inferred. A clone without tags (its origin has none) gets a local tag
# v<__version__> on the commit that set the version.
ensure_version_tag() {
    git -C "$REPO_DIR" rev-parse --git-dir >/dev/null 2>&1 || return 0
    [ -z "$(git -C "$REPO_DIR" tag -l)" ] || return 0
    local version commit
    version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$PACKAGE_INIT")"
    commit="$(git -C "$REPO_DIR" log -1 --format=%H -S"__version__ = \"${version}\"" -- moonraker_prometheus/__init__.py)"
    if [ -z "$version" ] || [ -z "$commit" ]; then
        echo "No version tag: the update manager will show an inferred version"
        return 0
    fi
    git -C "$REPO_DIR" tag "v${version}" "$commit"
    echo "Tagged v${version} (the update manager shows it as the installed version)"
}

if [ "$UNINSTALL" = 1 ]; then
    [ -d "$COMPONENTS_DIR" ] || die "no Moonraker components folder at ${COMPONENTS_DIR} (use -m DIR)"
    if [ -L "$LINK" ]; then rm -f "$LINK"; echo "Removed ${LINK}"; fi
    if excl="$(exclude_file)" && [ -f "$excl" ]; then
        grep -vxF "$EXCLUDE_ENTRY" "$excl" > "${excl}.tmp" || true
        mv "${excl}.tmp" "$excl"
    fi
    echo "Remove the [prometheus] and [update_manager moonraker-prometheus] sections from moonraker.conf."
    restart_moonraker
    exit 0
fi

# 0. Check everything before changing anything.
[ -d "$COMPONENTS_DIR" ] || die "no Moonraker components folder at ${COMPONENTS_DIR} (use -m DIR)"
if [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
    die "${LINK} exists and is not a link; refusing to replace it"
fi
[ -x "${MOONRAKER_ENV}/bin/python" ] || die "no Moonraker virtualenv at ${MOONRAKER_ENV} (use -e ENV)"
PIP="${MOONRAKER_ENV}/bin/pip"
[ -x "$PIP" ] || PIP="${MOONRAKER_ENV}/bin/pip3"
if [ -n "$(requirements)" ] && [ ! -x "$PIP" ]; then
    die "no pip in Moonraker's virtualenv ${MOONRAKER_ENV} (use -e ENV)"
fi
if [ "$EDIT_CONFIG" = 1 ]; then
    [ -f "$CONF" ] || die "no ${CONF} (use -c CONFIG_DIR, or --no-config)"
    [ -w "$CONF" ] || die "${CONF} is not writable"
fi

# 1. The component link.
ln -sfn "${REPO_DIR}/moonraker_prometheus" "$LINK"
echo "Linked ${LINK} -> ${REPO_DIR}/moonraker_prometheus"

# 2. Keep Moonraker's own repository clean for its update manager.
if excl="$(exclude_file)"; then
    mkdir -p "$(dirname "$excl")"
    touch "$excl"
    grep -qxF "$EXCLUDE_ENTRY" "$excl" || echo "$EXCLUDE_ENTRY" >> "$excl"
fi

# 3. Python requirements of the component, into Moonraker's virtualenv.
if [ -n "$(requirements)" ]; then
    "$PIP" install --disable-pip-version-check -q -r "${REPO_DIR}/requirements.txt"
    echo "Installed requirements.txt into ${MOONRAKER_ENV}"
else
    echo "Nothing to install into ${MOONRAKER_ENV}: the component needs only Moonraker's packages"
fi

# 4. The version the update manager shows.
ensure_version_tag

# 5. moonraker.conf: only sections that are missing, after a backup.
if [ "$EDIT_CONFIG" = 1 ]; then
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
echo "Done: metrics at http://<printer>:$(moonraker_port)/server/metrics"
