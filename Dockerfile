# syntax=docker/dockerfile:1
# One image for every role: `repovault` plus `planner`, `worker`, `reporter` and `receiver` as
# symlinks to it (it becomes the role it is invoked as). The container's command picks
# one, e.g. `command: ["worker"]`. Two more targets: `action`, the GitHub Action's image
# (`repovault action`, as root), and `fake-github`, which serves a fixture organization
# for the docker-compose demo.
#
#   docker build -t repovault .                         # the runtime image (last stage)
#   docker build -t repovault-action --target action .
#   docker build -t repovault-fake-github --target fake-github .

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Stripped, no debug info: 25 MB instead of 170 MB.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/build-release \
 && cargo build --release --locked -p repovault-testkit --bin fake-github \
 && mkdir /out \
 && cp target/release/repovault target/release/fake-github /out/

# git (the CLI does the mirror clones; http-backend serves the fake), git-lfs, CA roots.
FROM debian:bookworm-slim AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends git git-lfs ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/repovault repovault \
 && mkdir /work && chown repovault:repovault /work

FROM base AS fake-github
COPY --from=build /out/fake-github /usr/local/bin/fake-github
USER 10001:10001
WORKDIR /home/repovault
EXPOSE 8080
CMD ["fake-github", "--host", "0.0.0.0", "--port", "8080"]

# The GitHub Action's image (action.yml), published as ghcr.io/<repository>-action.
# It stays root: GitHub requires a container action to run as root, because the
# runner mounts its files into the container owned by the runner's user, and the
# action must write them: $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, the workspace (a
# folder dest). uid 10001, the runtime image's user, can write none of them. The
# runner sets the working directory (the workspace) and HOME; the clones go to a
# folder of the container's own. No `args:` in action.yml: the CMD is the command.
FROM base AS action
COPY --from=build /out/repovault /usr/local/bin/repovault
ENV REPOVAULT_WORK_DIR=/tmp/repovault-work
USER 0:0
ENTRYPOINT ["repovault"]
CMD ["action"]

FROM base AS runtime
COPY --from=build /out/repovault /usr/local/bin/repovault
RUN ln -s repovault /usr/local/bin/planner \
 && ln -s repovault /usr/local/bin/worker \
 && ln -s repovault /usr/local/bin/reporter \
 && ln -s repovault /usr/local/bin/receiver
# No secrets here: the token comes from GITHUB_TOKEN (ECS: Secrets Manager) or a file.
ENV REPOVAULT_WORK_DIR=/work
USER 10001:10001
WORKDIR /home/repovault
# ECS and `docker stop` send SIGTERM: the worker stops receiving, finishes what fits
# its grace period and releases the rest.
STOPSIGNAL SIGTERM
CMD ["repovault", "--help"]
