# Matrix OS server image: a release build on a slim Debian base, run as an
# unprivileged user, data under /data.
#   docker build -t matrixos .
#   docker run --rm -v matrixos:/data matrixos --config /data/matrixos.toml \
#       init --domain example.org --admin alice --data-dir /data
#   docker run -d --name matrixos -v matrixos:/data -p 80:80 -p 443:443 -p 8448:8448 \
#       -e MATRIXOS_CONFIG=/data/matrixos.toml matrixos
# (ports 80/443/8448 when init wrote the ACME configuration, the default for
# a public domain: Docker lets the unprivileged user bind them inside the
# container; behind a proxy publish only -p 127.0.0.1:8008:8008 instead).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bin matrixos

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin matrixos \
    && mkdir -p /data && chown matrixos:matrixos /data && chmod 700 /data
COPY --from=build /src/target/release/matrixos /usr/local/bin/matrixos
USER matrixos
WORKDIR /data
# The configuration file's listen address is for a host install behind a
# proxy; in the container the server listens on every interface.
ENV MATRIXOS_DATA_DIR=/data MATRIXOS_LISTEN=0.0.0.0:8008
VOLUME /data
EXPOSE 8008 80 443 8448
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/matrixos", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/matrixos"]
CMD ["serve"]
