#!/usr/bin/env bash
# A Kubernetes test cluster on this machine, by hand, for developers:
#
#   tools/k8s/cluster.sh up      # etcd, kube-apiserver, kwok, kube-scheduler on 127.0.0.1
#   eval "$(tools/k8s/cluster.sh env)"
#   kubectl get nodes
#   tools/k8s/cluster.sh down    # stops them by PID and deletes the cluster's directory
#
# The cluster lives in ${MLPLANE_CLUSTER_DIR:-$HOME/.cache/mlplane/cluster}: logs
# (<component>.log), PID files (<component>.pid), etcd's data, certificates, kubeconfig.
# Binaries come from tools/k8s/build.sh (built on first use, cached by version). The
# flags match crates/testcluster/src/lib.rs (TestCluster::start); keep them in step.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${MLPLANE_CLUSTER_DIR:-$HOME/.cache/mlplane/cluster}
components="etcd kube-apiserver kwok kube-scheduler"

usage() {
  echo "usage: $0 up|down|env|status" >&2
  exit 2
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Is the PID in $dir/$1.pid alive and running our binary?
running() {
  local pid
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "/$1 "
}

start() { # name, args...
  local name=$1
  shift
  setsid "$bin/$name" "$@" </dev/null >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

down() {
  local name pid i
  for name in kube-scheduler kwok kube-apiserver etcd; do
    running "$name" || { rm -f "$dir/$name.pid"; continue; }
    pid=$(cat "$dir/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      running "$name" || break
      sleep 0.1
    done
    if running "$name"; then
      echo "$name ($pid) did not stop in 10 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/$name.pid"
    echo "stopped $name ($pid)" >&2
  done
  rm -rf "$dir"
}

fail() {
  echo "$1; last lines of $dir/$2.log:" >&2
  tail -n 20 "$dir/$2.log" >&2 || true
  down
  exit 1
}

up() {
  for name in $components; do
    if running "$name"; then
      echo "a cluster already runs in $dir ($name); '$0 down' first" >&2
      exit 1
    fi
  done
  command -v openssl >/dev/null || { echo "openssl not found" >&2; exit 1; }
  command -v python3 >/dev/null || { echo "python3 not found (picks free ports)" >&2; exit 1; }
  bin=$("$here/build.sh")
  rm -rf "$dir"
  mkdir -p "$dir/certs"
  local t0 ms etcd_port peer_port api_port token kubeconfig i
  t0=$(date +%s%N)
  etcd_port=$(free_port)
  peer_port=$(free_port)
  api_port=$(free_port)
  token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  kubeconfig=$dir/kubeconfig
  echo "$token,admin,admin,system:masters" >"$dir/tokens.csv"
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null

  start etcd --name=dev --data-dir="$dir/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="dev=http://127.0.0.1:$peer_port" --unsafe-no-fsync=true --log-level=warn
  start kube-apiserver --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --cert-dir="$dir/certs" --token-auth-file="$dir/tokens.csv" --authorization-mode=Node,RBAC \
    --service-account-key-file="$dir/sa.key" --service-account-signing-key-file="$dir/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.96.0.0/16 \
    --disable-admission-plugins=ServiceAccount,TaintNodesByCondition \
    --endpoint-reconciler-type=none --profiling=false --v=1

  for i in $(seq 1 600); do
    [ -s "$dir/certs/apiserver.crt" ] && break
    running kube-apiserver || fail "kube-apiserver exited" kube-apiserver
    running etcd || fail "etcd exited" etcd
    sleep 0.1
  done
  [ -s "$dir/certs/apiserver.crt" ] || fail "no serving certificate after 60 s" kube-apiserver
  cat >"$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mlplane-dev
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $dir/certs/apiserver.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: mlplane-dev
  context:
    cluster: mlplane-dev
    user: admin
    namespace: default
current-context: mlplane-dev
EOF
  for i in $(seq 1 600); do
    [ "$("$bin/kubectl" --kubeconfig="$kubeconfig" get --raw /readyz 2>/dev/null)" = ok ] && break
    running kube-apiserver || fail "kube-apiserver exited" kube-apiserver
    running etcd || fail "etcd exited" etcd
    sleep 0.1
  done
  [ "$("$bin/kubectl" --kubeconfig="$kubeconfig" get --raw /readyz 2>/dev/null)" = ok ] ||
    fail "/readyz not ok after 60 s" kube-apiserver

  cat >"$dir/kwok.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  nodePlayStageParallelism: 16
  nodeLeaseParallelism: 16
  podPlayStageParallelism: 16
EOF
  HOME=$dir start kwok --config="$dir/kwok.yaml" --kubeconfig="$kubeconfig" \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake --node-lease-duration-seconds=40
  start kube-scheduler --kubeconfig="$kubeconfig" --authentication-kubeconfig="$kubeconfig" \
    --authorization-kubeconfig="$kubeconfig" --leader-elect=false --secure-port=0 --v=2
  sleep 0.5
  running kwok || fail "kwok exited" kwok
  running kube-scheduler || fail "kube-scheduler exited" kube-scheduler

  ms=$((($(date +%s%N) - t0) / 1000000))
  echo "cluster up in $((ms / 1000)).$((ms % 1000 / 100)) s: API server https://127.0.0.1:$api_port, files in $dir" >&2
  cat >&2 <<EOF

Point kubectl at it (kubectl is in $bin):
  export KUBECONFIG=$kubeconfig
  export PATH=$bin:\$PATH
  kubectl get nodes
A fake GPU node that kwok makes Ready (it manages nodes annotated kwok.x-k8s.io/node=fake):
  kubectl apply -f $here/example-node.yaml
Stop it:
  $0 down
EOF
  echo "export KUBECONFIG=$kubeconfig"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env)
    [ -f "$dir/kubeconfig" ] || { echo "no cluster in $dir: '$0 up' first" >&2; exit 1; }
    echo "export KUBECONFIG=$dir/kubeconfig"
    echo "export PATH=$("$here/build.sh" 2>/dev/null):\$PATH"
    ;;
  status)
    for name in $components; do
      if running "$name"; then echo "$name: running ($(cat "$dir/$name.pid"))"; else echo "$name: stopped"; fi
    done
    ;;
  *) usage ;;
esac
