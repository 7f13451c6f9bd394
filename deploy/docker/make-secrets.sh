#!/bin/sh
# Writes the secrets docker-compose.yml mounts, once: an existing file is kept, so running it
# again never changes a password under a running database.
#
#   sh deploy/docker/make-secrets.sh [DIR]      (default deploy/secrets, which git ignores)
#
# Compose mounts each file into its container as it is on the host, and each service reads its
# own as a different uid (the relay 10001, PostgreSQL 999, Grafana 472): so the files are
# readable (0444) and the folder holding them is private to you (0700), which keeps other
# users of this host out while every container can read what it is given.
set -eu
dir=${1:-$(dirname "$0")/../secrets}
mkdir -p "$dir"
chmod 0700 "$dir"

random () { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
# write NAME VALUE: unless NAME exists.
write () {
  if [ -e "$dir/$1" ]; then echo "kept $dir/$1"; return; fi
  printf '%s\n' "$2" > "$dir/$1"
  chmod 0444 "$dir/$1"
  echo "wrote $dir/$1"
}

write relay_token "mpt_$(random)"
write postgres_password "$(random)"
# The relay's database URL carries the same password: made from the file, not a new one.
write database_url "postgres://mport:$(cat "$dir/postgres_password")@postgres:5432/mport"
write grafana_admin_password "$(random)"
# The secret the relay nodes of docker-compose.cluster.yml prove to each other on their links.
write cluster_key "$(random)"
