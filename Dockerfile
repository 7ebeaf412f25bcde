# Builds the sitewatch binaries (emitter, processor, sitewatch) into one
# small image; docker-compose.yml picks the command per service.
#
#   docker build -t sitewatch .
#   docker run --rm sitewatch -version
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (no cgo) and reproducible (-trimpath). .dockerignore leaves .git
# out of the context, so -version reports the module version without a
# VCS revision here; `make release` binaries carry it.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/ ./cmd/...

# distroless/static: no shell, no libc, CA certificates for HTTPS checks,
# and the nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="sitewatch" \
      org.opencontainers.image.description="Website availability monitor: emitter and processor over Apache Kafka, stored in PostgreSQL" \
      org.opencontainers.image.source="https://github.com/sitewatch/sitewatch" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/ /usr/local/bin/
COPY examples/sites.yaml /etc/sitewatch/sites.yaml
USER nonroot:nonroot
# The all-in-one writes ./sitewatch-data; the nonroot home is writable.
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/sitewatch"]
