# syntax=docker/dockerfile:1
#
# silt: one static binary on distroless.
#
#   docker build -t silt:local --build-arg VERSION=v0.1.0 .
#   docker run --rm -p 9092:9092 -p 9644:9644 silt:local          # silt dev
#   docker run --rm silt:local agent --metastore postgres://... --bucket s3://...
#
# No HEALTHCHECK: the final image has no shell and no curl, and silt has no
# self-probing subcommand. Probe the admin port from outside instead:
# http://<container>:9644/healthz (liveness) and /readyz (readiness), as the
# compose file, ECS (via the NLB target group) and Kubernetes probes do.

# The builder runs on the build machine's platform and cross-compiles, so
# multi-arch images build without emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
# The version `silt version` and silt_build_info report, e.g.
# docker build --build-arg VERSION=v0.1.0 . (.git is not in the build
# context, so Go cannot stamp a revision itself).
ARG VERSION=""
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/silt ./cmd/silt \
 && mkdir -p /out/data

# distroless/static: CA certificates (for S3 and Postgres TLS), tzdata,
# /etc/passwd with the nonroot user (65532), /tmp; nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/silt /usr/local/bin/silt
# The data directory of `silt dev` (SQLite file and local bucket) and the
# default --cache-dir parent; owned by nonroot so a named volume mounted
# here starts out writable.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# 9092: Kafka protocol. 9644: admin (/metrics /healthz /readyz /debug/pprof).
EXPOSE 9092 9644
ENTRYPOINT ["silt"]
CMD ["dev", "--listen", "0.0.0.0:9092", "--admin-listen", "0.0.0.0:9644", "--data-dir", "/data"]
