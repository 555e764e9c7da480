#!/usr/bin/env bash
# Checks the PROMISC patch series in patches/ against the exact Debian bookworm sources:
#   patches/linux-6.1/      against linux-source-6.1 (the bookworm candidate version) with
#                           the same version's linux-config-6.1 amd64 config
#   patches/iptables-1.8.9/ against the iptables 1.8.9 Debian source package (debian/patches
#                           applied, as dpkg-source -x leaves it)
# For each series (order from its `series` file): every patch must pass `patch -p1 --dry-run`
# and then apply to a scratch copy; every .c file the series touches must compile without a
# warning in that file (kernel: `make <dir>/<file>.o` in a prepared tree; iptables: its object
# in a --disable-nftables --disable-connlabel build, then xtables-legacy-multi is linked).
# Kernel patches must also be checkpatch clean (--strict).
#
# Everything is downloaded, extracted, configured and prepared once under
# .cache/patches-src/ (git-ignored); later runs only restore the touched files, re-apply and
# recompile. Missing tools are installed with apt-get. CPU-heavy steps run under nice -n 19.
#
# Output, one line per fact (test/unit/patches.test.ts parses it):
#   SOURCE <series> <debian package>=<version>
#   CHECKPATCH <series> <patch>
#   APPLIED <series> <patch>
#   COMPILED <series> <file.c>
#   SMOKE <series> ...            patched iptables-legacy run in a throwaway netns, or
#   SMOKE-SKIPPED <series> ...    when this machine cannot (no root/netns/ip_tables)
#   OK <seconds>s                 (last line, exit 0)
# On failure: `FAIL <what>` on stderr and a non-zero exit status.
#   JOBS=N scripts/check-patches.sh      parallel make jobs (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/debsrc.sh # have_deb_src, deb_src_entry
SRC=$ROOT/.cache/patches-src
PATCHES=$ROOT/patches
JOBS=${JOBS:-$(nproc)}
START=$SECONDS
NICE=(nice -n 19)
mkdir -p "$SRC"
LOG=$SRC/log
mkdir -p "$LOG"

fail() { echo "FAIL $*" >&2; exit 1; }
info() { echo "# $*" >&2; }

# One run at a time: the work trees are shared.
exec 9>"$SRC/.lock"
flock 9

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

# ---- tools --------------------------------------------------------------------------------
need_pkgs=()
for p in gcc make bc bison flex libelf-dev libssl-dev patch xz-utils dpkg-dev perl pkg-config \
	ca-certificates file; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		need_pkgs+=("$p")
done
apt_updated=0
apt_update() {
	[ $apt_updated = 1 ] && return 0
	info "apt-get update"
	as_root apt-get update -q >"$LOG/apt-update.log" 2>&1 || fail "apt-get update (see $LOG/apt-update.log)"
	apt_updated=1
}
if [ ${#need_pkgs[@]} -gt 0 ]; then
	apt_update
	info "installing ${need_pkgs[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${need_pkgs[@]}" >"$LOG/apt-install.log" 2>&1 || fail "apt-get install ${need_pkgs[*]}"
fi

# ---- sources ------------------------------------------------------------------------------
candidate() { apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)' || true; }

KVER=${KERNEL_DEB_VERSION:-$(candidate linux-source-6.1)}
if [ -z "$KVER" ]; then
	apt_update
	KVER=$(candidate linux-source-6.1)
fi
[ -n "$KVER" ] || fail "no linux-source-6.1 in the apt sources (Debian bookworm main)"
case $KVER in 6.1.*) ;; *) fail "linux-source-6.1 version $KVER is not 6.1.x" ;; esac

KDIR=$SRC/linux-$KVER
if [ ! -e "$KDIR/.extracted" ]; then
	rm -rf "$KDIR"
	mkdir -p "$KDIR/dl"
	chmod 755 "$KDIR/dl"
	info "downloading linux-source-6.1=$KVER linux-config-6.1=$KVER"
	(cd "$KDIR/dl" && apt-get download -q "linux-source-6.1=$KVER" "linux-config-6.1=$KVER") \
		>"$LOG/kernel-download.log" 2>&1 || fail "apt-get download linux-source-6.1=$KVER"
	info "extracting linux-source-6.1.tar.xz"
	mkdir -p "$KDIR/orig"
	dpkg-deb --fsys-tarfile "$KDIR"/dl/linux-source-6.1_*.deb |
		tar -xO ./usr/src/linux-source-6.1.tar.xz |
		"${NICE[@]}" tar -xJ -C "$KDIR/orig" --strip-components=1
	dpkg-deb --fsys-tarfile "$KDIR"/dl/linux-config-6.1_*.deb |
		tar -xO ./usr/src/linux-config-6.1/config.amd64_none_amd64.xz | xz -d >"$KDIR/config.amd64"
	rm -f "$KDIR"/dl/linux-source-6.1_*.deb
	touch "$KDIR/.extracted"
fi
echo "SOURCE linux-6.1 linux-source-6.1=$KVER"

