#!/usr/bin/env bash
# Installs labmeter's broker config into Debian's mosquitto, for a server without Docker: the
# same mosquitto.conf, acl and conf.d as the compose stack, moved to Debian's paths. As root:
#   bash deploy/mosquitto/install-debian.sh [ROOT]     (ROOT: / by default; the tests use a
#                                                       scratch folder)
# then make the certificates and broker passwords (docs/deployment.md, B.2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${1:-/}
root=${root%/}
etc=$root/etc/mosquitto
data=$root/var/lib/mosquitto

install -d "$etc/conf.d" "$etc/certs" "$data"
# Debian's own mosquitto.conf is kept once, beside ours.
if [ -f "$etc/mosquitto.conf" ] && [ ! -f "$etc/mosquitto.conf.debian" ]; then
  cp "$etc/mosquitto.conf" "$etc/mosquitto.conf.debian"
fi
sed -e "s|/mosquitto/config/|$etc/|" -e "s|/mosquitto/certs/|$etc/certs/|" \
  -e "s|/mosquitto/data/|$data/|" "$here/mosquitto.conf" > "$etc/mosquitto.conf"
install -m 644 "$here/acl" "$etc/acl"
install -m 644 "$here"/conf.d/*.conf "$etc/conf.d/"
# mosquitto writes its persistence there after dropping root.
if id mosquitto >/dev/null 2>&1; then chown mosquitto: "$data"; fi
echo "installed $etc/mosquitto.conf, acl and conf.d/"
