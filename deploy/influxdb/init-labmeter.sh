#!/bin/bash
# Run once by the influxdb:2 image after its first set-up (/docker-entrypoint-initdb.d/), with
# the influx CLI logged in as the admin. labmeter reads and writes through the 1.x API
# (InfluxQL over /query, /write?db=) on every InfluxDB version (DESIGN.md), so 2.x needs:
#  - a DBRP mapping: database "$LABMETER_INFLUX_DATABASE", policy "autogen" -> the bucket;
#  - a v1 user per role (basic auth on /write and /query), each with what it needs only:
#    the collector reads and writes, the API only reads (its credentials can rewrite
#    nothing, a closed period least of all), closing periods reads and writes.
set -euo pipefail
: "${DOCKER_INFLUXDB_INIT_BUCKET_ID:?set by the influxdb image during set-up}"
: "${LABMETER_INFLUX_DATABASE:?}"
: "${INFLUX_COLLECTOR_USERNAME:?}" "${INFLUX_COLLECTOR_PASSWORD:?}"
: "${INFLUX_API_USERNAME:?}" "${INFLUX_API_PASSWORD:?}"
: "${INFLUX_CLOSER_USERNAME:?}" "${INFLUX_CLOSER_PASSWORD:?}"
bucket="$DOCKER_INFLUXDB_INIT_BUCKET_ID"

influx v1 dbrp create --bucket-id "$bucket" --db "$LABMETER_INFLUX_DATABASE" --rp autogen --default
influx v1 auth create \
  --username "$INFLUX_COLLECTOR_USERNAME" --password "$INFLUX_COLLECTOR_PASSWORD" \
  --read-bucket "$bucket" --write-bucket "$bucket" --description "labmeter collector"
influx v1 auth create \
  --username "$INFLUX_API_USERNAME" --password "$INFLUX_API_PASSWORD" \
  --read-bucket "$bucket" --description "labmeter API (read only)"
influx v1 auth create \
  --username "$INFLUX_CLOSER_USERNAME" --password "$INFLUX_CLOSER_PASSWORD" \
  --read-bucket "$bucket" --write-bucket "$bucket" --description "labmeter period close"
