# syntax=docker/dockerfile:1@sha256:ecfaec9ed6d810b56388c508f4121597bfbba70d41a6dfeee4d8cad5f295fc32
# The operator image: one static binary (`workos-convex-auth run|proxy|crd|render|check-token`)
# and nothing else, running as the non-root user 65532. No shell, no libc, no writable path.
#   docker build -t ghcr.io/workos-convex-auth/workos-convex-auth:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
# A release (image/release.sh) builds it the same way for every platform it runs on; with buildx,
# `--platform linux/amd64,linux/arm64` builds each platform natively (image/build-binary.sh takes
# the target from the platform).
#
# Without Docker, image/oci.py builds the same image from this file's final stage (the tests and
# the demo do, for the local node), after image/build-binary.sh, which the build stage runs too.

# Base images are pinned by digest (the multi-platform index), so a re-pushed tag cannot change
# what builds the binary; the tag stays for people. To move on: change the tag, then take the new
# digest from `docker buildx imagetools inspect rust:1.95-bookworm` (and the same for the syntax
# line). The final stage is `FROM scratch`: nothing to pin there.
FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY operator ./operator
COPY tests/harness ./tests/harness
COPY image ./image
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    bash image/build-binary.sh /out

FROM scratch
# The OCI labels a registry and a scanner read: the version is the chart's appVersion, the
# revision the git commit (image/release.sh passes both).
ARG VERSION=dev
ARG REVISION=unknown
COPY --from=build /out/workos-convex-auth /workos-convex-auth
USER 65532:65532
EXPOSE 8080 8081
LABEL org.opencontainers.image.source="https://github.com/workos-convex-auth/workos-convex-auth" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.title="workos-convex-auth" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENTRYPOINT ["/workos-convex-auth"]
CMD ["run"]
