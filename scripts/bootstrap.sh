#!/usr/bin/env bash
# Installs what labmeter's demo and tests need on a Debian/Ubuntu machine:
# the real mosquitto and influxd binaries (apt, when missing and when root) and a venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# poppler-utils (pdftotext) and chromium check the report's PDF and the web pages in tests;
# fonts-dejavu-core is the PDF report's font (fpdf2 embeds it).
APT_PACKAGES=(mosquitto influxdb victoria-metrics poppler-utils chromium fonts-dejavu-core)
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || need+=(influxdb)
# A real /api/v2/write server for the collector's v2 write flavour (no InfluxDB 2.x in Debian).
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# The agent's X11 idle test (skipped without them): a virtual X server and the
# screensaver/XTest client libraries. Installed when root, otherwise only reported.
optional=()
command -v Xvfb >/dev/null 2>&1 || optional+=(xvfb)
/sbin/ldconfig -p 2>/dev/null | grep 'libXss.so.1 ' >/dev/null || optional+=(libxss1)
/sbin/ldconfig -p 2>/dev/null | grep 'libXtst.so.6 ' >/dev/null || optional+=(libxtst6)
if [ ${#optional[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    need+=("${optional[@]}")
  else
    echo "bootstrap: optional ${optional[*]} missing: the X11 idle test will be skipped" >&2
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${need[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "bootstrap: missing ${need[*]}: install the Debian/Ubuntu packages ${APT_PACKAGES[*]}" >&2
    echo "           (or run the stack with: docker compose -f deploy/docker-compose.yml up)" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap: labmeter needs Python >= 3.11 ($PYTHON is $("$PYTHON" --version))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
.venv/bin/python -c 'import labmeter.agent, labmeter.collector, labmeter.api, labmeter.simulators'
touch .venv/.installed
