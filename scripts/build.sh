#!/usr/bin/env bash
# Builds what is stale: the module for each given kernel release (into
# .cache/build/RELEASE/xt_traffic.ko), the iptables extension (libxt/libxt_traffic.so),
# the N-API addon and the TypeScript dist. Quick when everything is up to date.
#   scripts/build.sh [--kernel RELEASE]... [--no-node]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/kernels.sh
kernels=()
node=1
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernels+=("$2"); shift 2 ;;
	--no-node) node=; shift ;;
	*) echo "build: unknown argument $1" >&2; exit 2 ;;
	esac
done

# One build at a time per tree: two VM runs started together (or a run beside a bench) would
# otherwise run make in the same build folders at once.
mkdir -p "$XTT_CACHE"
exec 9>"$XTT_CACHE/build.lock"
flock 9

for rel in "${kernels[@]}"; do
	[ -f kernel/Makefile ] || break
	kdir=$(kernel_headers "$rel")
	[ -e "$kdir/Makefile" ] || { echo "build: no headers for $rel in $kdir: run 'npm run setup'" >&2; exit 4; }
	make -s -C kernel BUILD_DIR="$XTT_CACHE/build/$rel" KDIR="$kdir" module
	# test-only module that WARNs, for the harness self-test
	make -s -C test/fixtures/warn-module BUILD_DIR="$XTT_CACHE/build/$rel/warn" KDIR="$kdir" module
	# debug kernel: a module that leaks and shifts out of bounds (kmemleak/UBSAN self-test)
	if kernel_is_debug "$rel"; then
		make -s -C test/fixtures/leak-module BUILD_DIR="$XTT_CACHE/build/$rel/leak" KDIR="$kdir" module
	fi
done

if [ -f libxt/Makefile ]; then
	make -s -C libxt
fi

if [ -n "$node" ]; then
	# TypeScript: dist/ is stale when any src file is newer than the stamp.
	if [ -f tsconfig.json ] && [ -d src ] &&
		{ [ ! -e dist/.stamp ] || [ -n "$(find src tsconfig.json -newer dist/.stamp -print -quit)" ]; }; then
		npx tsc -p tsconfig.json
		touch dist/.stamp
	fi
	# N-API addon (optional: the commands that need it say so when it is missing).
	if [ -f binding.gyp ] && [ -f scripts/build-native.mjs ]; then
		node scripts/build-native.mjs
	fi
fi