if ! apt-cache showsrc iptables 2>/dev/null | grep -q '^Version: 1\.8\.9-'; then
	if ! have_deb_src; then
		info "adding a deb-src entry for bookworm main"
		deb_src_entry | as_root tee "$DEB_SRC_FILE" >/dev/null
	fi
	apt_updated=0
	apt_update
fi
IVER=${IPTABLES_DEB_VERSION:-$(apt-cache showsrc iptables | sed -n 's/^Version: \(1\.8\.9-.*\)/\1/p' | sort -V | tail -1)}
[ -n "$IVER" ] || fail "no iptables 1.8.9 source package in the apt sources"
IDIR=$SRC/iptables-$IVER
if [ ! -e "$IDIR/.extracted" ]; then
	rm -rf "$IDIR"
	mkdir -p "$IDIR/dl"
	chmod 755 "$IDIR/dl"
	info "downloading iptables source $IVER"
	(cd "$IDIR/dl" && apt-get source -q --download-only "iptables=$IVER") \
		>"$LOG/iptables-download.log" 2>&1 || fail "apt-get source iptables=$IVER"
	dpkg-source -x "$IDIR"/dl/iptables_"$IVER".dsc "$IDIR/orig" >"$LOG/iptables-extract.log" 2>&1 ||
		fail "dpkg-source -x iptables_$IVER.dsc"
	touch "$IDIR/.extracted"
fi
echo "SOURCE iptables-1.8.9 iptables=$IVER"

# ---- helpers ------------------------------------------------------------------------------
series_patches() { grep -v '^\s*\(#\|$\)' "$PATCHES/$1/series"; }

# Files a series touches (from the +++ lines of its patches), in first-touched order.
touched_files() {
	local p
	for p in $(series_patches "$1"); do
		sed -n 's#^+++ b/\([^[:space:]]*\).*#\1#p' "$PATCHES/$1/$p"
	done | awk '!seen[$0]++'
}

# Put the files a series touches back to their pristine state (remove the ones it creates).
restore_touched() {
	local series=$1 orig=$2 work=$3 f
	for f in $(touched_files "$series"); do
		if [ -e "$orig/$f" ]; then
			cp "$orig/$f" "$work/$f"
		else
			rm -f "$work/$f"
		fi
	done
}

apply_series() {
	local series=$1 work=$2 p
	for p in $(series_patches "$series"); do
		[ -f "$PATCHES/$series/$p" ] || fail "$series: $p listed in series but missing"
		(cd "$work" && patch -p1 --dry-run --batch --fuzz=0 <"$PATCHES/$series/$p") \
			>"$LOG/$series-$p.dry-run" 2>&1 ||
			{ cat "$LOG/$series-$p.dry-run" >&2; fail "$series: $p does not apply (dry run)"; }
		grep -qi 'offset\|fuzz' "$LOG/$series-$p.dry-run" &&
			{ cat "$LOG/$series-$p.dry-run" >&2; fail "$series: $p applies only with offset/fuzz"; }
		(cd "$work" && patch -p1 --batch --fuzz=0 --no-backup-if-mismatch <"$PATCHES/$series/$p") \
			>"$LOG/$series-$p.apply" 2>&1 || fail "$series: $p does not apply"
		echo "APPLIED $series $p"
	done
}

# Fails when a compile log has a warning or error in FILE (a patched file).
no_warnings_in() {
	local log=$1 f=$2
	# make -C DIR prints paths relative to DIR (iptables), Kbuild relative to the tree.
	if grep -E "(^|[/ ])($f|$(basename "$f")):[0-9]+:[0-9]+: (warning|error)" "$log" >&2; then
		fail "$f: compiler warnings"
	fi
	return 0
}

# ---- kernel -------------------------------------------------------------------------------
KS=linux-6.1
KW=$KDIR/work
if [ ! -e "$KDIR/.prepared" ]; then
	info "preparing a kernel tree (copy, Debian amd64 config, olddefconfig, prepare)"
	rm -rf "$KW"
	cp -a "$KDIR/orig" "$KW"
	cp "$KDIR/config.amd64" "$KW/.config"
	# Object-level checks only: no debug info (much faster), no Debian signing certificates.
	"$KW/scripts/config" --file "$KW/.config" \
		--disable DEBUG_INFO --disable DEBUG_INFO_DWARF5 --disable DEBUG_INFO_DWARF4 \
		--disable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT --enable DEBUG_INFO_NONE \
		--disable DEBUG_INFO_BTF --set-str SYSTEM_TRUSTED_KEYS "" \
		--set-str SYSTEM_REVOCATION_KEYS "" --set-str BUILD_SALT ""
	"${NICE[@]}" make -C "$KW" -s olddefconfig >"$LOG/kernel-olddefconfig.log" 2>&1 ||
		fail "kernel: make olddefconfig (see $LOG/kernel-olddefconfig.log)"
	"${NICE[@]}" make -C "$KW" -j"$JOBS" prepare >"$LOG/kernel-prepare.log" 2>&1 ||
		fail "kernel: make prepare (see $LOG/kernel-prepare.log)"
	touch "$KDIR/.prepared"
