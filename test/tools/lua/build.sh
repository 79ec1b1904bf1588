#!/usr/bin/env bash
# Builds lua-health (main.go beside this script: gopher-lua, the Lua 5.1 dialect Argo CD runs health
# scripts in) from the Go module proxy and prints the path of the binary.
#
# Cached outside the checkout like ../build.sh does for the control-plane binaries, but under its own
# key (this folder's go.mod, go.sum, main.go, this script and the Go version): changing the harness
# rebuilds only it (seconds), never Kubernetes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

key="$( (cat "$here"/go.mod "$here"/go.sum "$here"/main.go "$here"/build.sh; go version) | sha256sum | cut -c1-16)"
cache_root="${STACKED_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stacked-operator/tools}/lua"
out="$cache_root/$key"

if [[ -x "$out/lua-health" ]]; then
  echo "$out/lua-health"
  exit 0
fi

mkdir -p "$cache_root"
# One build at a time per machine: a second caller waits for the first and then takes its result.
exec 9>"$cache_root/.lock"
flock 9
if [[ -x "$out/lua-health" ]]; then
  echo "$out/lua-health"
  exit 0
fi

tmp="$(mktemp -d "$cache_root/.build-XXXXXX")"
start=$(date +%s)
(cd "$here" && go build -trimpath -ldflags "-s -w" -o "$tmp/lua-health" .)
rm -rf "$out"
mv "$tmp" "$out"
echo "[build-lua] built in $(($(date +%s) - start)) s into $out" >&2
echo "$out/lua-health"
