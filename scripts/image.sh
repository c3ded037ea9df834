#!/usr/bin/env bash
# Builds FireCamp's container images without a registry: Debian bookworm root filesystems made by
# mmdebstrap, packed by umoci into OCI image-layout archives under target/images/.
#
#   scripts/image.sh [NAME...]      NAME: postgres redis zookeeper firecamp pause (default: all)
#
# Import an archive into containerd under the name the catalog pins, for example
#   ctr -n k8s.io images import --base-name docker.io/library/postgres target/images/postgres.tar
# (the archive carries only the tag; --base-name supplies the repository). See docs/images.md.
#
# Environment: FIRECAMP_BIN (default target/release/firecamp), PAUSE_BIN (default
# testbed/bin/pause), IMAGE_FORCE=1 (ignore the stamps), IMAGE_JOBS (parallel builds, max 2),
# DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR (default: the host's apt sources), SOURCE_DATE_EPOCH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/scripts/image.sh"
OUT="$ROOT/target/images"
WORK="$OUT/work"
# A fixed time for every file, layer and config, so the same inputs give the same image.
EPOCH="${SOURCE_DATE_EPOCH:-1735689600}" # 2025-01-01T00:00:00Z
SUITE=bookworm

# Longest first, so that with two slots the short builds fill in beside the long ones.
ALL=(postgres zookeeper redis firecamp pause)

declare -A TAG=(
  [postgres]=15.10-bookworm [redis]=7.0.15-bookworm [zookeeper]=3.8.4 [pause]=3.10
)
# The repository each archive is imported under (only documentation: archives hold the tag).
declare -A REPO=(
  [postgres]=docker.io/library/postgres [redis]=docker.io/library/redis
  [zookeeper]=docker.io/library/zookeeper [firecamp]=docker.io/firecampdev/firecamp
  [pause]=firecamp.local/pause
)
# Debian packages on top of minbase. ZooKeeper takes the library package, not `zookeeper`: that
# one depends on default-jre (GTK and Mesa through openjdk-17-jre) and adds only Debian's service
# scripts, and its postinst fails on a non-system `zookeeper` user (uid 1000). Its probes speak
# the four-letter words over TLS with `openssl s_client` (ca-certificates brings it; named here).
# The exporters serve the members' metrics (a sidecar container runs them, docs/monitoring.md).
declare -A PACKAGES=(
  [postgres]="postgresql-15 prometheus-postgres-exporter"
  [redis]="redis-server redis-tools prometheus-redis-exporter"
  [zookeeper]="libzookeeper-java libslf4j-java default-jre-headless openssl"
  [firecamp]="iproute2 ca-certificates"
)
# name:uid:gid:home:shell, created before the packages install so their postinst finds it.
declare -A ACCOUNT=(
  [postgres]="postgres:999:999:/var/lib/postgresql:/bin/bash"
  [redis]="redis:999:999:/var/lib/redis:/usr/sbin/nologin"
  [zookeeper]="zookeeper:1000:1000:/nonexistent:/usr/sbin/nologin"
  [firecamp]="firecamp:65532:65532:/nonexistent:/usr/sbin/nologin"
)
declare -A MAIN_PACKAGE=([postgres]=postgresql-15 [redis]=redis-server [zookeeper]=libzookeeper-java)
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { echo "image.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# --- inputs ---------------------------------------------------------------------------------

firecamp_version() {
  local v
  v="$(awk '/^\[/{s=($0=="[workspace.package]")} s&&/^version *=/{gsub(/.*= *"|".*/,"");print;exit}' "$ROOT/Cargo.toml")"
  [ -n "$v" ] || v="$(awk -F'"' '/^version *= *"/{print $2;exit}' "$ROOT/crates/cli/Cargo.toml")"
  [ -n "$v" ] || die "no version in Cargo.toml or crates/cli/Cargo.toml"
  echo "$v"
}

firecamp_bin() { echo "${FIRECAMP_BIN:-$ROOT/target/release/firecamp}"; }

# The bed's build makes testbed/bin/pause; without it, build our own copy from the same source.
pause_bin() {
  if [ -n "${PAUSE_BIN:-}" ]; then echo "$PAUSE_BIN"
  elif [ -x "$ROOT/testbed/bin/pause" ]; then echo "$ROOT/testbed/bin/pause"
  else echo "$WORK/pause"; fi
}

# Binaries the images need are made before the parallel builds start, one at a time.
prepare_binary() {
  local name=$1 bin
  case "$name" in
    firecamp)
      bin="$(firecamp_bin)"
      [ -x "$bin" ] && return
      log "$bin is missing: cargo build --release --locked -p firecamp"
      (cd "$ROOT" && cargo build --release --locked -p firecamp) >>"$OUT/firecamp.log" 2>&1 ||
        die "firecamp failed: cargo build, see target/images/firecamp.log"
      [ -x "$bin" ] || die "firecamp failed: cargo built no $bin"
      ;;
    zookeeper)
      # ZooKeeper's Prometheus provider: not in Debian; from Maven Central, fetched again only
      # when the pom that names its jars changes.
      local pom="$ROOT/scripts/zookeeper-metrics/pom.xml" dir="$OUT/zookeeper-metrics"
      [ "$(cat "$dir/.pom.sha256" 2>/dev/null)" = "$(sha256sum <"$pom")" ] && return
      log "zookeeper: fetching its Prometheus provider (mvn dependency:copy-dependencies)"
      rm -rf "$dir" "$dir.partial" && mkdir -p "$dir.partial"
      mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$dir.partial" >>"$OUT/zookeeper.log" 2>&1 ||
        die "zookeeper failed: mvn, see target/images/zookeeper.log"
      sha256sum <"$pom" >"$dir.partial/.pom.sha256"
      mv "$dir.partial" "$dir"
      ;;
    pause)
      bin="$(pause_bin)"
      if [ "$bin" != "$WORK/pause" ]; then
        [ -x "$bin" ] || die "pause failed: $bin is not an executable"
        return 0
      fi
      log "no testbed/bin/pause: go build from testbed/pause"
      (cd "$ROOT/testbed/pause" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin" .) \
        >>"$OUT/pause.log" 2>&1 || die "pause failed: go build, see target/images/pause.log"
      ;;
  esac
}

