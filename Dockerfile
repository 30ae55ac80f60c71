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
# espeak-ng: the offline interviewer's voice. ca-certificates: Fly and OpenAI APIs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pocketsphinx pocketsphinx-en-us espeak-ng ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /data --uid 10001 candor \
 && mkdir -p /data && chown candor /data
COPY --from=build /out/candor /usr/local/bin/candor
USER candor
ENV CANDOR_ADDR=0.0.0.0:8080 \
    CANDOR_DATA=/data
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/candor"]
