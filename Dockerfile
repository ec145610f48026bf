# syntax=docker/dockerfile:1.7
# Both operators and the O2ims API in one static (musl) image. Build: docker build -t oran-lcm:dev .
# kube uses rustls with ring, so there is no OpenSSL to link; ring's C needs musl-gcc.

FROM rust:1.95-slim-bookworm AS build
ARG TARGET=x86_64-unknown-linux-musl
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "${TARGET}"
WORKDIR /src
# Only what cargo needs: a change elsewhere (docs, deploy/, ansible/) does not rebuild.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
# BuildKit cache mounts keep the registry and the compiled dependencies between builds; the
# binaries are copied out of the cached target directory in the same step.
RUN --mount=type=cache,id=cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=oran-lcm-target,target=/src/target,sharing=locked \
    cargo build --release --locked --target "${TARGET}" -p o2ims-operator -p focom-operator -p o2ims-api \
 && mkdir -p /out \
 && cp "target/${TARGET}/release/o2ims-operator" "target/${TARGET}/release/focom-operator" \
      "target/${TARGET}/release/o2ims-api" /out/

# Static binaries need no libc: distroless static, non-root (uid/gid 65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/o2ims-operator /out/focom-operator /out/o2ims-api /usr/local/bin/
USER 65532:65532
# The O2IMS operator by default; the FOCOM Deployment overrides `command` with
# ["/usr/local/bin/focom-operator"], the API's with ["/usr/local/bin/o2ims-api"] (and then set
# `args`, as Kubernetes drops CMD with `command`).
ENTRYPOINT ["/usr/local/bin/o2ims-operator"]
CMD ["run"]
