#!/usr/bin/env bash
# The xt_traffic.ko of an old revision, built from git history into the same cache as
# scripts/fail-without-fix.sh's pre-fix modules (git archive of kernel/ at REV into
# .cache/prefix/REVDIR/src, built with the headers of RELEASE into
# .cache/prefix/REVDIR/build/RELEASE/xt_traffic.ko; never over .cache/build/).
#   bash scripts/lib/prefix-module.sh REV RELEASE   -> prints the .ko's path
# Sourced, it defines prefix_module REV RELEASE (the same). Cached: the archive is kept
# while REV resolves to the same commit, and make rebuilds nothing when nothing changed.
# Used by test/vm/rev0.test.ts (the revision-0 module, 3a75507).

prefix_module() {
	local rev=$1 rel=$2 root cache d src hdr
	root=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
	cache=${XTT_CACHE:-$root/.cache}
	d=$cache/prefix/${rev//^/-parent}
	src=$d/src
	if [ ! -e "$src/.rev" ] || [ "$(cat "$src/.rev")" != "$(git -C "$root" rev-parse "$rev")" ]; then
		rm -rf "$src"
		mkdir -p "$src"
		git -C "$root" archive "$rev" kernel | tar -x -C "$src"
		git -C "$root" rev-parse "$rev" >"$src/.rev"
	fi
	if [ -e "$cache/kernels/$rel/kdir/Makefile" ]; then
		hdr=$cache/kernels/$rel/kdir
	elif [ -e "$cache/kernels/$rel/src/Makefile" ]; then
		hdr=$cache/kernels/$rel/src
	else
		hdr=/usr/src/linux-headers-$rel
	fi
	[ -e "$hdr/Makefile" ] || { echo "prefix-module: no headers for $rel ($hdr)" >&2; return 1; }
	nice -n 10 make -s -C "$src/kernel" BUILD_DIR="$d/build/$rel" KDIR="$hdr" module >&2 || return 1
	printf '%s\n' "$d/build/$rel/xt_traffic.ko"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	[ $# -eq 2 ] || { echo "usage: $0 REV RELEASE" >&2; exit 2; }
	prefix_module "$1" "$2"
fi
