#!/bin/bash
# archive_command and restore_command of a FireCamp PostgreSQL member (docs/backup.md).
#   wal.sh push <path> <name>   copies one WAL file into the service's archive: under its name
#                               at most once, on disk (fsync) before PostgreSQL may recycle it
#   wal.sh fetch <name> <path>  copies one archived file back, for a restore's recovery
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
case "${1:-}" in
push)
  src="$2" name="$3" dir="${ARCHIVE_DIR:-}"
  [ -n "$dir" ] || { echo "wal.sh: this member has no archive" >&2; exit 1; }
  dst="$dir/$name"
  if [ -e "$dst" ]; then
    # Archived before (a retry after a crash between the copy and PostgreSQL's note of it):
    # the same bytes are success; other bytes are never overwritten.
    cmp -s "$src" "$dst" && exit 0
    echo "wal.sh: $dst exists with other content; not overwritten" >&2
    exit 1
  fi
  tmp="$dir/.$name.$$"
  trap 'rm -f "$tmp"' EXIT
  cp "$src" "$tmp"
  sync "$tmp"
  mv "$tmp" "$dst"
  sync "$dir"
  ;;
fetch)
  name="$2" dst="$3" dir="${RESTORE_WAL:-}"
  # Not archived: the end of what there is to recover (PostgreSQL asks past the end).
  [ -n "$dir" ] && [ -f "$dir/$name" ] || exit 1
  cp "$dir/$name" "$dst"
  ;;
*)
  echo "usage: wal.sh push <path> <name> | wal.sh fetch <name> <path>" >&2
  exit 2
  ;;
esac
