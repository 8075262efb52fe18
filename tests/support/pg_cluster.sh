#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway PostgreSQL cluster for the tests: `pg_cluster.sh start STATE`
# runs initdb in a fresh folder under $TMPDIR and starts the server on a Unix
# socket in that folder only (no TCP port), then writes the folder (line 1)
# and a libpq URL for it (line 2) to STATE. `pg_cluster.sh stop STATE` stops
# it and removes the folder. PostgreSQL refuses to run as root, so under root
# the cluster belongs to `nobody` (runuser); the socket lets any local user in
# (trust authentication: nothing listens beyond this folder).
set -euo pipefail

cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then
	echo "usage: pg_cluster.sh start|stop STATE" >&2
	exit 2
fi

bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$bindir/initdb" ]; then
	bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
	echo "pg_cluster: no initdb/pg_ctl (install postgresql: scripts/setup)" >&2
	exit 1
fi

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u nobody -- "$@"
	else
		"$@"
	fi
}

case $cmd in
start)
	dir=$(mktemp -d "${TMPDIR:-/tmp}/cmv-pg.XXXXXX")
	chmod 755 "$dir"
	mkdir "$dir/data"
	if [ "$(id -u)" -eq 0 ]; then
		chown nobody "$dir" "$dir/data"
	fi
	as_owner "$bindir/initdb" -D "$dir/data" -U cmv --auth=trust -E UTF8 --locale=C.UTF-8 \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	# speed over durability (a test cluster), and deadlocks found in 50 ms, not 1 s
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
deadlock_timeout = 50ms
max_connections = 100
shared_buffers = 64MB
CONF
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		{ cat "$dir/server.log" >&2; exit 1; }
	printf '%s\npostgresql:///postgres?host=%s&user=cmv\n' "$dir" "$dir" >"$state"
	;;
stop)
	[ -f "$state" ] || exit 0
	dir=$(sed -n 1p "$state")
	if [ -d "$dir/data" ]; then
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	case $dir in
	*/cmv-pg.*) rm -rf "$dir" ;;
	esac
	rm -f "$state"
	;;
*)
	echo "pg_cluster: unknown command '$cmd'" >&2
	exit 2
	;;
esac
