#!/bin/bash
# Starts one ZooKeeper member of a FireCamp service; member.env beside this script says which.
# The member's myid is written into its data directory on first start and checked on every
# later one, so a volume never joins the ensemble under another member's id.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
bin() { if [ -n "$BIN_DIR" ]; then echo "$BIN_DIR/$1"; else echo "$1"; fi; }

mkdir -p "$DATA_DIR/zookeeper"
[ -n "$LOG_DIR" ] && mkdir -p "$LOG_DIR"
myid_file="$DATA_DIR/zookeeper/myid"
if [ -s "$myid_file" ] && [ "$(cat "$myid_file")" != "$MYID" ]; then
  echo "firecamp[$MEMBER]: refusing to start: the data volume belongs to server $(cat "$myid_file"), not $MYID" >&2
  exit 1
fi
echo "$MYID" > "$myid_file"
# zkEnv.sh reads zoo.cfg, java.env and logback.xml from ZOOCFGDIR.
export ZOOCFGDIR="$CONFIG_DIR"
export ZOO_LOG_DIR="$RUN_DIR"
echo "firecamp[$MEMBER]: starting as server $MYID" >&2
exec "$(bin zkServer.sh)" start-foreground "$CONFIG_DIR/zoo.cfg"