# Everything an image is made from: this script, its files under images/, its packages, the
# binary it carries. Equal fingerprints mean the archive can be reused as it is.
fingerprint() {
  local name=$1
  {
    echo "epoch $EPOCH tag $(image_tag "$name")"
    sha256sum "$SELF" | cut -d' ' -f1
    if [ -d "$ROOT/images/$name" ]; then
      (cd "$ROOT/images" && find "$name" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    fi
    echo "packages ${PACKAGES[$name]:-}"
    case "$name" in
      zookeeper) sha256sum <"$ROOT/scripts/zookeeper-metrics/pom.xml" ;;
      firecamp) sha256sum <"$(firecamp_bin)" ;;
      pause) sha256sum <"$(pause_bin)" ;;
    esac
  } | sha256sum | cut -d' ' -f1
}

image_tag() {
  if [ "$1" = firecamp ]; then firecamp_version; else echo "${TAG[$1]}"; fi
}

# --- Debian root filesystems ----------------------------------------------------------------

# The first URI of the host's apt sources that serves SUITE with main (deb822 and one-line).
host_mirror() {
  local suite=$1
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      awk -v s="$suite" 'BEGIN{RS="";FS="\n"} {
        t=u=su=c=""; on=1
        for(i=1;i<=NF;i++){ split($i,kv,/: */); k=tolower(kv[1]); v=substr($i,length(kv[1])+2); sub(/^ +/,"",v)
          if(k=="types")t=v; else if(k=="uris")u=v; else if(k=="suites")su=v; else if(k=="components")c=v
          else if(k=="enabled"&&v=="no")on=0 }
        if(on && (" " t " ") ~ / deb / && (" " su " ") ~ (" " s " ") && (" " c " ") ~ / main /){ split(u,a," "); print a[1]; exit }
      }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      sed -E 's/\[[^]]*\]//' "$f" | awk -v s="$suite" '$1=="deb" && $3==s { for(i=4;i<=NF;i++) if($i=="main"){print $2; exit} }'
    done
  } | head -n1
}

