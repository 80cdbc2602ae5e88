#!/usr/bin/env bash
# Browser assets the services serve themselves, so their documentation pages render with no internet:
# the AsyncAPI viewer of /asyncapi (npm @asyncapi/react-component: its standalone browser bundle and
# style sheet). Swagger UI and ReDoc for /docs and /redoc come with a Python package (fastapi-offline).
# Fetched with `npm pack` from the npm registry (npm checks the tarball's integrity) into
# $ESTAFETTE_ASSETS_DIR (default <repo>/.local/assets, git-ignored); estafette/runtime/docs.py serves it.
set -euo pipefail
source "$(dirname "$0")/common.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") {install|status|path}
  install  fetch the AsyncAPI viewer bundle (skipped when this version is present)
  status   exit 0 if it is present
  path     print the directory the services read it from
env: ESTAFETTE_ASSETS_DIR (<repo>/.local/assets)
USAGE
}

# Keep in step with what FastStream's AsyncAPI page was written for (faststream/specification/asyncapi/site.py).
PACKAGE="@asyncapi/react-component"
VERSION="3.1.5"
ASSETS_DIR="${ESTAFETTE_ASSETS_DIR:-$ROOT/.local/assets}"
DEST="$ASSETS_DIR/asyncapi-react"
STAMP="$DEST/.complete"
# tarball path -> file name served (estafette/runtime/docs.py ASYNCAPI_FILES)
FILES=(browser/standalone/index.js styles/default.min.css LICENSE)

installed() { [[ -f "$STAMP" && "$(<"$STAMP")" == "$PACKAGE@$VERSION" ]]; }

cmd_install() {
  # One install at a time (two `make install` at once must not interleave their copies).
  mkdir -p "$ASSETS_DIR"; exec 9>"$ASSETS_DIR/.install.lock"
  flock -w 300 9 || die "another assets install has been busy for 5 minutes"
  if installed; then say "assets: $PACKAGE@$VERSION present in $DEST"; return 0; fi
  command -v npm >/dev/null || die "npm not found: install Node.js with npm (Debian: nodejs npm)"
  local t0 tmp tgz f; t0=$(now_ms)
  tmp="$(mktemp -d)"; trap "rm -rf '$tmp'" EXIT
  say "assets: fetching $PACKAGE@$VERSION from the npm registry ..."
  tgz="$(cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION")" || die "npm could not fetch $PACKAGE@$VERSION"
  tar -xzf "$tmp/$tgz" -C "$tmp"
  rm -rf "$DEST.new"; mkdir -p "$DEST.new"
  for f in "${FILES[@]}"; do
    [[ -f "$tmp/package/$f" ]] || die "$PACKAGE@$VERSION has no $f"
    cp "$tmp/package/$f" "$DEST.new/$(basename "$f")"
  done
  printf '%s\n' "$PACKAGE@$VERSION" >"$DEST.new/.complete"
  rm -rf "$DEST"; mv "$DEST.new" "$DEST"
  say "assets: $PACKAGE@$VERSION in $DEST ($(du -sh "$DEST" | cut -f1)) in $(elapsed "$t0")"
}

case "${1:-}" in
  install) cmd_install ;;
  status) installed ;;
  path) say "$DEST" ;;
  *) usage; exit 2 ;;
esac
