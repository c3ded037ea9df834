#!/bin/bash
# Starts one PostgreSQL member of a FireCamp service; member.env beside this script says which.
# First start of the initial primary: initdb, then the replication and monitoring roles and one
# physical slot per replica in single-user mode, so no client sees a half-made primary. First start of any
# other member: clone the primary with pg_basebackup through its slot. Every later start only
# starts the server: from then on the data directory (standby.signal) decides the role, except
# that a former primary told another member is the primary now rejoins it (fenced, below).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
bin() { if [ -n "$BIN_DIR" ]; then echo "$BIN_DIR/$1"; else echo "$1"; fi; }
log() { echo "firecamp[$MEMBER]: $*" >&2; }
# A stop while this script only waits ends it at once: bash itself would go on after a child
# that did not get the signal, until the stop's grace ran out. Only around waits, where nothing
# is half done; anywhere else the step finishes first.
stoppable() { trap 'exit 143' INT TERM; }
unstoppable() { trap - INT TERM; }
wait_for_primary() {
  stoppable
  until "$(bin pg_isready)" -q -h "$PRIMARY_HOST" -p "$PORT"; do sleep 0.2; done
  unstoppable
}

umask 0077
mkdir -p "$RUN_DIR"
read_secret() {
  local v
  v="$(cat "$SECRET_DIR/$1")"
  # Generated passwords are alphanumeric; anything else could break the SQL below.
  [[ "$v" =~ ^[A-Za-z0-9]+$ ]] || { log "secret $1 must be alphanumeric"; exit 1; }
  printf '%s' "$v"
}
# The metrics exporter's role (docs/monitoring.md): pg_monitor, nothing more; made or given this
# service's password (a restored service's data has its source's). A Secret made before FireCamp
# had metrics has no such key: no role then.
monitor_role() {
  [ -e "$SECRET_DIR/monitor-password" ] || return 0
  # One statement per line: the first start runs these in single-user mode.
  printf "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s; END IF; END \$\$;\n" "$MONITOR_USER" "$MONITOR_USER"
  printf "ALTER ROLE %s WITH LOGIN PASSWORD '%s';\nGRANT pg_monitor TO %s;\n" "$MONITOR_USER" "$(read_secret monitor-password)" "$MONITOR_USER"
}
# TLS: the member's certificate and key from the service's CA, copied at every start (a renewed
# certificate takes effect); PostgreSQL refuses a key that others can read. Every client this
# script runs (pg_basebackup, pg_isready) verifies the primary's certificate.
install -m 0644 "$TLS_DIR/$MEMBER.crt" "$RUN_DIR/tls.crt"
install -m 0600 "$TLS_DIR/$MEMBER.key" "$RUN_DIR/tls.key"
export PGSSLMODE=verify-full PGSSLROOTCERT="$TLS_DIR/ca.crt"
# The passfile is made from the Secret at every start, so a rotated password takes effect.
# (postgres: pg_rewind of a fenced member reads the new primary's files as the superuser.)
printf '*:*:*:%s:%s\n*:*:*:postgres:%s\n' "$REPLICATION_USER" "$(read_secret replication-password)" \
  "$(read_secret superuser-password)" > "$RUN_DIR/pgpass"
export PGPASSFILE="$RUN_DIR/pgpass"

waldir=()
[ -n "$WAL_DIR" ] && waldir=(--waldir="$WAL_DIR")

