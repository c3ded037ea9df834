# Sourced by testbed/bed: certificates, tokens and kubeconfigs (openssl only).

gen_pki() {
  local d=$BED/pki
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 365 -subj "/CN=firecamp-testbed-ca"
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:$HOST_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
      "extendedKeyUsage=serverAuth" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 365 -extfile apiserver.ext
    # Service-account token signing keypair (the apiserver signs, the kcm's token controller too).
    openssl genrsa -out sa.key 2048 && openssl rsa -in sa.key -pubout -out sa.pub
    # The apiserver's client certificate towards kubelets (logs, exec, port-forward).
    openssl req -newkey rsa:2048 -nodes -keyout kubelet-client.key -out kubelet-client.csr -subj "/O=system:masters/CN=kube-apiserver-kubelet-client"
    printf '%s\n' "extendedKeyUsage=clientAuth" >kubelet-client.ext
    openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kubelet-client.crt -days 365 -extfile kubelet-client.ext
  ) >"$BED/logs/pki.log" 2>&1 || die "openssl failed (see $BED/logs/pki.log)"
  chmod 600 "$d"/*.key

  local admin kcm sched kwok
  admin=$(openssl rand -hex 16) kcm=$(openssl rand -hex 16) sched=$(openssl rand -hex 16) kwok=$(openssl rand -hex 16)
  # The kcm is NOT in system:masters: with --use-service-account-credentials its controllers act
  # under their own service accounts, as with kubeadm. kwok plays every kubelet, so it gets masters.
  cat >"$d/tokens.csv" <<T
$admin,admin,uid-admin,"system:masters"
$kcm,system:kube-controller-manager,uid-kcm
$sched,system:kube-scheduler,uid-sched
$kwok,kwok,uid-kwok,"system:masters"
$(openssl rand -hex 16),system:kube-proxy,uid-kube-proxy
T
  # Real nodes act under node identities (the Node authorizer and NodeRestriction apply).
  local i
  for ((i = 0; i < ${FIRECAMP_TESTBED_REAL_NODES:-0}; i++)); do
    printf '%s,system:node:%s,uid-node-%s,"system:nodes"\n' "$(openssl rand -hex 16)" "$(node_name "$i")" "$i" >>"$d/tokens.csv"
  done
  chmod 600 "$d/tokens.csv"
  kubeconfig admin "$admin" >"$BED/admin.kubeconfig"
  kubeconfig kcm "$kcm" >"$BED/kcm.kubeconfig"
  kubeconfig scheduler "$sched" >"$BED/scheduler.kubeconfig"
  kubeconfig kwok "$kwok" >"$BED/kwok.kubeconfig"
  chmod 600 "$BED"/*.kubeconfig
}

# kubeconfig USER TOKEN [SERVER]: a kubeconfig for the bed's API server with the CA inline.
kubeconfig() {
  cat <<K
apiVersion: v1
kind: Config
clusters:
- name: firecamp-testbed
  cluster:
    server: ${3:-https://127.0.0.1:$APISERVER_PORT}
    certificate-authority-data: $(base64 -w0 <"$BED/pki/ca.crt")
users:
- name: $1
  user:
    token: $2
contexts:
- name: firecamp-testbed
  context:
    cluster: firecamp-testbed
    user: $1
    namespace: default
current-context: firecamp-testbed
K
}

# admin_token: the admin bearer token, for curl.
admin_token() { sed -n 's/^ *token: //p' "$BED/admin.kubeconfig"; }
