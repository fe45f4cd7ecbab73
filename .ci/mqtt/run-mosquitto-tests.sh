#!/usr/bin/env bash
# Runs the MQTT integration tests (cargo test --test tests mqtt) against a real Mosquitto,
# three times: anonymous, with password authentication, and over TLS (with a password) using
# a CA and server certificate generated here for 127.0.0.1/localhost.
#
# Mosquitto runs on a free port with its own config file in a temporary directory and is
# stopped by PID; port 1883 and any system Mosquitto are left alone.
# Usage: .ci/mqtt/run-mosquitto-tests.sh   (from anywhere in the repository)
set -euo pipefail

cd "$(dirname "$0")/../.."

log() { printf '== %s\n' "$*"; }

find_mosquitto() {
    command -v mosquitto 2>/dev/null || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true
}

bash .ci/mqtt/install-mosquitto.sh
MOSQUITTO="$(find_mosquitto)"
[ -n "$MOSQUITTO" ] || { echo "mosquitto not found after installing it" >&2; exit 1; }

WORK="$(mktemp -d)"
chmod 0755 "$WORK"
PID=""

stop_mosquitto() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        PID=""
    fi
}
cleanup() {
    stop_mosquitto
    rm -rf "$WORK"
}
trap cleanup EXIT

port_is_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if port_is_free "$p"; then echo "$p"; return; fi
    done
    echo "no free port found" >&2
    exit 1
}

# start_mosquitto NAME CONFIG-BODY: writes $WORK/NAME.conf and starts Mosquitto on $PORT.
start_mosquitto() {
    local name="$1" body="$2"
    PORT="$(free_port)"
    local conf="$WORK/$name.conf"
    {
        echo "listener $PORT 127.0.0.1"
        echo "persistence false"
        echo "log_dest file $WORK/$name.log"
        echo "log_type error"
        echo "log_type warning"
        echo "log_type notice"
        # The tests' subscribers must see every message to prove nothing was lost. With
        # Mosquitto's default (1 000) a subscriber that falls behind a fast backlog replay
        # has the rest dropped by the broker ("Outgoing messages are being dropped for
        # client …"): the broker's policy, not a loss between Anemone and the broker.
        echo "max_queued_messages 0"
        # As root Mosquitto would switch to the `mosquitto` user, who cannot read $WORK.
        if [ "$(id -u)" -eq 0 ]; then echo "user root"; fi
        printf '%s\n' "$body"
    } >"$conf"
    "$MOSQUITTO" -c "$conf" >"$WORK/$name.out" 2>&1 &
    PID=$!
    for _ in $(seq 1 100); do
        if ! kill -0 "$PID" 2>/dev/null; then
            echo "Mosquitto ($name) exited:" >&2
            cat "$WORK/$name.out" "$WORK/$name.log" >&2 2>/dev/null || true
            exit 1
        fi
        if ! port_is_free "$PORT"; then
            log "Mosquitto ($name) runs on 127.0.0.1:$PORT, PID $PID"
            return
        fi
        sleep 0.1
    done
    echo "Mosquitto ($name) did not open port $PORT" >&2
    exit 1
}

run_tests() {
    local name="$1"
    shift
    log "MQTT tests against Mosquitto ($name)"
    if ! env "$@" cargo test --test tests mqtt -- --test-threads=2; then
        echo "Mosquitto log ($name):" >&2
        tail -n 50 "$WORK/$name.log" >&2 || true
        exit 1
    fi
}

# Build the test binary once, before any broker runs.
cargo test --test tests --no-run

# 1. Anonymous.
start_mosquitto anonymous "allow_anonymous true"
run_tests anonymous ANEMONE_TEST_BROKER="mqtt://127.0.0.1:$PORT"
stop_mosquitto

# 2. Username and password (over plain TCP on loopback; the tests set allow_insecure).
PASSWORD="pw-$RANDOM$RANDOM"
mosquitto_passwd -b -c "$WORK/passwd" anemone "$PASSWORD" >/dev/null
chmod 0600 "$WORK/passwd"
start_mosquitto password "allow_anonymous false
password_file $WORK/passwd"
run_tests password ANEMONE_TEST_BROKER="mqtt://127.0.0.1:$PORT" \
    ANEMONE_TEST_USERNAME=anemone ANEMONE_TEST_PASSWORD="$PASSWORD"
stop_mosquitto

# 3. TLS: a test CA, a server certificate for 127.0.0.1 and localhost, and a second CA that
#    did not sign it (the certificate-failure case of `mqtt check`).
(
    cd "$WORK"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Anemone test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Some other CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout wrong-ca.key -out wrong-ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.crt 2>/dev/null
    chmod 0600 ca.key wrong-ca.key server.key
)
start_mosquitto tls "allow_anonymous false
password_file $WORK/passwd
cafile $WORK/ca.crt
certfile $WORK/server.crt
keyfile $WORK/server.key"
run_tests tls ANEMONE_TEST_BROKER="mqtts://127.0.0.1:$PORT" \
    ANEMONE_TEST_USERNAME=anemone ANEMONE_TEST_PASSWORD="$PASSWORD" \
    ANEMONE_TEST_CA_FILE="$WORK/ca.crt" ANEMONE_TEST_WRONG_CA_FILE="$WORK/wrong-ca.crt"
stop_mosquitto

log "MQTT tests passed against Mosquitto: anonymous, password, TLS"