# A restored service's first member (docs/backup.md): the base backup unpacked (into a scratch
# directory first, so an interrupted unpack starts over), then recovered from the source's WAL
# archive up to the target time on a private socket, promoted, and given this service's
# passwords and slots. Until the marker file goes, a restart resumes where it stopped.
if [ -n "${RESTORE_BASE:-}" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  log "unpacking the base backup $RESTORE_BASE"
  rm -rf "$PGDATA" "$PGDATA.restoring"
  mkdir -m 0700 "$PGDATA.restoring"
  tar -xf "$RESTORE_BASE/base.tar" -C "$PGDATA.restoring"
  rm -rf "$PGDATA.restoring/pg_wal"
  if [ -n "$WAL_DIR" ]; then
    rm -rf "$WAL_DIR"
    mkdir -p -m 0700 "$WAL_DIR"
    ln -s "$WAL_DIR" "$PGDATA.restoring/pg_wal"
  else
    mkdir -m 0700 "$PGDATA.restoring/pg_wal"
  fi
  tar -xf "$RESTORE_BASE/pg_wal.tar" -C "$PGDATA.restoring/pg_wal"
  # The source's ALTER SYSTEM settings (a replica's primary_conninfo) are not this service's.
  {
    echo "restore_command = '\"$here/wal.sh\" fetch \"%f\" \"%p\"'"
    if [ -n "$RESTORE_TARGET_TIME" ]; then echo "recovery_target_time = '$RESTORE_TARGET_TIME'"; fi
    echo "recovery_target_action = 'promote'"
  } > "$PGDATA.restoring/postgresql.auto.conf"
  # A backup taken from a replica carries its standby.signal: this member recovers, then leads.
  rm -f "$PGDATA.restoring/standby.signal"
  touch "$PGDATA.restoring/recovery.signal" "$PGDATA.restoring/firecamp-restoring"
  mv "$PGDATA.restoring" "$PGDATA"
fi
# A recovery that PostgreSQL ended with a FATAL error (a target after the last archived
# transaction, a missing WAL file) cannot succeed by trying again: the reason is kept beside the
# data, where the runtime reads it to call the service FAILED.
restore_failed() {
  local why
  # The last FATAL line: the log keeps earlier attempts (stopped ones end with their own).
  why="$(grep 'FATAL' "$RUN_DIR/restore.log" | tail -n 1 || true)"
  [ -z "$why" ] || printf '%s\n' "$why" > "$PGDATA/firecamp-restore-failed"
  log "recovery failed: $(tail -n 5 "$RUN_DIR/restore.log")"
  exit 1
}
if [ -e "$PGDATA/firecamp-restore-failed" ]; then
  log "the restore failed ($(cat "$PGDATA/firecamp-restore-failed")); delete this service and restore again"
  exit 1
fi
if [ -e "$PGDATA/firecamp-restoring" ]; then
  log "recovering from the archive $RESTORE_WAL${RESTORE_TARGET_TIME:+ up to $RESTORE_TARGET_TIME}"
  # The recovering server is this script's own child (not pg_ctl's, which would leave it to
  # itself): a stop while it recovers (as long as the archive is long) stops it at once and
  # waits for it, and the next start goes on from its last restartpoint.
  # Asked until it ends: a SIGINT that comes before the server has set its handlers is lost
  # (an asynchronous command starts with SIGINT ignored). Whatever is left goes with the
  # supervisor's kill of this script's process group.
  recovering=""
  running() { local st; st="$(awk '/^State:/ {print $2}' "/proc/$1/status" 2> /dev/null)"; [ -n "$st" ] && [ "$st" != Z ]; }
  stop_recovering() {
    while [ -n "$recovering" ] && running "$recovering"; do
      kill -INT "$recovering" 2> /dev/null
      sleep 0.2
    done
    exit 143
  }
  trap stop_recovering INT TERM
  "$(bin postgres)" -D "$PGDATA" -c config_file="$CONFIG_DIR/postgresql.conf" -c listen_addresses='' \
    -c unix_socket_directories="$RUN_DIR" >> "$RUN_DIR/restore.log" 2>&1 &
  recovering=$!
  until [ "$("$(bin psql)" -Atq -h "$RUN_DIR" -p "$PORT" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2> /dev/null)" = f ]; do
    kill -0 "$recovering" 2> /dev/null || restore_failed
    sleep 1 &
    wait $!
  done
  unstoppable
  log "recovered and promoted; setting this service's passwords and slots"
  "$(bin psql)" -v ON_ERROR_STOP=1 -q -h "$RUN_DIR" -p "$PORT" -U postgres -d postgres <<SQL
ALTER ROLE postgres PASSWORD '$(read_secret superuser-password)';
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$REPLICATION_USER') THEN CREATE ROLE $REPLICATION_USER; END IF;
END \$\$;
ALTER ROLE $REPLICATION_USER WITH REPLICATION LOGIN PASSWORD '$(read_secret replication-password)';
$(monitor_role)
SELECT pg_create_physical_replication_slot(s) FROM unnest(string_to_array('$REPLICA_SLOTS', ' ')) AS s
 WHERE s <> '' AND NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = s);
ALTER SYSTEM RESET ALL;
SQL
  kill -INT "$recovering"
  wait "$recovering" || true
  rm -f "$PGDATA/firecamp-restoring"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # No PG_VERSION: nothing usable was ever made here; start over.
  rm -rf "$PGDATA"
  [ -n "$WAL_DIR" ] && rm -rf "$WAL_DIR"
  # Made in a scratch directory and moved into place once whole: a start stopped half way
  # through (after initdb, before the roles) starts over rather than serving without them.
  rm -rf "$PGDATA.new"
  if [ "$INITIAL_ROLE" = primary ]; then
    log "initialising a new primary"
    "$(bin initdb)" -D "$PGDATA.new" "${waldir[@]}" --username=postgres \
      --pwfile="$SECRET_DIR/superuser-password" --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 --data-checksums
    # Single-user mode: no server to start, wait for and stop (a fifth of a second of the
    # create). It reads one statement per line from stdin (never argv: passwords), and with
    # exit_on_error it fails on the first error. Its log stays in the private run directory.
    "$(bin postgres)" --single -D "$PGDATA.new" -c exit_on_error=on postgres > /dev/null 2> "$RUN_DIR/bootstrap.log" <<SQL ||
