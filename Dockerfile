# The ecrop sidecar image: the `ecrop` binary with SoftHSM2, run next to each Besu node of
# docker-compose.yml. Build context: the repository root.

FROM rust:1.95-bookworm AS build
# librocksdb-sys generates its bindings with libclang.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY sidecar sidecar
RUN cargo build --release --locked -p ecrop --bin ecrop

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends softhsm2 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ecrop /usr/local/bin/ecrop
# The node's token is mounted below /var/lib/ecrop/tokens (see docker-compose.yml).
COPY genesis/softhsm2-node.conf /etc/ecrop/softhsm2.conf
ENV SOFTHSM2_CONF=/etc/ecrop/softhsm2.conf
RUN mkdir -p /var/lib/ecrop/tokens
ENTRYPOINT ["ecrop"]
CMD ["serve"]
