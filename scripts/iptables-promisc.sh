#!/usr/bin/env bash
# Builds (once per machine) iptables-legacy from Debian's iptables 1.8.9 source package with
# the project's PROMISC series (patches/iptables-1.8.9), for the VM test of the original
# design's set-up on the debug kernel (which carries patches/linux-6.1).
#
# Cached outside the clone, like the debug kernel:
#   $XTT_IPTABLES_PROMISC_CACHE (default /var/cache/xttraffic/iptables-promisc)/<deb version>-<key>/
#     root/sbin/iptables-legacy, iptables-legacy-save, ...   (--prefix=that root; RPATH set)
#     root/lib/xtables/                                       its extensions
#     .ready
# <key> hashes the series. Prints the root folder; a second run prints it in a second.
#   scripts/iptables-promisc.sh            build if needed
#   scripts/iptables-promisc.sh --root     print the root if built, else fail
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/debsrc.sh # have_deb_src, deb_src_entry
CACHE=${XTT_IPTABLES_PROMISC_CACHE:-/var/cache/xttraffic/iptables-promisc}
PATCHDIR=$ROOT/patches/iptables-1.8.9
log() { printf 'iptables-promisc: %s\n' "$*" >&2; }
die() { log "$*"; exit "${2:-1}"; }

key=$({
	echo "recipe 1"
	cat "$PATCHDIR/series"
	for p in $(cat "$PATCHDIR/series"); do cat "$PATCHDIR/$p"; done
} | sha256sum | cut -c1-10)

if [ "${1:-}" = --root ]; then
	for d in "$CACHE"/*-"$key"; do
		[ -e "$d/.ready" ] && { echo "$d/root"; exit 0; }
	done
	exit 1
fi
[ "$(id -u)" = 0 ] || die "must run as root (apt-get)" 4
for d in "$CACHE"/*-"$key"; do
	[ -e "$d/.ready" ] && { echo "$d/root"; exit 0; }
done

need=()
for p in gcc make patch dpkg-dev pkg-config; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
[ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends "${need[@]}" >/dev/null
if ! apt-cache showsrc iptables 2>/dev/null | grep -q '^Version: 1\.8\.9-'; then
	if ! have_deb_src; then
		log "adding a deb-src entry for bookworm main"
		deb_src_entry >"$DEB_SRC_FILE"
	fi
	apt-get update -q >/dev/null
fi
ver=$(apt-cache showsrc iptables | sed -n 's/^Version: \(1\.8\.9-.*\)/\1/p' | sort -V | tail -1)
[ -n "$ver" ] || die "no iptables 1.8.9 source package in the apt sources"
dir=$CACHE/$ver-$key
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
[ -e "$dir/.ready" ] && { echo "$dir/root"; exit 0; }
start=$(date +%s)
rm -rf "$dir"
mkdir -p "$dir/dl"
chmod 755 "$dir/dl" # apt-get source runs the download as _apt
log "building iptables $ver (legacy only) with the PROMISC series in $dir"
(cd "$dir/dl" && apt-get source -q --download-only "iptables=$ver") >"$dir/build.log" 2>&1 ||
	die "apt-get source iptables=$ver failed (log: $dir/build.log)"
dpkg-source -x "$dir"/dl/iptables_"$ver".dsc "$dir/src" >>"$dir/build.log" 2>&1 ||
	die "dpkg-source -x failed"
cd "$dir/src"
for p in $(cat "$PATCHDIR/series"); do
	patch -p1 --dry-run --batch --forward -s <"$PATCHDIR/$p" >/dev/null 2>&1 ||
		die "$p does not apply to iptables $ver"
	patch -p1 --batch --forward -s <"$PATCHDIR/$p" >/dev/null
done
{
	nice -n 10 ./configure --prefix="$dir/root" --disable-nftables --disable-connlabel \
		--disable-dependency-tracking &&
		nice -n 10 make -j"$(nproc)" && make install
} >>"$dir/build.log" 2>&1 || { tail -n 20 "$dir/build.log" >&2; die "build failed (log: $dir/build.log)"; }
[ -x "$dir/root/sbin/iptables-legacy" ] || die "no $dir/root/sbin/iptables-legacy after make install"
rm -rf "$dir/dl" "$dir/src"
touch "$dir/.ready"
log "built in $(($(date +%s) - start)) s"
echo "$dir/root"
