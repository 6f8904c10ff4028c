#!/bin/bash
# Run once by the influxdb:2 image after its first set-up (/docker-entrypoint-initdb.d/), with
# the influx CLI logged in as the admin. labmeter reads and writes through the 1.x API
# (InfluxQL over /query, /write?db=) on every InfluxDB version (DESIGN.md), so 2.x needs:
#  - a DBRP mapping: database "$LABMETER_INFLUX_DATABASE", policy "autogen" -> the bucket;
#  - a v1 user for the collector and the API (basic auth on /write and /query).
set -euo pipefail
: "${DOCKER_INFLUXDB_INIT_BUCKET_ID:?set by the influxdb image during set-up}"
: "${LABMETER_INFLUX_DATABASE:?}" "${LABMETER_INFLUX_USERNAME:?}" "${LABMETER_INFLUX_PASSWORD:?}"

influx v1 dbrp create \
  --bucket-id "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
  --db "$LABMETER_INFLUX_DATABASE" --rp autogen --default
influx v1 auth create \
  --username "$LABMETER_INFLUX_USERNAME" --password "$LABMETER_INFLUX_PASSWORD" \
  --read-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" --write-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
  --description "labmeter collector and API"
