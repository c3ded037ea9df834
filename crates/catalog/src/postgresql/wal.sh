#!/bin/bash
# archive_command and restore_command of a FireCamp PostgreSQL member (docs/backup.md).
#   wal.sh push <path> <name>   copies one WAL file into the service's archive: under its name
#                               at most once, on disk (fsync) before PostgreSQL may recycle it
#   wal.sh fetch <name> <path>  copies one archived file back, for a restore's recovery
# An archive is a directory or an s3:// URL; S3 is FireCamp's own client (`firecamp wal`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/member.env"
# `firecamp wal push|fetch` with the member's credentials file when the runtime gave it one,
# else the AWS SDK's default chain (the instance role). Its exit status is PostgreSQL's answer.
s3() {
  local creds="$SECRET_DIR/aws-credentials" endpoint=()
  if [ -f "$creds" ]; then export AWS_SHARED_CREDENTIALS_FILE="$creds"; fi
  if [ -n "${ARCHIVE_S3_ENDPOINT:-}" ]; then endpoint=(--endpoint "$ARCHIVE_S3_ENDPOINT"); fi
  exec "$ARCHIVE_TOOL" wal "$@" --region "$ARCHIVE_S3_REGION" "${endpoint[@]}"
}
case "${1:-}" in
push)
  src="$2" name="$3" dir="${ARCHIVE_DIR:-}"
  [ -n "$dir" ] || { echo "wal.sh: this member has no archive" >&2; exit 1; }
  case "$dir" in s3://*) s3 push "$src" "$dir/$name" ;; esac
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
  case "$dir" in s3://*) s3 fetch "$dir/$name" "$dst" ;; esac
  # Not archived: the end of what there is to recover (PostgreSQL asks past the end).
  [ -n "$dir" ] && [ -f "$dir/$name" ] || exit 1
  cp "$dir/$name" "$dst"
  ;;
*)
  echo "usage: wal.sh push <path> <name> | wal.sh fetch <name> <path>" >&2
  exit 2
  ;;
esac
