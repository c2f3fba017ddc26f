#!/usr/bin/env bash
# Re-create the explorer's vendored front-end files (kgfactory/ui/static/vendor/) from the npm registry at pinned versions.
#
# Needs npm only here (never at run time). Each package is fetched with `npm pack` into a temp dir; just the dist
# files the pages load and each package's licence files are copied; kgfactory/ui/static/vendor/MANIFEST records the
# version and sha256 of every copied file. `--check` re-fetches and compares with the committed MANIFEST and files
# (exit 1 on any difference) without touching the tree.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/kgfactory/ui/static/vendor"
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1

# package@version  then  "source-path-in-package:target-path-under-vendor" pairs
PACKAGES=(
  "cytoscape@3.35.0|dist/cytoscape.min.js:cytoscape/cytoscape.min.js LICENSE:cytoscape/LICENSE"
  "codemirror@5.65.21|lib/codemirror.js:codemirror/codemirror.js lib/codemirror.css:codemirror/codemirror.css mode/cypher/cypher.js:codemirror/mode/cypher.js mode/sparql/sparql.js:codemirror/mode/sparql.js LICENSE:codemirror/LICENSE"
  "swagger-ui-dist@5.35.0|swagger-ui-bundle.js:swagger-ui/swagger-ui-bundle.js swagger-ui.css:swagger-ui/swagger-ui.css LICENSE:swagger-ui/LICENSE swagger-ui-bundle.js.LICENSE.txt:swagger-ui/swagger-ui-bundle.js.LICENSE.txt"
  "redoc@2.5.4|bundles/redoc.standalone.js:redoc/redoc.standalone.js LICENSE:redoc/LICENSE bundles/redoc.standalone.js.LICENSE.txt:redoc/redoc.standalone.js.LICENSE.txt"
)

command -v npm >/dev/null || { echo "vendor_assets.sh: npm is needed to fetch the packages" >&2; exit 2; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
OUT="$WORK/vendor"
mkdir -p "$OUT"
MANIFEST="$OUT/MANIFEST"
echo "# kgfactory/ui/static/vendor: package@version  sha256  file  (written by scripts/vendor_assets.sh)" > "$MANIFEST"

for entry in "${PACKAGES[@]}"; do
  pkg="${entry%%|*}"
  files="${entry#*|}"
  dir="$WORK/${pkg//[@\/]/_}"
  mkdir -p "$dir"
  (cd "$dir" && npm pack "$pkg" --silent >/dev/null && tar xzf ./*.tgz)
  for pair in $files; do
    src="${pair%%:*}"
    dst="${pair#*:}"
    mkdir -p "$OUT/$(dirname "$dst")"
    cp "$dir/package/$src" "$OUT/$dst"
    echo "$pkg  $(sha256sum "$OUT/$dst" | cut -d' ' -f1)  $dst" >> "$MANIFEST"
  done
done

if [ "$CHECK" = 1 ]; then
  if diff -r "$OUT" "$DEST" >/dev/null; then echo "vendor_assets.sh: kgfactory/ui/static/vendor matches the pinned packages"; exit 0; fi
  diff -r "$OUT" "$DEST" | head -20 >&2
  echo "vendor_assets.sh: kgfactory/ui/static/vendor differs from the pinned packages" >&2
  exit 1
fi
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
cp -r "$OUT" "$DEST"
echo "vendor_assets.sh: wrote $(grep -vc '^#' "$DEST/MANIFEST") files under kgfactory/ui/static/vendor"
