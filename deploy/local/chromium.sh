#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/e2e/test_docs_offline.py): Debian's `chromium`
# package, installed with apt-get when /usr/bin/chromium is missing. Never a browser download of
# its own (those cannot be fetched here); prints the binary's path.
set -euo pipefail
source "$(dirname "$0")/common.sh"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

cmd_install() {
  if [[ -x "$CHROMIUM" ]]; then say "$CHROMIUM"; return 0; fi
  local sudo=() t0; t0=$(now_ms)
  [[ "$(id -u)" == 0 ]] || { command -v sudo >/dev/null && sudo=(sudo -n); } \
    || die "$CHROMIUM missing and not root: install Debian's chromium package"
  say "chromium: installing Debian's chromium with apt-get ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # An old or empty package list may not know the package: refresh it first.
  "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >&2 || die "apt-get could not install chromium"
  [[ -x "$CHROMIUM" ]] || die "chromium installed but $CHROMIUM is missing"
  say "chromium: installed in $(elapsed "$t0")" >&2
  say "$CHROMIUM"
}

case "${1:-install}" in
  install) cmd_install ;;
  status) [[ -x "$CHROMIUM" ]] ;;
  *) say "usage: $(basename "$0") [install|status]"; exit 2 ;;
esac
