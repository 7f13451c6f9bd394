#!/bin/sh
# The runtime stage's setup, run as root in the image (and by test/deploy/rootfs.test.ts in
# its stand-in for the image): the relay's own user with a fixed uid/gid, so volume
# permissions are the same on every host, and the /data volume that user owns.
#
#   runtime-setup.sh [ROOT]     (ROOT defaults to /)
set -eu
root=${1:-/}
uid=10001
gid=10001
# --prefix (shadow-utils 4.8+) edits ROOT's passwd/group instead of this machine's.
groupadd --prefix "$root" --gid "$gid" mport
useradd --prefix "$root" --uid "$uid" --gid "$gid" --no-create-home --home-dir /data --shell /usr/sbin/nologin mport
mkdir -p "$root/data"
chown "$uid:$gid" "$root/data"
chmod 0700 "$root/data"