fi
restore_touched "$KS" "$KDIR/orig" "$KW"
for p in $(series_patches "$KS"); do
	"${NICE[@]}" perl "$KDIR/orig/scripts/checkpatch.pl" --strict --quiet \
		"$PATCHES/$KS/$p" >"$LOG/$KS-$p.checkpatch" 2>&1 ||
		{ cat "$LOG/$KS-$p.checkpatch" >&2; fail "$KS: $p is not checkpatch clean"; }
	echo "CHECKPATCH $KS $p"
done
apply_series "$KS" "$KW"
for f in $(touched_files "$KS" | grep '\.c$'); do
	o=${f%.c}.o
	rm -f "$KW/$o"
	"${NICE[@]}" make -C "$KW" -j"$JOBS" "$o" >"$LOG/kernel-$(basename "$o").log" 2>&1 ||
		{ tail -40 "$LOG/kernel-$(basename "$o").log" >&2; fail "$KS: make $o"; }
	[ -s "$KW/$o" ] || fail "$KS: $o not built"
	no_warnings_in "$LOG/kernel-$(basename "$o").log" "$f"
	echo "COMPILED $KS $f"
done

# ---- iptables -----------------------------------------------------------------------------
IS=iptables-1.8.9
IW=$IDIR/work
if [ ! -e "$IDIR/.configured" ]; then
	info "configuring iptables (--disable-nftables --disable-connlabel)"
	rm -rf "$IW"
	cp -a "$IDIR/orig" "$IW"
	(cd "$IW" && "${NICE[@]}" ./configure --disable-nftables --disable-connlabel \
		--disable-dependency-tracking) >"$LOG/iptables-configure.log" 2>&1 ||
		fail "iptables: configure (see $LOG/iptables-configure.log)"
	# The libraries and extensions the legacy binary links against, built once.
	"${NICE[@]}" make -C "$IW" -j"$JOBS" >"$LOG/iptables-build.log" 2>&1 ||
		fail "iptables: make (see $LOG/iptables-build.log)"
	touch "$IDIR/.configured"
fi
restore_touched "$IS" "$IDIR/orig" "$IW"
apply_series "$IS" "$IW"
for f in $(touched_files "$IS" | grep '\.c$'); do
	dir=$(dirname "$f")
	base=$(basename "$f" .c)
	# automake names objects <program>-<file>.o when a program has its own flags.
	objs=$(cd "$IW/$dir" && ls -- *"-$base.o" "$base.o" "$base.lo" 2>/dev/null || true)
	[ -n "$objs" ] || fail "$IS: no object for $f in the configured build"
	log=$LOG/iptables-$base.log
	: >"$log"
	for o in $objs; do
		rm -f "$IW/$dir/$o"
		"${NICE[@]}" make -C "$IW/$dir" V=1 "$o" >>"$log" 2>&1 ||
			{ tail -40 "$log" >&2; fail "$IS: make $dir/$o"; }
		[ -s "$IW/$dir/$o" ] || fail "$IS: $dir/$o not built"
	done
	no_warnings_in "$log" "$f"
	echo "COMPILED $IS $f"
done
# Link the binaries that contain the touched objects.
"${NICE[@]}" make -C "$IW" -j"$JOBS" >"$LOG/iptables-relink.log" 2>&1 ||
	{ tail -40 "$LOG/iptables-relink.log" >&2; fail "$IS: make (link)"; }
[ -x "$IW/iptables/xtables-legacy-multi" ] || fail "$IS: xtables-legacy-multi not linked"

# Smoke test of the patched iptables-legacy against the running kernel, in a throwaway network
# namespace (needs root, unshare and the ip_tables/iptable_raw/xt_pkttype modules; any
# kernel will do, the rules are only committed, no packet is involved).
smoke() {
	local x=$IW/iptables/xtables-legacy-multi
	XTABLES_LIBDIR=$IW/extensions \
	LD_LIBRARY_PATH=$IW/libxtables/.libs:$IW/libiptc/.libs \
	unshare -n sh -ec "
		'$x' iptables -t raw -A PROMISC -p tcp --syn -j ACCEPT
		'$x' iptables -t raw -A PROMISC -j DROP
		'$x' iptables-save -t raw" 2>&1
}
if out=$(smoke) && [ "$(printf '%s\n' "$out" | grep '^-A ')" = "$(printf '%s\n' \
	'-A PREROUTING -m pkttype --pkt-type otherhost -j PROMISC' \
	'-A PREROUTING -m pkttype --pkt-type otherhost -j DROP' \
	'-A PROMISC -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT' \
	'-A PROMISC -j DROP')" ]; then
	echo "SMOKE $IS iptables -t raw -A PROMISC"
elif [ "$(id -u)" != 0 ] || ! unshare -n true 2>/dev/null ||
	! unshare -n sh -c "iptables-legacy -t raw -S >/dev/null 2>&1 || modprobe iptable_raw" \
		>/dev/null 2>&1; then
	echo "SMOKE-SKIPPED $IS no root, network namespaces or legacy ip_tables here"
else
	printf '%s\n' "$out" >&2
	fail "$IS: iptables -t raw -A PROMISC smoke test"
fi

echo "OK $((SECONDS - START))s"
