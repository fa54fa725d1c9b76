#!/usr/bin/env bash
# npm run bundle [-- OUT_DIR]: writes OUT_DIR/spurmem-<version>-linux-<arch>.tar.xz (default OUT_DIR: .),
# a folder that runs spurmem where there is no Node.js and no network (offline GPU nodes):
#   node/bin/node          this machine's Node.js binary (and its licence)
#   dist/ bin/             the compiled JavaScript and the CLI entry
#   node_modules/          the production dependencies only (sharp with its own libvips)
#   native/ CMakeLists.txt the addon's C++ sources, and third_party/node-api-headers/ (what cmake needs
#                          without npm)
#   build-addon            builds the addon against $LIBTORCH, $Torch_DIR or the system libtorch
#   spurmem                the launcher (uses the bundled Node.js)
#   scripts/gpu-check.*    the CUDA check
# The addon itself is not included: it is built on the target against the libtorch there.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
node=$(command -v node)
version=$("$node" -p "require('./package.json').version")
arch=$("$node" -p "process.arch")
name="spurmem-$version-linux-$arch"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stage="$tmp/$name"
say() { printf 'spurmem bundle: %s\n' "$*"; }

[ -f node_modules/.package-lock.json ] || { echo "spurmem bundle: run npm ci (or npm run setup) first" >&2; exit 1; }
mkdir -p "$stage"
say "compiling TypeScript"
npx tsc -p tsconfig.json --outDir "$stage/dist"
cp -R bin native CMakeLists.txt package.json package-lock.json README.md "$stage/"
[ -f LICENSE ] && cp LICENSE "$stage/"
mkdir -p "$stage/scripts" "$stage/third_party"
cp scripts/gpu-check.sh scripts/gpu-check.mjs scripts/gpu_check.py "$stage/scripts/"
cp -R third_party/. "$stage/third_party/"
cp scripts/bundle/spurmem scripts/bundle/build-addon "$stage/"

say "production dependencies"
cp -R node_modules "$stage/node_modules"
(cd "$stage" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null && find node_modules -mindepth 1 -type d -empty -delete)
hdr=node_modules/node-api-headers
mkdir -p "$stage/third_party/node-api-headers"
cp -R "$hdr/include" "$stage/third_party/node-api-headers/"
cp "$hdr/LICENSE" "$stage/third_party/node-api-headers/" 2>/dev/null || true

say "Node.js $("$node" --version) from $node"
mkdir -p "$stage/node/bin"
cp "$(readlink -f "$node")" "$stage/node/bin/node"
for lic in "$(dirname "$(readlink -f "$node")")/../share/doc/nodejs/LICENSE" /usr/share/doc/nodejs/LICENSE; do
  if [ -f "$lic" ]; then cp "$lic" "$stage/node/LICENSE"; break; fi
done

say "compressing"
XZ_OPT="-9 -T0" tar -C "$tmp" -cJf "$out/$name.tar.xz.tmp" "$name"
mv "$out/$name.tar.xz.tmp" "$out/$name.tar.xz"
size=$(du -m "$out/$name.tar.xz" | cut -f1)
say "wrote $out/$name.tar.xz ($size MiB)"
