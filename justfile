# Dragoman's everyday commands. `just --list` shows them.

# Services that get their own image (one binary each, see Dockerfile).
services := "dragoman dragoman-api dragoman-ari-gateway dragoman-media-ingest dragoman-stt-worker dragoman-mt-worker"

# Show the recipes.
default:
    @just --list

# Build every crate in release.
build:
    cargo build --release --workspace

# The test suite, exactly as CI runs it.
test:
    bash .ci/run

# Every service in one process on the in-process bus: no NATS, no Redis.
standalone:
    cargo run --release -p dragoman -- standalone

# Run one benchmark and print its JSON summary (`dragoman bench --help` lists the stages).
bench stage:
    cargo run --release -p dragoman -- bench {{ stage }} --json

# Build one image per service (tags <service>:dev, as compose.yaml names them).
images:
    for service in {{ services }}; do \
        docker build --build-arg SERVICE="$service" -t "$service:dev" . || exit 1; \
    done

# Build and start NATS, Redis, Asterisk and every service (needs DRAGOMAN_API__TOKENS in .env).
compose-up:
    docker compose up -d --build

# Regenerate .env.example from the config structs.
env-example:
    cargo run -p dragoman -- config env-example > .env.example

# Format the workspace.
fmt:
    cargo fmt --all

# Lint every target; warnings are errors.
clippy:
    cargo clippy --workspace --all-targets -- -D warnings
