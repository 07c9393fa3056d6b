# roomguard: multi-stage build, release binary, small non-root runtime image with the shipped policies.
#   docker build -t roomguard .
#   docker run --rm -p 50051:50051 roomguard
# Settings come from ROOMGUARD_* variables or a mounted config file (see roomguard.example.toml and
# docs/operating.md).
FROM rust:1-bookworm AS build
WORKDIR /src
# protoc comes from the protoc-bin-vendored build dependency: no system package needed.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
COPY benches ./benches
COPY crates ./crates
RUN cargo build --release --locked --bin roomguard

FROM debian:bookworm-slim
# Tesseract and its French and English models: OCR of scanned uploads (loaded at run time; without it roomguard
# starts and reports OCR unavailable). One OpenMP thread per recognition: scans run side by side instead.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-fra \
    && rm -rf /var/lib/apt/lists/*
ENV OMP_THREAD_LIMIT=1
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin roomguard
COPY --from=build /src/target/release/roomguard /usr/local/bin/roomguard
COPY policies /etc/roomguard/policies
COPY roomguard.example.toml /etc/roomguard/roomguard.example.toml
USER 10001
# All interfaces inside the container (its own network namespace); publish with -p. Metrics stay off unless
# ROOMGUARD_METRICS_LISTEN is set (e.g. 0.0.0.0:9464, then -p 9464:9464); the read guard's HTTP front for nginx
# unless ROOMGUARD_READS_HTTP_LISTEN (e.g. 0.0.0.0:50052) and ROOMGUARD_READS_HOMESERVER_URL are (docs/reads.md).
ENV ROOMGUARD_LISTEN=0.0.0.0:50051 \
    ROOMGUARD_POLICIES=/etc/roomguard/policies \
    ROOMGUARD_HEALTH_ADDR=http://127.0.0.1:50051
EXPOSE 50051 50052 9464
# Validate the shipped policy at build time: an image with a broken policy is never produced.
RUN ["roomguard", "validate", "/etc/roomguard/policies"]
# gRPC health through the binary itself (no shell, no curl in the image). The address comes from
# ROOMGUARD_HEALTH_ADDR, so a TLS deployment sets it to https://... with ROOMGUARD_HEALTH_CA (and, under mTLS,
# ROOMGUARD_HEALTH_CERT / ROOMGUARD_HEALTH_KEY) without rebuilding. Health needs no bearer token.
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
    CMD ["roomguard", "health", "--timeout-ms", "3000"]
ENTRYPOINT ["roomguard"]
CMD ["serve"]
