#!/bin/sh
# Builds the relay image's runtime tree: the Dockerfile's build stage runs exactly this, and
# test/deploy/rootfs.test.ts runs it on the CI machine into a temp dir, so the image's steps
# are tested even where no Docker engine runs.
#
#   build-rootfs.sh deps SRC          npm ci from the lockfile; needs only the manifests, so the
#                                     Dockerfile runs it before copying the sources and its layer
#                                     is reused until package.json or package-lock.json change
#   build-rootfs.sh tree SRC ROOTFS   build, pack and install the runtime tree
#
# SRC is a copy of the repository (the Docker build context); it gets node_modules and the
# packages' builds. ROOTFS receives only what the relay needs at run time, laid out as in the
# image: /opt/mport (the published relay and library packages, as `npm pack` makes them, plus
# their production dependencies at the versions of package-lock.json), a mport-relay command
# in /usr/local/bin, and the default config in /etc/mport.
set -eu
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

step=$1
src=$(cd "$2" && pwd)
cd "$src"
# 1. Dependencies from the lockfile. Scripts stay off: no dependency needs one to build
#    (esbuild's, for tsx, only matters to the tests).
if [ "$step" = deps ]; then
  npm ci --ignore-scripts
  exit 0
fi
[ "$step" = tree ] || { echo "build-rootfs.sh: unknown step $step (deps or tree)" >&2; exit 2; }
mkdir -p "$3"
rootfs=$(cd "$3" && pwd)
app="$rootfs/opt/mport"

# 2. Only the library and the relay are built (the relay's build reads the library's types from
#    its dist); the root's `build` would compile the client too.
npm run build -w mport
npm run build -w mport-relay

# 3. The packages exactly as a registry would serve them (their "files" lists decide what ships).
packs=$(mktemp -d)
npm pack --silent -w mport -w mport-relay --pack-destination "$packs" >/dev/null

# 4. The runtime tree: the workspace's manifest and lockfile, so `npm ci` installs the relay's
#    production dependencies at the locked versions and links the two packages as workspaces.
rm -rf "$app"
mkdir -p "$app/packages/mport" "$app/packages/mport-relay" "$app/packages/mport-connect"
cp package.json package-lock.json "$app/"
tar -xzf "$packs"/mport-0*.tgz -C "$app/packages/mport" --strip-components=1
tar -xzf "$packs"/mport-relay-0*.tgz -C "$app/packages/mport-relay" --strip-components=1
# The client is a workspace in the lockfile; its manifest alone keeps `npm ci` consistent, and
# --workspace below leaves its dependencies out.
cp packages/mport-connect/package.json "$app/packages/mport-connect/"
rm -rf "$packs"
cd "$app"
npm ci --omit=dev --ignore-scripts --workspace mport-relay
rm -rf packages/mport-connect node_modules/mport-connect
# What no running relay reads (about 20 MB): type declarations, source maps, TypeScript
# sources, the test folders some dependencies ship, and libsql's binary for the other libc.
find node_modules/ -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.ts' -o -name '*.test.js' \) -delete
find node_modules/ -type d \( -name test -o -name tests -o -name __tests__ \) -prune -exec rm -rf {} +
if ldd --version 2>&1 | grep -qi musl; then rm -rf node_modules/@libsql/*-gnu; else rm -rf node_modules/@libsql/*-musl; fi

# 5. The command and the default config.
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/mport"
ln -sf /opt/mport/packages/mport-relay/bin/mport-relay.js "$rootfs/usr/local/bin/mport-relay"
cp "$src/deploy/docker/relay.yaml" "$rootfs/etc/mport/relay.yaml"
