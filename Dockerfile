# The flashsale image: one binary, `flashsale`, for every role (serve, sink,
# migrate, coupon/sale/stock, status, reconcile).
#
#   docker build -t flashsale .
#   docker run --rm flashsale --help
#
# Needs BuildKit (the default builder of Docker Engine 23+ and of `docker
# compose`) for the cache mounts below.

# --- builder: the release binary, from the locked dependency set -------------
FROM rust:1-bookworm AS builder
WORKDIR /build

# What the binary is built from: the manifest and lock, the Rust sources, and
# the Lua scripts and SQL migrations they embed with include_str!.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY lua ./lua
COPY sql ./sql

# The registry and target/ live in cache mounts (kept between builds, not in
# the image), so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin flashsale \
    && install -D -m 0755 target/release/flashsale /out/flashsale

# --- final: Debian slim, CA certificates, a non-root user, the binary ---------
FROM debian:bookworm-slim

# ca-certificates unpinned on purpose: the distribution's current one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 flashsale \
    && useradd --system --uid 10001 --gid flashsale --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin flashsale

COPY --from=builder /out/flashsale /usr/local/bin/flashsale

USER 10001:10001

# Inside a container the API must listen on every interface to be reachable;
# the binary's own default (127.0.0.1:8080) is for running it on a host.
ENV FLASHSALE_LISTEN=0.0.0.0:8080
# Plain log lines (no ANSI colours) for `docker logs` and log collectors.
ENV NO_COLOR=1
EXPOSE 8080

ENTRYPOINT ["flashsale"]
CMD ["serve"]
