# moto, the AWS emulator of the firecamp-aws tests (docs/aws.md): installed once into .venv-moto,
# started on a free port for the run, stopped by its PID at the end: on 127.0.0.1, or on the test
# bed's bridge when it has real nodes (their pods' manage service and CoreDNS call it).
# Exports FIRECAMP_MOTO_ENDPOINT. Sourced by scripts/test.sh (it may also be sourced alone).
MOTO_VERSION=5.2.5
if [ ! -x .venv-moto/bin/moto_server ] || ! .venv-moto/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  python3 -m venv .venv-moto
  .venv-moto/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
MOTO_HOST=${FIRECAMP_TESTBED_HOST_IP:-127.0.0.1}
MOTO_PORT=$(.venv-moto/bin/python -c 'import socket, sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$MOTO_HOST")
.venv-moto/bin/moto_server -H "$MOTO_HOST" -p "$MOTO_PORT" > .venv-moto/moto.log 2>&1 &
MOTO_PID=$!
CLEANUP+=("kill $MOTO_PID 2>/dev/null; wait $MOTO_PID 2>/dev/null")
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://$MOTO_HOST:$MOTO_PORT/moto-api/" 2>/dev/null && break
  kill -0 "$MOTO_PID" 2>/dev/null || { echo "moto exited; see .venv-moto/moto.log" >&2; cat .venv-moto/moto.log >&2; return 1 2>/dev/null || exit 1; }
  sleep 0.1
done
curl -fsS -o /dev/null "http://$MOTO_HOST:$MOTO_PORT/moto-api/" || { echo "moto did not answer on $MOTO_HOST:$MOTO_PORT" >&2; return 1 2>/dev/null || exit 1; }
export FIRECAMP_MOTO_ENDPOINT="http://$MOTO_HOST:$MOTO_PORT"
echo "moto $MOTO_VERSION on $FIRECAMP_MOTO_ENDPOINT (pid $MOTO_PID)"
