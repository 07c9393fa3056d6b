# roomguard: multi-stage build, release binary, small non-root runtime image with the shipped policies.
#   docker build -t roomguard .
#   docker run --rm -p 50051:50051 roomguard
FROM rust:1-bookworm AS build
WORKDIR /src
# protoc comes from the protoc-bin-vendored build dependency: no system package needed.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin roomguard

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin roomguard
COPY --from=build /src/target/release/roomguard /usr/local/bin/roomguard
COPY policies /etc/roomguard/policies
USER 10001
ENV ROOMGUARD_LISTEN=0.0.0.0:50051 \
    ROOMGUARD_POLICIES=/etc/roomguard/policies
EXPOSE 50051
# Validate the shipped policy at build time: an image with a broken policy is never produced.
RUN ["roomguard", "validate", "/etc/roomguard/policies"]
ENTRYPOINT ["roomguard"]
CMD ["serve"]
