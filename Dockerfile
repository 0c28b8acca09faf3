# One image with both binaries: `storage` and `proxy`.
#   docker build -t kv .
#   docker run --rm -p 5000:5000 kv storage -n alice -p 5000
#   docker run --rm -p 5003:5003 -v "$PWD/configs:/configs" kv proxy -c /configs/compose.yml

# --- build ---------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, with empty sources: this layer is cached until Cargo.toml or
# Cargo.lock change, so editing the code rebuilds only the project's own crates.
COPY Cargo.toml Cargo.lock ./
COPY storage/Cargo.toml storage/Cargo.toml
COPY proxy/Cargo.toml proxy/Cargo.toml
RUN mkdir -p storage/src proxy/src \
 && echo 'fn main() {}' > storage/src/main.rs && touch storage/src/lib.rs \
 && echo 'fn main() {}' > proxy/src/main.rs && touch proxy/src/lib.rs \
 && cargo build --release --locked \
 && rm -rf storage/src proxy/src
COPY storage storage
COPY proxy proxy
# touch: the real sources must be newer than the cached empty ones.
RUN touch storage/src/*.rs proxy/src/*.rs \
 && cargo build --release --locked --bin storage --bin proxy

# --- run -----------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: students' nodes behind ngrok are https. curl: the health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home kv
COPY --from=build /src/target/release/storage /src/target/release/proxy /usr/local/bin/
COPY configs /configs
USER kv
EXPOSE 5000 5003
CMD ["storage", "-n", "kv1", "-p", "5000"]
