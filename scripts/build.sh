#!/usr/bin/env bash
# Builds what is stale: the module for each given kernel, the iptables extension,
# the N-API addon and the TypeScript dist. Quick when everything is up to date.
#   scripts/build.sh [--kernel RELEASE]...
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/kernels.sh
kernels=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernels+=("$2"); shift 2 ;;
	*) echo "build: unknown argument $1" >&2; exit 2 ;;
	esac
done
for rel in "${kernels[@]}"; do
	if [ -f kernel/Makefile ]; then
		make -s -C kernel KERNELRELEASE_TARGET="$rel" \
			O_DIR="$XTT_CACHE/build/$rel" KDIR="$(kernel_headers "$rel")"
	fi
done
