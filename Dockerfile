# Simple single-stage image: builds and runs CashCraft with the full Rust toolchain inside.
# Good for a quick try; for production use Dockerfile.multi-stage (small, non-root runtime).
#
#   docker build -t cashcraft:simple .
#   docker run --rm -p 3000:3000 cashcraft:simple
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm

WORKDIR /app
COPY . .
# migrations/ is embedded into the binary at compile time (sqlx::migrate!), so it must be copied first.
RUN cargo build --release --locked \
    && cp target/release/cashcraft /usr/local/bin/cashcraft

ENV HOST=0.0.0.0 \
    PORT=3000
EXPOSE 3000
STOPSIGNAL SIGTERM
CMD ["cashcraft"]
