# Matrix OS server image.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bin matrixos

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libstdc++6 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/matrixos /usr/local/bin/matrixos
ENV MATRIXOS_DATA_DIR=/data MATRIXOS_LISTEN=0.0.0.0:8008
VOLUME /data
EXPOSE 8008 8448
ENTRYPOINT ["/usr/local/bin/matrixos"]
CMD ["serve"]
