# The geobutton AWS Batch image: the five stage binaries behind one ENTRYPOINT.
#
#   docker build -t geobutton:latest .
#   docker run --rm geobutton:latest water --help
#
# AWS Batch runs ENTRYPOINT + command, where a job's command override replaces the job
# definition's whole command; `geobutton deploy` registers `command: [STAGE]` and the Batch
# executor overrides it with `[STAGE, "batch", "--manifest", URI, "--index", "0"]` for a
# one-task job, so the stage name always comes first (docker/geobutton-entry dispatches on it).

#
# `ndvi preprocess` reads the JPEG 2000 bands of .SAFE products through GDAL (the `gdal`
# feature, Debian's libgdal). Level-1C products need ESA's Sen2Cor, which is not
# redistributable here: pass its Linux installer to put `L2A_Process` on PATH, e.g.
#   docker build --build-arg SEN2COR_URL=https://step.esa.int/thirdparties/sen2cor/2.11.0/Sen2Cor-02.11.00-Linux64.run .
# Without it, Level-1C tasks fail with a clear error (or convert top-of-atmosphere bands
# with --allow-l1c); Level-2A products need no Sen2Cor.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgdal-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
        -p lidar-partitioner -p terrain -p ndvi -p water -p biomass --features ndvi/gdal \
        --bin lidar-partitioner --bin terrain --bin ndvi --bin water --bin biomass

FROM debian:bookworm-slim
ARG SEN2COR_URL=""
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libgdal32 \
    && if [ -n "$SEN2COR_URL" ]; then \
        apt-get install -y --no-install-recommends curl \
        && curl -fsSL "$SEN2COR_URL" -o /tmp/sen2cor.run \
        && bash /tmp/sen2cor.run --target /opt/sen2cor \
        && ln -s /opt/sen2cor/bin/L2A_Process /usr/local/bin/L2A_Process \
        && rm /tmp/sen2cor.run; \
    fi \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/lidar-partitioner /src/target/release/terrain /src/target/release/ndvi /src/target/release/water /src/target/release/biomass /usr/local/bin/
COPY docker/geobutton-entry /usr/local/bin/geobutton-entry
RUN useradd --system --uid 10001 geobutton
USER geobutton
ENTRYPOINT ["/usr/local/bin/geobutton-entry"]
