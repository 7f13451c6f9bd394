# syntax=docker/dockerfile:1
# The mport relay. Build: docker build -t mport-relay .   Run: see docs/DEPLOYMENT.md.
#
# Base: node:20-bookworm-slim (Debian 12, glibc), not -alpine: it is the system the CI machine
# runs, so the runtime tree that test/deploy/rootfs.test.ts builds with these same scripts and
# starts there (the libsql native binary included) is the one this image gets; musl would put
# an untested binary in production. slim drops the compilers and docs (~75 MB vs ~400 MB).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# The manifests first, so the npm ci layer is reused until they change.
COPY package.json package-lock.json ./
COPY packages/mport/package.json packages/mport/
COPY packages/mport-connect/package.json packages/mport-connect/
COPY packages/mport-relay/package.json packages/mport-relay/
COPY deploy/docker/build-rootfs.sh deploy/docker/
RUN sh deploy/docker/build-rootfs.sh deps /src
COPY . .
# Build, then only the relay's runtime files and production dependencies into /rootfs.
RUN sh deploy/docker/build-rootfs.sh tree /src /rootfs

FROM ${NODE_IMAGE}
# tini as PID 1: it forwards SIGTERM to the relay (which then drains) and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/runtime-setup.sh /usr/local/lib/mport/runtime-setup.sh
RUN sh /usr/local/lib/mport/runtime-setup.sh /
COPY --from=build /rootfs/ /

ENV NODE_ENV=production
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# 7835 control (TLS), 80/443 shared HTTP/HTTPS for web tunnels, 7836 REST API, 7837 ops
# (/healthz, /readyz, /metrics), 20000-20099 public tunnel ports (the config's `ports`).
# Binding 80/443 as a non-root user: run with --sysctl net.ipv4.ip_unprivileged_port_start=80
# (docker-compose.yml does), or map host 80 → a high port in the container.
EXPOSE 7835 80 443 7836 7837 20000-20099

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:7837/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/mport/packages/mport-relay/bin/mport-relay.js"]
CMD ["--config", "/etc/mport/relay.yaml"]
