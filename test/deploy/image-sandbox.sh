#!/bin/sh
# A stand-in for `docker run` where no Docker engine runs (test/deploy/rootfs.test.ts). In new
# mount and network namespaces (made by the caller with `unshare -m -n`): the runtime tree that
# build-rootfs.sh produced is laid over this machine's / with overlayfs, as the image's last
# layer sits over node:20-bookworm-slim (this machine is the same Debian 12 with Node 20);
# runtime-setup.sh runs as the Dockerfile runs it; then the command runs chrooted there as the
# image's user, in its WORKDIR, with only the image's environment. The network namespace has
# only its own loopback, so the config's fixed ports are free and nothing is reachable outside.
#
#   image-sandbox.sh MOUNTPOINT ROOTFS RUNTIME_SETUP UID:GID WORKDIR -- [NAME=value…] COMMAND…
set -eu
m=$1 rootfs=$2 setup=$3 user=$4 workdir=$5
shift 5
[ "$1" = "--" ] && shift

# Everything the sandbox writes lives in a tmpfs of this mount namespace: gone when it ends.
mount -t tmpfs -o mode=0755 tmpfs "$m"
mkdir "$m/image" "$m/upper" "$m/work" "$m/merged"
# overlayfs refuses a lower layer inside another (the tree under /tmp and /): copy it to the tmpfs.
cp -a "$rootfs/." "$m/image/"
mount -t overlay overlay -o "lowerdir=$m/image:/,upperdir=$m/upper,workdir=$m/work" "$m/merged"
mount -t proc proc "$m/merged/proc"
mount --rbind /dev "$m/merged/dev"
mount -t tmpfs -o mode=1777 tmpfs "$m/merged/tmp"
sh "$setup" "$m/merged" >&2
ip link set lo up

# env -i: the image's variables only, given before the command as NAME=value.
exec chroot --userspec="$user" "$m/merged" /usr/bin/env -i -C "$workdir" "$@"
