#!/usr/bin/env bash
# Builds the binaries of mlplane's test cluster from source with Go: etcd, kube-apiserver,
# kube-scheduler, kubectl and kwok, into a cache directory keyed by their versions.
#
#   tools/k8s/build.sh          # build (or find) them; prints the directory on stdout
#
# The directory is ${MLPLANE_K8S_BIN:-$HOME/.cache/mlplane/k8s-v1.34.4}. When it already
# holds all five binaries of these versions, nothing is built. Only the Go module proxy is
# needed (GOPROXY, default proxy.golang.org); go.sum in this directory pins every module.
# Exits 2 when Go is missing, 1 when a build fails; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

K8S_VERSION=v1.34.4 # k8s.io/kubernetes, in go.mod
ETCD_VERSION=v3.6.4 # go.etcd.io/etcd/server/v3, in go.mod
KWOK_VERSION=v0.7.0 # sigs.k8s.io/kwok, in kwok/go.mod
bin=${MLPLANE_K8S_BIN:-$HOME/.cache/mlplane/k8s-$K8S_VERSION}
tools="etcd kube-apiserver kube-scheduler kubectl kwok"
stamp="kubernetes $K8S_VERSION etcd $ETCD_VERSION kwok $KWOK_VERSION"

have_all() {
  [ -f "$bin/VERSIONS" ] && [ "$(cat "$bin/VERSIONS")" = "$stamp" ] || return 1
  for t in $tools; do [ -x "$bin/$t" ] || return 1; done
}

if have_all; then
  echo "k8s test-cluster binaries present ($stamp) in $bin" >&2
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "go not found: install Go 1.24 or newer to build the test cluster's binaries" >&2
  exit 2
fi
echo "building $stamp with $(go version) into $bin" >&2

# Build into a fresh directory beside the cache and move it in place at the end, so an
# interrupted build never leaves a half-filled cache that looks complete.
mkdir -p "$(dirname "$bin")"
work=$(mktemp -d "$bin.build.XXXXXX")
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

export CGO_ENABLED=0
export GOFLAGS="-mod=readonly -trimpath -buildvcs=false"
start=$(date +%s)
kv="k8s.io/component-base/version"
ldflags="-s -w -X $kv.gitVersion=$K8S_VERSION -X $kv.gitMajor=1 -X $kv.gitMinor=34 -X $kv.gitTreeState=clean"
(
  cd "$here"
  go build -ldflags "$ldflags" -o "$work/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl
  go build -ldflags "-s -w" -o "$work/etcd" ./cmd/etcd
  cd kwok
  go build -ldflags "-s -w" -o "$work/" sigs.k8s.io/kwok/cmd/kwok
)
for t in $tools; do
  [ -x "$work/$t" ] || { echo "build produced no $t" >&2; exit 1; }
done
echo "$stamp" >"$work/VERSIONS"

rm -rf "$bin"
mv "$work" "$bin"
trap - EXIT
echo "built in $(($(date +%s) - start)) s:" >&2
echo "$bin"