CREATE ROLE $REPLICATION_USER WITH REPLICATION LOGIN PASSWORD '$(read_secret replication-password)';
$(monitor_role)
SELECT pg_create_physical_replication_slot(s) FROM unnest(string_to_array('$REPLICA_SLOTS', ' ')) AS s WHERE s <> '';
SQL
      { log "creating the roles and slots failed: $(grep -E 'ERROR|FATAL' "$RUN_DIR/bootstrap.log" | tail -n 1)"; exit 1; }
  else
    log "waiting for the primary $PRIMARY_HOST:$PORT"
    wait_for_primary
    log "cloning the primary through slot $SLOT"
    "$(bin pg_basebackup)" -h "$PRIMARY_HOST" -p "$PORT" -U "$REPLICATION_USER" -w -D "$PGDATA.new" \
      "${waldir[@]}" -X stream -S "$SLOT" --checkpoint=fast
    touch "$PGDATA.new/standby.signal"
  fi
  mv "$PGDATA.new" "$PGDATA"
fi
# Fenced: a data directory that was a primary's while another member is the primary now (after
# a failover). It may hold WAL the new primary never received, so it never starts writable:
# pg_rewind (after crash recovery when it was not shut down cleanly) brings it onto the new
# primary's timeline, then it starts as a replica. "No rewind required" is the clean case.
if [ "$INITIAL_ROLE" = replica ] && [ -n "$PRIMARY_HOST" ] && [ ! -e "$PGDATA/standby.signal" ]; then
  log "fenced: this data directory was a primary's; rejoining $PRIMARY_HOST as a replica"
  # Rewound only onto a promoted primary: a standby still being promoted answers pg_isready
  # on the old timeline, and pg_rewind would find "no rewind required" for a directory that
  # then diverges from it (and never streams). A primary promoted moments ago writes its new
  # timeline into its control file, which pg_rewind reads, only at the checkpoint after the
  # promotion: asked for first, as pg_rewind's documentation advises.
  stoppable
  until [ "$("$(bin psql)" -Atq -h "$PRIMARY_HOST" -p "$PORT" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2> /dev/null)" = f ]; do
    sleep 0.2
  done
  unstoppable
  "$(bin psql)" -q -h "$PRIMARY_HOST" -p "$PORT" -U postgres -d postgres -c CHECKPOINT \
    || log "CHECKPOINT on $PRIMARY_HOST failed; rewinding anyway"
  if ! "$(bin pg_rewind)" --target-pgdata="$PGDATA" \
    --source-server="host=$PRIMARY_HOST port=$PORT user=postgres dbname=postgres"; then
    # pg_rewind needs this directory's WAL back to the last checkpoint before the two diverged,
    # which a busy or crash-recovered server may have recycled. The member is cloned again; its
    # old directory is kept beside the new one (one generation) for whoever wants to look.
    log "pg_rewind failed: cloning $PRIMARY_HOST again through slot $SLOT; the old data is kept in $PGDATA.before-rejoin"
    rm -rf "$PGDATA.before-rejoin"
    mv "$PGDATA" "$PGDATA.before-rejoin"
    if [ -n "$WAL_DIR" ]; then
      rm -rf "$WAL_DIR.before-rejoin"
      mv "$WAL_DIR" "$WAL_DIR.before-rejoin"
    fi
    "$(bin pg_basebackup)" -h "$PRIMARY_HOST" -p "$PORT" -U "$REPLICATION_USER" -w -D "$PGDATA" \
      "${waldir[@]}" -X stream -S "$SLOT" --checkpoint=fast
  fi
  touch "$PGDATA/standby.signal"
fi
# A running replica is re-pointed after a switchover with ALTER SYSTEM (postgresql.auto.conf);
# from its next start on, its files (which name the current primary) decide again.
if [ -f "$PGDATA/postgresql.auto.conf" ]; then
  sed -i '/^primary_conninfo = /d' "$PGDATA/postgresql.auto.conf"
fi
log "starting"
exec "$(bin postgres)" -c config_file="$CONFIG_DIR/postgresql.conf"
