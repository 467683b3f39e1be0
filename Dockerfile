# syntax=docker/dockerfile:1
#
# Images of the monitor, one target per binary:
#
#   docker build --target server -t monitor-server .
#   docker build --target worker -t monitor-worker .
#   docker build --target mock   -t monitor-mock   .
#
# The builder compiles the whole workspace once (`--bins`); the runtime stages
# copy one binary each onto debian:bookworm-slim and run it as uid 10001.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
# rdkafka builds librdkafka from source against OpenSSL; protoc is not needed
# (the proto crate compiles with protox). gcc and make are in the rust image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Dependencies first: only the manifests and the lock file, so this layer (the
# crate downloads) is reused until a Cargo.toml or Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
COPY core/Cargo.toml core/Cargo.toml
COPY proto/Cargo.toml proto/Cargo.toml
COPY store/Cargo.toml store/Cargo.toml
COPY server/Cargo.toml server/Cargo.toml
COPY worker/Cargo.toml worker/Cargo.toml
COPY mock/Cargo.toml mock/Cargo.toml
COPY testkit/Cargo.toml testkit/Cargo.toml
# cargo needs each manifest's targets to exist: empty stubs for src/, the real
# bench files (they are named in the manifests).
COPY server/benches server/benches
COPY worker/benches worker/benches
RUN for crate in core proto store server worker mock testkit; do \
        mkdir -p "$crate/src" && touch "$crate/src/lib.rs" "$crate/src/main.rs"; \
    done \
    && cargo fetch --locked \
    && rm -rf core/src proto/src store/src server/src worker/src mock/src testkit/src

# Then the sources.
COPY . .
# The crates fetched above live in the image layer; only target/ is a BuildKit
# cache mount, so rebuilds after a source change recompile just the workspace.
RUN --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bins \
    && mkdir -p /out \
    && cp target/release/monitor-server target/release/monitor-worker target/release/monitor-mock /out/

# ---------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime-base
# libssl3: librdkafka's TLS; ca-certificates: the probe verifies HTTPS targets
# against the system CA bundle. No curl/wget: health checks use bash's
# /dev/tcp (see deploy/compose.yaml) or the orchestrator's HTTP probes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin monitor
ENV RUST_LOG=info \
    MONITOR_LOG_FORMAT=json
USER 10001:10001

# ---------------------------------------------------------------------------
FROM runtime-base AS server
COPY --from=builder /out/monitor-server /usr/local/bin/monitor-server
# The example jobs; point MONITOR_JOBS_FILE here (or at a mounted file) to import them.
COPY --chown=10001:10001 jobs.json /etc/monitor/jobs.json
ENV MONITOR_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/monitor-server"]
CMD ["serve"]

# ---------------------------------------------------------------------------
FROM runtime-base AS worker
COPY --from=builder /out/monitor-worker /usr/local/bin/monitor-worker
# Run `probe` or `aggregate`. Both serve /metrics, /healthz and /readyz on 9100.
# ICMP ping checks need unprivileged ICMP sockets in the container's network
# namespace (user 10001 has no CAP_NET_RAW): docker run --sysctl
# net.ipv4.ping_group_range="0 2147483647" (recent Docker sets it by
# default), or run as root with --cap-add NET_RAW (raw sockets); see the
# README's "ICMP ping".
ENV MONITOR_METRICS_LISTEN=0.0.0.0:9100
EXPOSE 9100
ENTRYPOINT ["/usr/local/bin/monitor-worker"]
CMD ["probe"]

# ---------------------------------------------------------------------------
FROM runtime-base AS mock
COPY --from=builder /out/monitor-mock /usr/local/bin/monitor-mock
ENV MOCK_LISTEN=0.0.0.0:8081
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/monitor-mock"]
