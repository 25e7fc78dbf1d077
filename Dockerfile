# syntax=docker/dockerfile:1
# The operator image: one static binary (`workos-convex-auth run|proxy|crd|render|check-token`)
# on distroless/static, running as the distroless `nonroot` user (65532). No shell, no libc.
#   docker build -t ghcr.io/workos-convex-auth/workos-convex-auth:0.1.0 .

FROM rust:1.89-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY operator ./operator
COPY tests/harness ./tests/harness
# rustls (no OpenSSL) and ring build with musl-gcc; the result links nothing dynamically.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p workos-convex-auth --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/workos-convex-auth /workos-convex-auth

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /workos-convex-auth /workos-convex-auth
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/workos-convex-auth"]
CMD ["run"]
