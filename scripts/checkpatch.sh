#!/usr/bin/env bash
# Runs the kernel's scripts/checkpatch.pl (from Debian's linux-source-6.1, cached in
# .cache/checkpatch/) over the module's sources. Exit 0 only when it is clean.
#   scripts/checkpatch.sh [FILE...]     default: kernel/*.c kernel/*.h and the uapi header
#   scripts/checkpatch.sh --prepare     only fetch it (npm run setup does)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CP=$ROOT/.cache/checkpatch
if [ ! -x "$CP/scripts/checkpatch.pl" ]; then
	tmp=$(mktemp -d)
	chmod 755 "$tmp"
	(cd "$tmp" && apt-get download -q linux-source-6.1 >/dev/null 2>&1) ||
		{ echo "checkpatch: cannot download linux-source-6.1 (run 'apt-get update')" >&2; exit 4; }
	mkdir -p "$CP"
	dpkg-deb --fsys-tarfile "$tmp"/linux-source-6.1_*.deb |
		tar -xO --wildcards './usr/src/linux-source-6.1.tar.xz' |
		tar -xJ -C "$CP" --strip-components=1 \
			linux-source-6.1/scripts/checkpatch.pl \
			linux-source-6.1/scripts/spelling.txt \
			linux-source-6.1/scripts/const_structs.checkpatch
	rm -rf "$tmp"
fi
[ "${1:-}" = --prepare ] && exit 0
if [ $# -eq 0 ]; then
	set -- kernel/*.c kernel/*.h kernel/include/uapi/linux/netfilter/xt_traffic.h
fi
exec perl "$CP/scripts/checkpatch.pl" --no-tree --terse --show-types \
	--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG -f "$@"
