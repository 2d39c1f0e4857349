# syntax=docker/dockerfile:1
#
# credwatch container image.
#
#   docker build -t credwatch .
#   docker run --rm -p 9863:9863 credwatch demo --web.listen-address 0.0.0.0:9863   # simulated upstreams
#   docker run --rm -p 9863:9863 \
#     -v "$PWD/config.yaml:/etc/credwatch/config.yaml:ro" \
#     -v "$PWD/secrets:/var/run/secrets/credwatch:ro" credwatch
#
# Build args: RUST_VERSION (toolchain image tag), CREDWATCH_REVISION (git
# revision reported in credwatch_build_info, `credwatch --version` and the
# org.opencontainers.image.revision label; e.g. --build-arg
# CREDWATCH_REVISION=$(git rev-parse HEAD)), CREDWATCH_VERSION (the
# org.opencontainers.image.version label; keep it equal to Cargo.toml's
# version, a test checks the default), CREDWATCH_SOURCE (the repository URL),
# SOURCE_DATE_EPOCH (the build date `credwatch --version` prints).
#
# CARGO_FLAGS (extra `cargo build` flags): by default the image has
# `credwatch demo` (the default `demo` cargo feature: the simulator crate,
# crates/credwatch-sim, is in the binary); a production image without it:
# --build-arg CARGO_FLAGS=--no-default-features (docs/deployment.md, "Builds").

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
ARG CARGO_FLAGS=

# Dependencies first: with only the manifests and stub targets, this layer
# is rebuilt when Cargo.toml/Cargo.lock change, not on every source edit.
COPY Cargo.toml Cargo.lock build.rs ./
COPY crates/credwatch-sim/Cargo.toml ./crates/credwatch-sim/
RUN mkdir src crates/credwatch-sim/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs crates/credwatch-sim/src/lib.rs \
 && cargo fetch --locked \
 && cargo build --release --locked ${CARGO_FLAGS} \
 && rm -rf src crates/credwatch-sim/src target/release/credwatch \
           target/release/deps/credwatch-* target/release/deps/libcredwatch-* \
           target/release/deps/credwatch_sim-* target/release/deps/libcredwatch_sim-* \
           target/release/.fingerprint/credwatch-*

COPY src ./src
COPY crates/credwatch-sim/src ./crates/credwatch-sim/src
# The simulator (`credwatch demo`) serves the recorded upstream answers.
COPY tests/fixtures/upstream ./tests/fixtures/upstream
ARG CREDWATCH_REVISION=unknown
ARG SOURCE_DATE_EPOCH
ENV CREDWATCH_REVISION=${CREDWATCH_REVISION} SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}
RUN cargo build --release --locked ${CARGO_FLAGS} \
 && install -D -m 0755 target/release/credwatch /out/credwatch

# ---------------------------------------------------------------------------
# glibc-linked binary: distroless "cc" carries glibc, libgcc and CA
# certificates, and nothing else (no shell, no package manager).
FROM gcr.io/distroless/cc-debian12:nonroot

ARG CREDWATCH_VERSION=0.1.0
ARG CREDWATCH_REVISION=unknown
ARG CREDWATCH_SOURCE=https://github.com/credwatch/credwatch
LABEL org.opencontainers.image.title="credwatch" \
      org.opencontainers.image.description="Watches ElevenLabs and Twilio credentials and exports their health to Prometheus" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${CREDWATCH_SOURCE}" \
      org.opencontainers.image.revision="${CREDWATCH_REVISION}" \
      org.opencontainers.image.version="${CREDWATCH_VERSION}"

COPY --from=build /out/credwatch /usr/local/bin/credwatch

USER 65532:65532
EXPOSE 9863

# One glibc malloc arena instead of one per thread: credwatch allocates
# little and often from a few threads, and per-thread arenas keep freed
# holes resident (at 10,000 credentials about 10 MiB; BENCHMARKS.md). The
# benchmarks run credwatch with the same setting.
ENV MALLOC_ARENA_MAX=1

# `credwatch healthcheck` GETs http://127.0.0.1:9863/livez (exec form: the
# image has no shell). Liveness only; credential health is in /health.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/credwatch", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/credwatch"]
CMD ["serve", "--config.file", "/etc/credwatch/config.yaml"]
