#!/bin/bash
# Starts one MariaDB member of a FireCamp service; member.env beside this script says which and
# whether it is the primary. The data directory is made once (mariadb-install-db). Every start
# writes the server's init file from the Secret: on the primary the users and their passwords
# (replicated to the replicas through the binary log), on a replica the link to the current
# primary by GTID over TLS. The file is private to the server; no password is on any argv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
bin() { if [ -n "$BIN_DIR" ]; then echo "$BIN_DIR/$1"; else echo "$1"; fi; }
log() { echo "firecamp[$MEMBER]: $*" >&2; }

umask 0077
# Temporary tables in the member's own directory: /tmp is shared (and members bootstrapping at
# once collide there).
mkdir -p "$RUN_DIR" "$TMP_DIR"
export TMPDIR="$TMP_DIR"
read_secret() {
  local v
  v="$(cat "$SECRET_DIR/$1")"
  # Generated passwords are alphanumeric; anything else could break the statements below.
  [[ "$v" =~ ^[A-Za-z0-9]+$ ]] || { log "secret $1 must be alphanumeric"; exit 1; }
  printf '%s' "$v"
}

# Made aside and moved into place once complete, so an interrupted one is made again.
fresh=false
if [ ! -d "$DATADIR" ]; then
  log "creating the data directory"
  rm -rf "$DATADIR.new"
  mkdir -p "$DATADIR.new"
  "$(bin mariadb-install-db)" --no-defaults --datadir="$DATADIR.new" --user="$(id -un)" --skip-test-db \
    --auth-root-authentication-method=socket > /dev/null
  mv "$DATADIR.new" "$DATADIR"
  fresh=true
fi
mkdir -p "$BINLOG_DIR"

# One statement per line: the server runs them before it takes connections and stops if one fails.
init="$RUN_DIR/init.sql"
admin="$(read_secret root-password)" repl="$(read_secret replication-password)"
if [ "$ROLE" = primary ]; then
  {
    # A former replica keeps no link to its old primary.
    $fresh || echo "RESET SLAVE ALL;"
    # Made on the first start, passwords set at every start (a rotated one takes effect); all of
    # it goes through the binary log to the replicas.
    echo "CREATE USER IF NOT EXISTS '$ADMIN_USER'@'%' IDENTIFIED BY '$admin';"
    echo "ALTER USER '$ADMIN_USER'@'%' IDENTIFIED BY '$admin';"
    echo "GRANT ALL PRIVILEGES ON *.* TO '$ADMIN_USER'@'%' WITH GRANT OPTION;"
    echo "CREATE USER IF NOT EXISTS '$REPLICATION_USER'@'%' IDENTIFIED BY '$repl' REQUIRE SSL;"
    echo "ALTER USER '$REPLICATION_USER'@'%' IDENTIFIED BY '$repl' REQUIRE SSL;"
    echo "GRANT REPLICATION SLAVE ON *.* TO '$REPLICATION_USER'@'%';"
  } > "$init"
else
  [ -n "$PRIMARY_HOST" ] || { log "a replica without a primary"; exit 1; }
  {
    # Replicas log what they apply (log_slave_updates), so the binary log's position is the
    # replica's; a former primary's slave position would be empty or stale, and it must go on
    # from what it has (a primary that lacks it refuses: the member diverged).
    echo "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos;"
    echo "CHANGE MASTER TO MASTER_HOST='$PRIMARY_HOST', MASTER_PORT=$PORT, MASTER_USER='$REPLICATION_USER', MASTER_PASSWORD='$repl', MASTER_SSL=1, MASTER_SSL_CA='$TLS_DIR/ca.crt', MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;"
    echo "START SLAVE;"
  } > "$init"
  log "replicating from $PRIMARY_HOST"
fi

log "starting as the $ROLE"
exec "$(bin mariadbd)" --defaults-file="$CONFIG_DIR/my.cnf" --init-file="$init"