mirror_lines() {
  local main sec
  main="${DEBIAN_MIRROR:-$(host_mirror "$SUITE")}"
  sec="${DEBIAN_SECURITY_MIRROR:-$(host_mirror "$SUITE-security")}"
  main="${main:-http://deb.debian.org/debian}"
  sec="${sec:-http://deb.debian.org/debian-security}"
  printf '%s\n' "deb $main $SUITE main" "deb $main $SUITE-updates main" "deb $sec $SUITE-security main"
}

# mmdebstrap hook, run as `image.sh _essential NAME ROOT` once the Essential packages are in and
# before the rest: the image's account gets its fixed ids now, so the packages' postinst scripts
# (adduser --system) find it instead of picking the next free id.
hook_essential() {
  local name=$1 r=$2 user uid gid home shell
  if [ -n "${ACCOUNT[$name]:-}" ]; then
    IFS=: read -r user uid gid home shell <<<"${ACCOUNT[$name]}"
    grep -q "^$user:" "$r/etc/group" || echo "$user:x:$gid:" >>"$r/etc/group"
    grep -q "^$user:" "$r/etc/passwd" || echo "$user:x:$uid:$gid:$user:$home:$shell" >>"$r/etc/passwd"
    # passwd's postinst (shadowconfig) makes shadow/gshadow later; fill them if they exist.
    if [ -f "$r/etc/shadow" ] && ! grep -q "^$user:" "$r/etc/shadow"; then
      echo "$user:!:$((EPOCH / 86400))::::::" >>"$r/etc/shadow"
    fi
    if [ -f "$r/etc/gshadow" ] && ! grep -q "^$user:" "$r/etc/gshadow"; then
      echo "$user:!::" >>"$r/etc/gshadow"
    fi
  fi
  # update-alternatives (openjdk's java.1.gz) fails when a slave link's directory is missing,
  # and path-exclude keeps dpkg from making it.
  mkdir -p "$r/usr/share/man/man1"
  if [ "$name" = postgres ]; then
    # FireCamp runs initdb itself: no cluster at install time (the official image does the same).
    mkdir -p "$r/etc/postgresql-common/createcluster.d"
    echo "create_main_cluster = false" >"$r/etc/postgresql-common/createcluster.d/00-firecamp.conf"
  fi
}

