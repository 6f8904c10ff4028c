#!/usr/bin/env bash
# Run a command as if the wall clock read WHEN, to show that tests do not depend on it:
#   bash scripts/at-clock.sh 2026-11-30T00:10Z .venv/bin/pytest -q tests/e2e
# Every Python process the command starts (pytest, the agents it spawns) reads the same
# shifted clock, which keeps ticking (time-machine, through scripts/clock/sitecustomize.py);
# monotonic clocks stay real. mosquitto and influxd keep the real clock: labmeter stamps
# every point itself, so theirs only times keepalives and sessions.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 WHEN COMMAND...   (WHEN: anything 'date -d' reads, e.g. 2026-10-25T02:30+01:00)" >&2
  exit 2
fi
target=$(date -d "$1" +%s)
shift
here=$(cd "$(dirname "$0")" && pwd)
echo "at-clock: running as if it were $(date -u -d "@$target" '+%Y-%m-%d %H:%M:%S UTC, %A')" \
  "($(TZ=Europe/Rome date -d "@$target" '+%H:%M %Z') in Rome)" >&2
export LABMETER_CLOCK_OFFSET_S=$((target - $(date +%s)))
export PYTHONPATH="$here/clock${PYTHONPATH:+:$PYTHONPATH}"
# time-machine is already imported by then; its pytest plugin (a fixture) is not needed.
export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }-p no:time_machine"
exec "$@"
