#!/usr/bin/env bash
# Throughput of the mock website under wrk, keep-alive, release build.
#
# Measures /website_mock (a seeded draw with latency 0: status, body size and
# body content drawn per request, stats counted) against /__ping (a static
# answer, not counted) in the same run; the ratio is what the draw costs.
#
# Usage: mock/bench.sh            (from anywhere in the repository)
# Knobs: BENCH_PORT (18081), BENCH_DURATION (10s), BENCH_THREADS (2),
#        BENCH_CONNECTIONS (64), BENCH_BODY_BYTES (64..=2048),
#        CARGO_TARGET_DIR (target).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${BENCH_PORT:-18081}"
duration="${BENCH_DURATION:-10s}"
threads="${BENCH_THREADS:-2}"
connections="${BENCH_CONNECTIONS:-64}"
body_bytes="${BENCH_BODY_BYTES:-64..=2048}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

# shellcheck source=../scripts/lib.sh
source "$root/scripts/lib.sh"
command -v wrk >/dev/null || apt_install wrk

cargo build --release --quiet -p monitor-mock --manifest-path "$root/Cargo.toml"
binary="$CARGO_TARGET_DIR/release/monitor-mock"

RUST_LOG=warn "$binary" --listen "127.0.0.1:$port" --seed 1 \
    --latency-ms 0 --body-bytes "$body_bytes" &
mock_pid=$!
stop_mock() {
    kill -TERM "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
}
trap stop_mock EXIT

base="http://127.0.0.1:$port"
for _ in $(seq 50); do
    curl -fsS "$base/__ping" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$base/__ping" >/dev/null || { echo "the mock did not start" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "mock: --latency-ms 0 --body-bytes $body_bytes --codes 200:70,404:20,500:10 (default)"
echo "wrk: -t$threads -c$connections -d$duration, HTTP/1.1 keep-alive"
echo

# Warm up once so both routes are measured on a warm process.
wrk -t"$threads" -c"$connections" -d2s "$base/website_mock" >/dev/null

requests_per_second() {
    local path=$1 output
    output=$(wrk -t"$threads" -c"$connections" -d"$duration" --latency "$base$path")
    echo "--- $path" >&2
    grep -E 'Latency  |requests in|Requests/sec|Transfer/sec|Non-2xx|Socket errors| 99%' <<<"$output" >&2
    awk '/Requests\/sec/ { print $2 }' <<<"$output"
}

draw=$(requests_per_second /website_mock)
static=$(requests_per_second /__ping)

echo
printf '/website_mock  %12.0f req/s\n' "$draw"
printf '/__ping        %12.0f req/s\n' "$static"
awk -v draw="$draw" -v static="$static" \
    'BEGIN { printf "ratio          %12.3f (website_mock / __ping)\n", draw / static }'
echo
echo "/website_mock draws served, warm-up included (from /__stats): $(curl -fsS "$base/__stats" | grep -o '"sequence":[0-9]*' | cut -d: -f2)"
