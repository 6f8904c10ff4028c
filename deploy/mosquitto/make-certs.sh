#!/usr/bin/env bash
# A private CA for one lab's broker, and the certificates it signs, with openssl only.
#
#   make-certs.sh [-d DIR] [-y DAYS] server HOSTNAME [SAN ...]   CA (made once) + broker certificate
#   make-certs.sh [-d DIR] [-y DAYS] client NAME                 a client certificate (optional:
#                                                                 devices log in with a password)
#
# SANs are DNS names or IP addresses (e.g. mqtt.lab.example 192.168.10.5); HOSTNAME is always one
# of them, and so are mosquitto (its name in the compose stack) and localhost and 127.0.0.1
# (the health check connects there).
# The CA key never leaves DIR: keep it offline once the broker's certificate is made. Agents
# need only ca.crt.
set -euo pipefail

dir=./certs
days=825  # the longest validity that Apple/Android clients still accept for a server cert
while getopts "d:y:h" opt; do
  case $opt in
    d) dir=$OPTARG ;;
    y) days=$OPTARG ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
what=$1 name=$2
shift 2

mkdir -p "$dir"
umask 077
ca_key=$dir/ca.key ca_crt=$dir/ca.crt

if [ ! -f "$ca_crt" ]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$ca_key" -out "$ca_crt" -days 3650 -subj "/CN=labmeter private CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  echo "made CA $ca_crt"
fi

san_list() {
  local out="" s
  for s in "$@"; do
    if [[ $s =~ ^[0-9.]+$ || $s == *:* ]]; then out+=",IP:$s"; else out+=",DNS:$s"; fi
  done
  echo "${out#,}"
}

case $what in
  server)
    sans=$(san_list "$name" "$@" mosquitto localhost 127.0.0.1)
    eku=serverAuth ;;
  client)
    sans="DNS:${name//\//.}"  # a SAN holds no '/': site/lab/device becomes site.lab.device
    eku=clientAuth ;;
  *) echo "unknown kind '$what': server or client" >&2; exit 2 ;;
esac

# The broker's files have fixed names so that mosquitto.conf never changes.
if [ "$what" = server ]; then file=$dir/server; else file=$dir/${name//\//_}; fi
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$file.key" -out "$file.csr" -subj "/CN=${name//\//\\/}" 2>/dev/null
openssl x509 -req -in "$file.csr" -CA "$ca_crt" -CAkey "$ca_key" -CAcreateserial \
  -out "$file.crt" -days "$days" \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' \
    "$sans" "$eku") 2>/dev/null
rm -f "$file.csr"
# Certificates are public; keys stay private (the broker reads its key as user mosquitto:
# chown it there, e.g. chown root:mosquitto server.key && chmod 640 server.key).
chmod 644 "$ca_crt" "$file.crt"
echo "made $what certificate $file.crt ($sans)"
