#!/usr/bin/env bash
# Install soundsentry as a service on a Raspberry Pi OS / Debian machine: sudo deploy/install.sh [SOURCE]
# SOURCE: what pip installs (default: this checkout). Re-running upgrades in place and keeps the config.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
here="$(cd "$(dirname "$0")" && pwd)"
source="${1:-$here/..}"

apt-get install -y --no-install-recommends python3-venv portaudio19-dev
id soundsentry >/dev/null 2>&1 || useradd --system --no-create-home --groups audio soundsentry
[ -x /opt/soundsentry/bin/python ] || python3 -m venv /opt/soundsentry
/opt/soundsentry/bin/pip install --upgrade "$source"

install -d -m 755 /etc/soundsentry
[ -f /etc/soundsentry/config.toml ] || install -m 644 "$here/config.toml" /etc/soundsentry/config.toml
if [ ! -f /etc/soundsentry/mqtt-password ]; then
    install -m 640 -g soundsentry /dev/null /etc/soundsentry/mqtt-password
    echo "install.sh: put the broker password in /etc/soundsentry/mqtt-password" >&2
fi
install -m 644 "$here/soundsentry.service" /etc/systemd/system/soundsentry.service
systemctl daemon-reload
systemctl enable soundsentry
/opt/soundsentry/bin/soundsentry run --config /etc/soundsentry/config.toml --print-config >/dev/null  # config must load
systemctl restart soundsentry
echo "install.sh: running; follow it with: journalctl -u soundsentry -f"
