#!/usr/bin/env bash
# Pinned command-line tools for the offline checks of deploy/ (tests/deploy/), built from source
# with the Go toolchain into <repo>/.local/tools/<tool>-<version>/ (git-ignored) on first use.
#
#   tools.sh helm     build helm (from the Go module proxy, pinned below) once; print its path
#   tools.sh status   list the tools that are already built
#
# Idempotent: a built tool is reused. Concurrent calls (e.g. the early build that tests/conftest.py
# starts and the helm fixture of tests/deploy) serialise on a lock, so only one of them builds.
# The binary is installed into a temporary directory first and moved into place when complete,
# so an interrupted build never leaves a half-written binary behind.
set -euo pipefail
source "$(dirname "$0")/common.sh"

HELM_VERSION="v3.22.0"
TOOLS_DIR="$STATE_DIR/tools"

# build_go NAME VERSION PACKAGE: `go install PACKAGE@VERSION` into $TOOLS_DIR/NAME-VERSION/NAME.
build_go() {
  local name="$1" version="$2" pkg="$3" dir bin tmp t0
  dir="$TOOLS_DIR/$name-$version"; bin="$dir/$name"
  if [[ -x "$bin" ]]; then say "$bin"; return 0; fi
  lock "tools-$name"
  # Another call may have finished the build while we waited for the lock.
  if [[ -x "$bin" ]]; then say "$bin"; return 0; fi
  command -v go >/dev/null || die "go is not installed: it is needed to build $name $version"
  t0=$(now_ms)
  say "$name: building $version with $(go version | awk '{print $3}') (once; a few minutes) ..." >&2
  mkdir -p "$TOOLS_DIR"
  tmp="$(mktemp -d "$TOOLS_DIR/.$name-build.XXXXXX")"
  # CGO off: a static binary that needs no C toolchain; -trimpath: reproducible paths.
  if ! CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath "$pkg@$version" >&2; then
    rm -rf "$tmp"; die "go install $pkg@$version failed"
  fi
  [[ -x "$tmp/$name" ]] || { rm -rf "$tmp"; die "go install produced no $name binary"; }
  mkdir -p "$dir"
  mv "$tmp/$name" "$bin"
  rm -rf "$tmp"
  say "$name: built $version in $(elapsed "$t0")" >&2
  say "$bin"
}

cmd_status() {
  local f found=0
  for f in "$TOOLS_DIR"/*/*; do
    [[ -x "$f" ]] && { say "$f"; found=1; }
  done
  (( found )) || say "no tools built under $TOOLS_DIR"
}

case "${1:-}" in
  helm) build_go helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
  status) cmd_status ;;
  *) say "usage: $(basename "$0") helm|status"; exit 2 ;;
esac
