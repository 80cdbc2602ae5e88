#!/usr/bin/env bash
# promtool (Prometheus's rule checker) for tests/deploy/test_observability.py, which runs
# `promtool check rules deploy/prometheus/alerts.yaml`. Cached in <repo>/.local/tools/promtool-<version>/
# (git-ignored; $ESTAFETTE_TOOLS_DIR overrides the folder), installed there on first use:
#
#   1. from Debian's `prometheus` package: `apt-get download` fetches the .deb (no root needed) and only
#      usr/bin/promtool is unpacked from it. The package is never installed: its maintainer scripts
#      would start a Prometheus server (it ships /etc/init.d/prometheus), which a check does not need.
#   2. where apt-get cannot fetch it (not Debian): built with Go from the module proxy at the pinned
#      PROMTOOL_GO_VERSION (a large module: several minutes on two cores).
#
#   promtool.sh [install]  install when missing; print the binary's path (the only line on stdout)
#   promtool.sh status     exit 0 if one is cached
#   promtool.sh path       print where it is (or would be)
#
# Idempotent: a cached binary is reused; concurrent calls serialise on a lock, and the binary is put
# in place only once it is complete.
set -euo pipefail
source "$(dirname "$0")/common.sh"

TOOLS_DIR="${ESTAFETTE_TOOLS_DIR:-$ROOT/.local/tools}"
#: The Go fallback: github.com/prometheus/prometheus's module version of Prometheus 3.5 (LTS).
PROMTOOL_GO_VERSION="v0.305.0"

cached() {
  local f
  for f in "$TOOLS_DIR"/promtool-*/promtool; do [[ -x "$f" ]] && { say "$f"; return 0; }; done
  return 1
}

# from_debian TMP: unpack usr/bin/promtool of Debian's prometheus .deb into TMP; print its version.
from_debian() {
  local tmp="$1" deb version
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
  # (apt-get warns that it downloads "unsandboxed" when run as root into a folder _apt cannot read)
  (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) || return 1
  deb="$(ls "$tmp"/prometheus_*.deb 2>/dev/null | head -n 1)"
  [[ -n "$deb" ]] || return 1
  version="$(dpkg-deb -f "$deb" Version)"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/bin/promtool || return 1
  mv "$tmp/usr/bin/promtool" "$tmp/promtool"
  rm -rf "$tmp/usr" "$deb"
  say "${version%%+*}"
}

# from_go TMP: build promtool at PROMTOOL_GO_VERSION into TMP; print its version.
from_go() {
  local tmp="$1"
  command -v go >/dev/null || die "neither apt-get (Debian's prometheus package) nor go is available to get promtool"
  say "promtool: building github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_GO_VERSION with Go (several minutes) ..." >&2
  CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath \
    "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_GO_VERSION" >&2 || die "go install of promtool failed"
  say "go-${PROMTOOL_GO_VERSION#v}"
}

cmd_install() {
  cached && return 0
  mkdir -p "$TOOLS_DIR"
  exec 8>"$TOOLS_DIR/.promtool.lock"
  flock -w 900 8 || die "another promtool install has been busy for 15 minutes"
  cached && return 0  # the other call finished it while we waited
  local t0 tmp version; t0=$(now_ms)
  tmp="$(mktemp -d "$TOOLS_DIR/.promtool-build.XXXXXX")"; trap "rm -rf '$tmp'" EXIT
  say "promtool: fetching Debian's prometheus package (promtool only, not installed) ..." >&2
  version="$(from_debian "$tmp")" || { rm -rf "${tmp:?}"/*; version="$(from_go "$tmp")"; }
  "$tmp/promtool" --version >/dev/null 2>&1 || die "the promtool obtained does not run"
  rm -rf "$TOOLS_DIR/promtool-$version"
  mkdir -p "$TOOLS_DIR/promtool-$version"
  mv "$tmp/promtool" "$TOOLS_DIR/promtool-$version/promtool"
  say "promtool: $version in $TOOLS_DIR/promtool-$version in $(elapsed "$t0")" >&2
  say "$TOOLS_DIR/promtool-$version/promtool"
}

case "${1:-install}" in
  install) cmd_install ;;
  status) cached >/dev/null ;;
  path) cached || say "$TOOLS_DIR/promtool-<version>/promtool (not installed: $(basename "$0") install)" ;;
  *) say "usage: $(basename "$0") [install|status|path]"; exit 2 ;;
esac
