# The geobutton AWS Batch image: the five stage binaries behind one ENTRYPOINT.
#
#   docker build -t geobutton:latest .
#   docker run --rm geobutton:latest water --help
#
# AWS Batch runs ENTRYPOINT + command, where a job's command override replaces the job
# definition's whole command; `geobutton deploy` registers `command: [STAGE]` and the Batch
# executor overrides it with `[STAGE, "batch", "--manifest", URI, "--index", "0"]` for a
# one-task job, so the stage name always comes first (docker/geobutton-entry dispatches on it).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
        -p lidar-partitioner -p terrain -p ndvi -p water -p biomass \
        --bin lidar-partitioner --bin terrain --bin ndvi --bin water --bin biomass

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/lidar-partitioner /src/target/release/terrain /src/target/release/ndvi /src/target/release/water /src/target/release/biomass /usr/local/bin/
COPY docker/geobutton-entry /usr/local/bin/geobutton-entry
RUN useradd --system --uid 10001 geobutton
USER geobutton
ENTRYPOINT ["/usr/local/bin/geobutton-entry"]