# mmdebstrap hook, run as `image.sh _customize NAME ROOT` after all packages: add the image's own
# files, drop what only a running system or apt needs, and check the account kept its ids.
hook_customize() {
  local name=$1 r=$2 user uid gid
  if [ "$name" = zookeeper ]; then
    install -m 0755 "$ROOT/images/zookeeper/zkServer.sh" "$r/usr/local/bin/zkServer.sh"
    # The launcher relies on these: fail the build, not the first pod, if the package changes.
    local jar
    for jar in zookeeper.jar zookeeper-jute.jar slf4j-api.jar slf4j-simple.jar netty-codec.jar netty-resolver.jar; do
      [ -f "$r/usr/share/java/$jar" ] || die "zookeeper: /usr/share/java/$jar is missing"
    done
    # The Prometheus provider's jars (prepare_binary fetched them), which zkServer.sh adds.
    mkdir -p "$r/usr/share/java/zookeeper-metrics"
    install -m 0644 "$OUT"/zookeeper-metrics/*.jar "$r/usr/share/java/zookeeper-metrics/"
    ls "$r"/usr/share/java/zookeeper-metrics/zookeeper-prometheus-metrics-*.jar >/dev/null ||
      die "zookeeper: the Prometheus provider's jar is missing"
  fi
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
    "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old "$r"/etc/*- "$r"/var/log/apt/*
  # The runtime mounts its own; the build host's must not leak into the image.
  install -m 0644 /dev/null "$r/etc/resolv.conf"
  install -m 0644 /dev/null "$r/etc/hostname"
  if [ -n "${ACCOUNT[$name]:-}" ]; then
    IFS=: read -r user uid gid _ <<<"${ACCOUNT[$name]}"
    [ "$(awk -F: -v u="$user" '$1==u{print $3":"$4}' "$r/etc/passwd")" = "$uid:$gid" ] ||
      die "$name: user $user does not have uid:gid $uid:$gid"
    [ "$(awk -F: -v g="$gid" '$3==g' "$r/etc/group" | wc -l)" = 1 ] || die "$name: gid $gid is shared"
    [ "$(awk -F: -v u="$uid" '$3==u' "$r/etc/passwd" | wc -l)" = 1 ] || die "$name: uid $uid is shared"
  fi
}

# One root filesystem tarball, reproducible for a given mirror state and SOURCE_DATE_EPOCH.
debian_rootfs() {
  local name=$1 tar=$2 mirrors
  mapfile -t mirrors < <(mirror_lines)
  log "$name: mmdebstrap from ${mirrors[0]#deb }"
  mkdir -p "$WORK/tmp"
  # Docs, man pages and translations go; copyright files stay (as in Debian's slim images).
  # The merged-usr hook makes the /usr symlinks itself and installs usr-is-merged: otherwise
  # init-system-helpers pulls in usrmerge, and with it 50 MB of perl.
  SOURCE_DATE_EPOCH="$EPOCH" TMPDIR="$WORK/tmp" mmdebstrap --variant=minbase --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include="$(echo "${PACKAGES[$name]}" | tr ' ' ',')" \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --essential-hook="bash \"$SELF\" _essential $name \"\$1\"" \
    --customize-hook="bash \"$SELF\" _customize $name \"\$1\"" \
    --skip=output/dev \
    "$SUITE" "$tar.tmp" "${mirrors[@]}"
  add_empty_dir "$tar.tmp" dev
  mv "$tar.tmp" "$tar"
}

# mmdebstrap leaves ./dev out with --skip=output/dev (no device nodes in a layer); the runtime
# mounts /dev over an empty directory.
add_empty_dir() {
  local tar=$1 dir=$2 tmp
  tmp="$(mktemp -d "$WORK/tmp/dir.XXXXXX")"
  mkdir -m 0755 "$tmp/$dir"
  tar_det -C "$tmp" --no-recursion -rf "$tar" "./$dir"
  rm -rf "$tmp"
}

# tar with fixed owners, order and times.
tar_det() {
  tar --sort=name --mtime="@$EPOCH" --clamp-mtime --owner=0 --group=0 --numeric-owner --format=pax \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime "$@"
}

# A layer holding one executable at PATH (relative to /), owned by root.
file_layer() {
  local src=$1 path=$2 layer=$3 tmp
  tmp="$(mktemp -d "$WORK/tmp/layer.XXXXXX")"
  install -D -m 0755 "$src" "$tmp/$path"
  (cd "$tmp" && find . -mindepth 1 -type d -exec chmod 0755 {} +)
  # Not "." itself: the temporary directory's 0700 would become the image's /.
  tar_det -C "$tmp" -cf "$layer" "./${path%%/*}"
  rm -rf "$tmp"
}

# The Debian version of PACKAGE inside a root filesystem tarball, for the image's labels.
package_version() {
  tar -xOf "$1" ./var/lib/dpkg/status |
    awk -v p="$2" '/^Package: /{m=($2==p)} m&&/^Version: /{print $2}' # no early exit: SIGPIPE
}

# --- OCI archives ---------------------------------------------------------------------------

# oci_archive NAME TAG ARCHIVE LAYER... -- umoci config arguments
oci_archive() {
  local name=$1 tag=$2 archive=$3 oci="$WORK/$1.oci" created layers=()
  shift 3
  while [ "$1" != -- ]; do layers+=("$1"); shift; done
  shift
  created="$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
  rm -rf "$oci"
  umoci init --layout "$oci"
  umoci new --image "$oci:$tag"
  # A fixed history entry per layer (tools that pair layers with history need one).
  local layer
  for layer in "${layers[@]}"; do
    umoci raw add-layer --image "$oci:$tag" --history.created "$created" \
      --history.created_by "scripts/image.sh: $(basename "$layer" .tar)" "$layer"
  done
  umoci config --no-history --image "$oci:$tag" --created "$created" \
    --config.label "org.opencontainers.image.created=$created" "$@"
  umoci gc --layout "$oci"
  tar_det -C "$oci" -cf "$archive.tmp" .
  mv "$archive.tmp" "$archive"
  rm -rf "$oci"
}

build_engine() {
  local name=$1 archive=$2 tag rootfs="$WORK/$1-rootfs.tar" user uid gid version path=$BASE_PATH
  tag="$(image_tag "$name")"
  debian_rootfs "$name" "$rootfs"
  version="$(package_version "$rootfs" "${MAIN_PACKAGE[$name]}")"
  IFS=: read -r user uid gid _ <<<"${ACCOUNT[$name]}"
  local config=(--config.user "$uid:$gid" --config.env LANG=C.UTF-8
    --config.label "org.opencontainers.image.version=$version"
    --config.label "org.opencontainers.image.description=FireCamp $name image: Debian $SUITE ${PACKAGES[$name]}")
  case "$name" in
    postgres)
      path="/usr/lib/postgresql/15/bin:$BASE_PATH"
      config+=(--config.cmd postgres --config.stopsignal SIGINT) ;;
    redis) config+=(--config.cmd redis-server) ;;
    zookeeper) config+=(--config.env ZOOCFGDIR=/conf --config.cmd zkServer.sh --config.cmd start-foreground) ;;
  esac
  oci_archive "$name" "$tag" "$archive" "$rootfs" -- --config.env "PATH=$path" "${config[@]}"
  rm -f "$rootfs"
}

# Two layers: the Debian base changes rarely and is kept between builds under its own stamp, so
# a new binary repacks only the small second layer.
build_firecamp() {
  local archive=$1 tag base="$WORK/firecamp-base.tar" base_stamp bin layer="$WORK/firecamp-bin.tar"
  tag="$(image_tag firecamp)"
  bin="$(firecamp_bin)"
  base_stamp="$(printf '%s\n' "$EPOCH" "$(sha256sum "$SELF")" "${PACKAGES[firecamp]}" | sha256sum | cut -d' ' -f1)"
  if [ -f "$base" ] && [ "$(cat "$base.stamp" 2>/dev/null)" = "$base_stamp" ]; then
    log "firecamp: reusing the base layer $base"
  else
    rm -f "$base.stamp"
    debian_rootfs firecamp "$base"
    echo "$base_stamp" >"$base.stamp"
  fi
  file_layer "$bin" usr/local/bin/firecamp "$layer"
  # member-init, which needs NET_ADMIN, is run as root by its pod spec; the default is non-root.
  oci_archive firecamp "$tag" "$archive" "$base" "$layer" -- \
    --config.user 65532:65532 --config.env "PATH=$BASE_PATH" --config.env LANG=C.UTF-8 \
    --config.entrypoint /usr/local/bin/firecamp \
    --config.label "org.opencontainers.image.version=$tag" \
    --config.label "org.opencontainers.image.description=FireCamp: Debian $SUITE ${PACKAGES[firecamp]} and the firecamp binary"
  rm -f "$layer"
}

# No Debian: the static program alone, as registry.k8s.io/pause is.
build_pause() {
  local archive=$1 layer="$WORK/pause-layer.tar"
  file_layer "$(pause_bin)" pause "$layer"
  oci_archive pause "$(image_tag pause)" "$archive" "$layer" -- \
    --config.user 65535:65535 --config.entrypoint /pause \
    --config.label "org.opencontainers.image.description=FireCamp sandbox (pause) image"
  rm -f "$layer"
}

mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN{printf "%.1f MiB", b/1048576}'; }

# Builds one image unless its stamp matches; reports one line on fd 3.
build_one() {
  local name=$1 archive="$OUT/$1.tar" stamp="$OUT/$1.stamp" fp start
  fp="$(fingerprint "$name")"
  if [ -z "${IMAGE_FORCE:-}" ] && [ -f "$archive" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$fp" ]; then
    echo "$name: up to date, $(mib "$archive") (target/images/$name.tar)" >&3
    return
  fi
  start=$SECONDS
  rm -f "$stamp"
  case "$name" in
    firecamp) build_firecamp "$archive" ;;
    pause) build_pause "$archive" ;;
    *) build_engine "$name" "$archive" ;;
  esac
  echo "$fp" >"$stamp"
  echo "$name: built in $((SECONDS - start)) s, $(mib "$archive") (target/images/$name.tar, ${REPO[$name]}:$(image_tag "$name"))" >&3
}

# Waits for one of run_all's builds and records it if it failed (running and failed are
# run_all's variables).
reap_one() {
  local pid rc=0
  wait -n -p pid "${!running[@]}" || rc=$?
  ((rc == 0)) || failed+=("${running[$pid]}")
  unset "running[$pid]"
}

# Runs the builds, at most IMAGE_JOBS (≤ 2) at once: mmdebstrap waits mostly on the network and
# the disk, and the machine's two cores are shared with other builds.
run_all() {
  local jobs="${IMAGE_JOBS:-2}" name failed=()
  declare -A running=()
  ((jobs >= 1 && jobs <= 2)) || jobs=2
  for name in "$@"; do
    while ((${#running[@]} >= jobs)); do reap_one; done
    : >"$OUT/$name.log.new"
    (
      set -E # name the command that failed, not only the exit status
      trap 'log "$name: failed (status $?) at scripts/image.sh:$LINENO: $BASH_COMMAND"' ERR
      build_one "$name"
    ) 3>&1 >>"$OUT/$name.log.new" 2>&1 &
    running[$!]=$name
  done
  while ((${#running[@]})); do reap_one; done
  for name in "$@"; do
    # Keep the log of the last real build when the image was only found up to date.
    if [ -s "$OUT/$name.log.new" ] || [ ! -f "$OUT/$name.log" ]; then
      mv "$OUT/$name.log.new" "$OUT/$name.log"
    else
      rm -f "$OUT/$name.log.new"
    fi
  done
  for name in "${failed[@]}"; do
    log "$name FAILED; the end of target/images/$name.log:"
    tail -n 15 "$OUT/$name.log" | sed 's/^/    /' >&2
  done
  local list=""
  for name in "${failed[@]}"; do list+=" $name (target/images/$name.log)"; done
  [ -z "$list" ] || die "failed:$list"
}

main() {
  case "${1:-}" in
    _essential) hook_essential "$2" "$3"; return ;;
    _customize) hook_customize "$2" "$3"; return ;;
    -h | --help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; return ;;
  esac
  local names=("$@") name
  ((${#names[@]})) || names=("${ALL[@]}")
  for name in "${names[@]}"; do
    [[ " ${ALL[*]} " == *" $name "* ]] || die "unknown image $name (known: ${ALL[*]})"
  done
  local tool
  for tool in mmdebstrap umoci tar sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install mmdebstrap umoci)"
  done
  mkdir -p "$OUT" "$WORK/tmp"
  for name in "${names[@]}"; do prepare_binary "$name"; done
  run_all "${names[@]}"
}

main "$@"
