# syntax=docker/dockerfile:1
#
# One Dockerfile for every Dragoman image. `SERVICE` picks the binary that ends up in the image:
#
#   docker build --build-arg SERVICE=dragoman-api -t dragoman-api .
#
# SERVICE is one of: dragoman (the CLI: `standalone`, `bench`, `config`, one subcommand per
# service), dragoman-api, dragoman-ari-gateway, dragoman-media-ingest, dragoman-stt-worker,
# dragoman-mt-worker. `just images` builds them all.
#
# Models are never baked in: mount them at /models (compose mounts the `models` volume there,
# read-only, for the STT and MT workers).

ARG SERVICE=dragoman

# ---------------------------------------------------------------------------------------------
# Builder: the whole workspace in release. The cargo registry and target directory live in
# BuildKit cache mounts, so building the second image reuses everything the first one compiled.
# ---------------------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

# cmake, clang (with libclang for bindgen) and pkg-config build the C++ inference libraries the
# STT and MT engines link (whisper.cpp, CTranslate2), as .ci/run installs them for the tests.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake clang libclang-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

ARG SERVICE
# Every image builds the same set (all the workspace's binaries, same features), so the cache
# mount holds one build that all six images share. The target directory is a cache mount and
# does not survive the RUN, so the chosen binary is copied out in the same step.
RUN --mount=type=cache,id=dragoman-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=dragoman-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=dragoman-target,target=/src/target \
    set -eu; \
    case "${SERVICE}" in \
        dragoman|dragoman-api|dragoman-ari-gateway|dragoman-media-ingest|dragoman-stt-worker|dragoman-mt-worker) ;; \
        *) echo "unknown SERVICE '${SERVICE}': use dragoman, dragoman-api, dragoman-ari-gateway, dragoman-media-ingest, dragoman-stt-worker or dragoman-mt-worker" >&2; exit 1 ;; \
    esac; \
    cargo build --release --locked --workspace --bins; \
    install -D -m 0755 "target/release/${SERVICE}" "/out/${SERVICE}"

# ---------------------------------------------------------------------------------------------
# Runtime: Debian slim with CA roots (TLS to NATS and OTLP) and nothing else. bash is part of
# the base image; compose's health checks use its /dev/tcp, since there is no curl here.
# ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# libstdc++ (for the C++ engines) is already in the base image. If an engine is built with
# OpenMP (whisper.cpp's default), its shared runtime libgomp1 must be added here; check with
# `ldd /usr/local/bin/<binary>` in the image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid/gid, so volume permissions and Kubernetes securityContext can name it.
RUN groupadd --system --gid 10001 dragoman \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin dragoman \
    && mkdir -p /models /etc/dragoman

ARG SERVICE
COPY --from=builder /out/${SERVICE} /usr/local/bin/${SERVICE}
# ENTRYPOINT cannot expand a build argument, so a fixed name points at the chosen binary.
RUN ln -s "/usr/local/bin/${SERVICE}" /usr/local/bin/dragoman-entrypoint

# Inside a container the ops endpoints must listen beyond loopback to be scraped at all.
# (Only real config keys may be set here: every DRAGOMAN_* variable is read as configuration.)
ENV DRAGOMAN_TELEMETRY__METRICS_LISTEN=0.0.0.0:9464

# A dragoman.toml mounted here is read without any flag (the binaries look in their cwd).
WORKDIR /etc/dragoman
USER 10001:10001

# 9464: /healthz, /readyz and /metrics (every service).
# 8080: the operator API (dragoman-api, and `dragoman standalone`); it listens on loopback unless
#       DRAGOMAN_API__LISTEN says otherwise (compose sets 0.0.0.0:8080).
# media-ingest also receives RTP on DRAGOMAN_MEDIA__RTP_PORT_MIN..MAX (default 40000-40999/udp);
# not listed here, as EXPOSE cannot follow configuration.
EXPOSE 9464 8080

ENTRYPOINT ["/usr/local/bin/dragoman-entrypoint"]
