#!/usr/bin/env bash
# Run a command as if the wall clock read WHEN, to show that tests do not depend on it.
#   bash scripts/at-clock.sh 2026-11-30T00:10:00Z .venv/bin/pytest -q tests/e2e
# libfaketime (Debian: faketime) shifts CLOCK_REALTIME by a fixed offset for the command and
# every process it starts (Python, mosquitto), so they share one shifted clock that keeps
# ticking; monotonic clocks stay real (timeouts, sleeps). influxd, a Go binary, reads the
# real clock: it only stamps points that arrive without a time, which labmeter never sends.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 WHEN COMMAND...   (WHEN: anything 'date -d' reads, e.g. 2026-10-25T02:30+02:00)" >&2
  exit 2
fi
when=$1
shift
lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n1 || true)
if [ -z "$lib" ]; then
  echo "at-clock: libfaketime is missing; install it with: apt-get install faketime" >&2
  exit 1
fi
target=$(date -d "$when" +%s)
offset=$((target - $(date +%s)))
[ "$offset" -ge 0 ] && offset="+$offset"
echo "at-clock: running as if it were $(date -u -d "@$target" '+%Y-%m-%d %H:%M:%S UTC, %A')" \
  "($(TZ=Europe/Rome date -d "@$target" '+%H:%M %Z') in Rome)" >&2
export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" FAKETIME="$offset" FAKETIME_DONT_FAKE_MONOTONIC=1
exec "$@"
