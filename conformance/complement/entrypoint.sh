#!/usr/bin/env bash
# Starts Matrix OS in a Complement test container.
#
# Complement starts a container more than once: on creation, on restarts,
# and from blueprint images it commits after setting up users and rooms. So
# everything here may run again on the same file system: the certificate
# and config file are rewritten on every start, while the database stays in
# /var/lib/matrixos (inside the image, not a volume, so that a committed
# blueprint keeps it).
#
# From Complement:
#   SERVER_NAME            this server's name (hs1, hs2, ...), which is also
#                          its host name on the test's Docker network
#   /complement/ca/ca.crt  the test CA, which every server must trust
#   /complement/ca/ca.key  its key, to sign this server's certificate with
#
# Optional, passed through with Complement's COMPLEMENT_SHARE_ENV_PREFIX
# (e.g. COMPLEMENT_SHARE_ENV_PREFIX=PASS_ PASS_RUST_LOG=debug):
#   MATRIXOS_COMPLEMENT_ROOM_VERSION  default room version (10, see below)
#   RUST_LOG                          log filter (info, plus each request)
#   MATRIXOS_*                        any setting; overrides the file below
set -euo pipefail

name="${SERVER_NAME:-localhost}"
conf=/etc/matrixos
ca_crt=/complement/ca/ca.crt
ca_key=/complement/ca/ca.key

# The host part of the server name: without a port, and without the
# brackets of an IPv6 literal.
host="$name"
case "$host" in
    \[*) host="${host#\[}"; host="${host%%\]*}" ;;
    *:*) host="${host%:*}" ;;
esac

# Runs a command and shows its output only when it fails.
quiet() {
    local out
    if ! out="$("$@" 2>&1)"; then
        printf '%s\n' "$out" >&2
        return 1
    fi
}

mkdir -p "$conf/tls"
if [ -r "$ca_crt" ] && [ -r "$ca_key" ]; then
    # A fresh key and certificate on every start: the CA is new for every
    # Complement run, and a blueprint may be started under a later one.
    # Peers check the subjectAltName (rustls and Go ignore the common name).
    if [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then
        san="IP:$host"
    else
        san="DNS:$host"
    fi
    for ip in $(hostname -I 2>/dev/null || true); do
        san="$san,IP:$ip"
    done
    work="$(mktemp -d)"
    cat >"$work/ext.cnf" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
EXT
    quiet openssl req -new -newkey rsa:2048 -nodes -sha256 \
        -subj "/CN=${host:0:64}" \
        -keyout "$conf/tls/server.key" -out "$work/server.csr"
    quiet openssl x509 -req -sha256 -days 7 \
        -in "$work/server.csr" -CA "$ca_crt" -CAkey "$ca_key" \
        -set_serial "0x$(openssl rand -hex 16)" \
        -extfile "$work/ext.cnf" -out "$conf/tls/server.crt"
    rm -rf "$work"
    export MATRIXOS_TLS_CERT="$conf/tls/server.crt"
    export MATRIXOS_TLS_KEY="$conf/tls/server.key"
    # Outbound federation trusts the test CA besides the public roots, and
    # still checks every peer's certificate.
    export MATRIXOS_FEDERATION_CA_FILE="$ca_crt"
else
    echo "complement-entrypoint: no CA in /complement/ca (not started by Complement?):" \
        "the federation listener uses a self-signed certificate" >&2
fi

# Complement's tests are written against Synapse, whose default room
# version is 10; under Matrix OS's own default (12), tests that give the
# room creator a power level in m.room.power_levels fail for that alone.
room_version="${MATRIXOS_COMPLEMENT_ROOM_VERSION:-10}"
if ! [[ "$room_version" =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "complement-entrypoint: bad MATRIXOS_COMPLEMENT_ROOM_VERSION: $room_version" >&2
    exit 1
fi

cat >"$conf/complement.toml" <<TOML
# Written by the Complement entrypoint on every start: a test server, never
# a production configuration.
data_dir = "/var/lib/matrixos"
listen = "0.0.0.0:8008"
federation_listen = "0.0.0.0:8448"
# The other homeservers of a test, and Complement's own federation server
# (host.docker.internal, the Docker host), are on private networks.
federation_ip_range_allowlist = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "fc00::/7",
    "::1/128",
]
federation_verify_certificates = true
# No notary: nothing outside the test network is reachable.
trusted_key_servers = []
# Complement registers users with m.login.dummy, and admins through
# /_synapse/admin/v1/register with the shared secret "complement".
registration = "open"
registration_shared_secret = "complement"
# Every request comes through Docker's port mapping, from one address.
max_connections_per_ip = 0
# Writes still reach the file system before they are acknowledged, so
# stopping (or killing) the container loses nothing; only the disk sync
# before each answer is skipped.
sync_writes = false
default_room_version = "$room_version"

# Tests register, log in and send far faster than people do.
[rate_limits.login]
per_second = 0.0
[rate_limits.register]
per_second = 0.0
[rate_limits.send]
per_second = 0.0
[rate_limits.token_validity]
per_second = 0.0

# No AI users: they would add users, rooms and messages that tests do not
# expect.
[ai]
enabled = false
TOML

export MATRIXOS_CONFIG="$conf/complement.toml"
# Complement's name wins over anything passed through.
export MATRIXOS_SERVER_NAME="$name"
if [[ "$host" == *:* ]]; then
    url_host="[$host]"
else
    url_host="$host"
fi
export MATRIXOS_PUBLIC_BASEURL="${MATRIXOS_PUBLIC_BASEURL:-http://$url_host:8008}"
export RUST_LOG="${RUST_LOG:-info,tower_http=debug}"

echo "complement-entrypoint: starting $name (room version $room_version)" >&2
exec /usr/local/bin/matrixos serve
