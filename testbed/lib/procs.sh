# Sourced by testbed/bed: background processes, tracked by PID files under $BED/run.

# Stop order (reverse start order): the apiserver hangs on SIGTERM once etcd is gone.
STOP_ORDER=(coredns kwok provisioner kube-scheduler kube-controller-manager kube-apiserver etcd)

# start NAME BINARY ARGS...: runs BINARY detached, logs to $BED/logs/NAME.log, PID to $BED/run/NAME.pid.
start() {
  local name=$1 bin=$2 pid i; shift 2
  # setsid: a Ctrl-C in the shell that ran `bed up` must not take the bed down.
  setsid "$bin" "$@" </dev/null >>"$BED/logs/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$BED/run/$name.pid"
  # Until its exec the child shows this shell's command line, which pid_of takes for a recycled
  # PID (on a loaded machine `bed up` once reported a starting kcm as exited): return once it
  # runs the binary, or has died (the caller's wait reports that).
  for ((i = 0; i < 500; i++)); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -e "$BIN/" -e "$BED/" && return 0
    alive "$pid" || return 0
    sleep 0.01
  done
}

# pid_of NAME: the PID if that process is alive and still runs our binary, else nothing.
pid_of() {
  local f=$BED/run/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && alive "$pid" || return 1
  # Guard against a recycled PID: the command line must name a binary or a file of ours
  # (containerd is Debian's, its config the bed's).
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -e "$BIN/" -e "$BED/" || return 1
  echo "$pid"
}

# alive PID: running and not a zombie (an orphan's zombie lingers until init reaps it).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state; state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
  [ -n "$state" ] && [ "$state" != Z ]
}

# stop NAME: SIGTERM, then SIGKILL after $STOP_GRACE seconds.
stop() {
  local pid i
  pid=$(pid_of "$1") || { rm -f "$BED/run/$1.pid"; return 0; }
  local t0; t0=$(date +%s%N)
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_GRACE * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "$1 ($pid) ignored SIGTERM for ${STOP_GRACE}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$BED/run/$1.pid"
  log "stopped $1 in $((($(date +%s%N) - t0) / 1000000)) ms"
}

# wait_for WHAT SECONDS PROCESS COMMAND...: polls COMMAND until it succeeds; fails if PROCESS died.
wait_for() {
  local what=$1 secs=$2 proc=$3; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ! pid_of "$proc" >/dev/null; then
      tail -25 "$BED/logs/$proc.log" >&2
      fail_up "$proc exited while waiting for $what (log: $BED/logs/$proc.log)"
    fi
    [ $SECONDS -lt $deadline ] || { tail -25 "$BED/logs/$proc.log" >&2; fail_up "$what: not ready after ${secs}s (log: $BED/logs/$proc.log)"; }
    sleep 0.1
  done
}

# fail_up MESSAGE: stop what `up` started, keep the logs, exit non-zero.
fail_up() {
  printf 'bed: error: %s\n' "$*" >&2
  stop_all
  exit 1
}

stop_all() {
  local n
  real_nodes_down
  for n in "${STOP_ORDER[@]}"; do stop "$n"; done
}

# port_taken PORT: true if something listens on 127.0.0.1:PORT.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# api PATH: GET against the apiserver as admin; prints the body, fails on HTTP errors.
api() {
  curl -fsS --max-time 5 --cacert "$BED/pki/ca.crt" -H "Authorization: Bearer $(admin_token)" \
    "https://127.0.0.1:$APISERVER_PORT$1"
}
readyz() { [ "$(api /readyz)" = ok ]; }
