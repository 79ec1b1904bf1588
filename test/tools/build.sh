#!/usr/bin/env bash
# Builds the real control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
# kubectl, helm) from the Go module proxy and prints the folder that holds them.
#
# The binaries are cached outside the checkout, keyed by the go.mod/go.sum files below and the Go
# version, so only the first build on a machine pays (tens of minutes); later calls return at once.
# Versions: see the go.mod files beside this script (Kubernetes v1.37.2, etcd v3.6.16, helm v3.22.0).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

K8S_VERSION=v1.37.2
K8S_MINOR=37
HELM_VERSION=v3.22.0

key="$( (cat "$here"/k8s/go.mod "$here"/k8s/go.sum "$here"/etcd/go.mod "$here"/etcd/go.sum \
  "$here"/helm/go.mod "$here"/helm/go.sum "$here"/build.sh; go version) | sha256sum | cut -c1-16)"
cache_root="${STACKED_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stacked-operator/tools}"
out="$cache_root/$key"

if [[ -x "$out/kube-apiserver" && -f "$out/.complete" ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache_root"
# One build at a time per machine: a second caller waits for the first and then takes its result.
exec 9>"$cache_root/.lock"
flock 9
if [[ -f "$out/.complete" ]]; then
  echo "$out"
  exit 0
fi

tmp="$(mktemp -d "$cache_root/.build-XXXXXX")"
log() { echo "[build-tools] $*" >&2; }
start=$(date +%s)

build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ver=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ver+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR"
  ver+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean"
  ver+=" -X $pkg.buildDate=$build_date"
done

log "building etcd"
(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
log "building helm"
(cd "$here/helm" && go build -trimpath -ldflags "-s -w \
  -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$K8S_MINOR" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm)
log "building kube-apiserver, kube-controller-manager, kubectl ($K8S_VERSION)"
(cd "$here/k8s" && go build -trimpath -tags selinux,notest -ldflags "$ver -s -w" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl)

touch "$tmp/.complete"
rm -rf "$out"
mv "$tmp" "$out"
log "built in $(($(date +%s) - start)) s into $out"
echo "$out"
