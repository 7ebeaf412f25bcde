# Builds the sitewatch binaries (emitter, processor, sitewatch) into one
# small image; docker-compose.yml picks the command per service.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./cmd/...

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/ /usr/local/bin/
COPY examples/sites.yaml /etc/sitewatch/sites.yaml
USER nonroot
ENTRYPOINT ["/usr/local/bin/sitewatch"]
