# syntax=docker/dockerfile:1
# One image for both roles: the control plane (default) and the per-interview
# processor (`candor --role=processor`, what Fly interview machines run).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Pure Go all the way down (modernc SQLite, pion): no cgo, a static binary.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/candor .

FROM debian:bookworm-slim
# pocketsphinx + its English model: offline speech-to-text in the processor.
# flite: the offline interviewer's voice (espeak-ng: the fallback). ca-certificates: Fly and OpenAI APIs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pocketsphinx pocketsphinx-en-us flite espeak-ng ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 candor \
 && useradd --system --home /data --uid 10001 --gid 10001 candor \
 && mkdir -p /data && chown candor /data
COPY --from=build /out/candor /usr/local/bin/candor
# No USER: Fly volumes (and Docker's) mount owned by root, so the binary
# starts as root, gives CANDOR_DATA to CANDOR_RUN_AS and drops to it before
# it does anything else (privdrop_unix.go; tested by
# TestImageWorksOnARootOwnedVolume). Interview machines run the same way.
ENV CANDOR_ADDR=0.0.0.0:8080 \
    CANDOR_DATA=/data \
    CANDOR_RUN_AS=10001:10001
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/candor"]
