#!/usr/bin/env bash
# Builds (once per machine) xttraffic's debug kernel: Debian's own linux-source-6.1 (the
# source of the stock 6.1 image) with the project's PROMISC patches (patches/linux-6.1),
# configured as x86_64_defconfig + kvm_guest.config + debug.config (KASAN, lockdep,
# PROVE_RCU, kmemleak, UBSAN, DEBUG_ATOMIC_SLEEP) + scripts/debug-kernel.config.
#
# The build lives OUTSIDE the clone, in
#   $XTT_DEBUG_KERNEL_CACHE (default /var/cache/xttraffic/debug-kernel)/<source version>-<key>/
#     src/                      the kernel tree (KDIR for out-of-tree modules; objects pruned)
#     root/boot/vmlinuz-REL     the image
#     root/lib/modules/REL/     stripped modules, depmod'ed
#     release, patches, .ready  what was built
# where <key> hashes the config fragment, the patch series and this script's build recipe,
# and REL = 6.1.N-xttdebug-<key> (what `uname -r` says in the guest). A symlink
# .cache/kernels/REL points at it, so scripts/lib/kernels.sh finds it like a stock kernel
# (XTT_KERNEL=debug). When the current key is built this prints REL and exits in a second.
#
#   scripts/debug-kernel.sh            build if needed, print the release
#   scripts/debug-kernel.sh --release  print the release of the current key if built, else fail
# Environment: XTT_DEBUG_KERNEL_JOBS (default: nproc), XTT_DEBUG_KERNEL_KEEP_OBJECTS=1 (keep
# the build's object files, a few GB), XTT_DEBUG_KERNEL_NO_PATCHES=1 (build without patches).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/kernels.sh

log() { printf 'debug-kernel: %s\n' "$*" >&2; }
die() { log "$*"; exit "${2:-1}"; }

# Bump when the build steps below change in a way that changes the result.
RECIPE=3
FRAGMENT=scripts/debug-kernel.config
PATCHDIR=patches/linux-6.1
SRC_PKG=linux-source-6.1

key_of() {
	{
		echo "recipe $RECIPE"
		echo "no-patches ${XTT_DEBUG_KERNEL_NO_PATCHES:-}"
		cat "$FRAGMENT"
		if [ -z "${XTT_DEBUG_KERNEL_NO_PATCHES:-}" ]; then
			cat "$PATCHDIR/series"
			for p in $(cat "$PATCHDIR/series"); do cat "$PATCHDIR/$p"; done
		fi
	} | sha256sum | cut -c1-10
}

srcver() { dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null || true; }

key=$(key_of)
# The unpacked and patched tree depends only on the source version and the patches: an
# unfinished build (interrupted setup, or a fragment edited meanwhile) is resumed from its
# tree, and make rebuilds only what the new configuration changes.
treekey=$({
	echo "recipe $RECIPE"
	echo "no-patches ${XTT_DEBUG_KERNEL_NO_PATCHES:-}"
	[ -n "${XTT_DEBUG_KERNEL_NO_PATCHES:-}" ] || cat "$PATCHDIR/series" $(sed "s|^|$PATCHDIR/|" "$PATCHDIR/series")
} | sha256sum | cut -c1-10)

if [ "${1:-}" = --release ]; then
	v=$(srcver)
	[ -n "$v" ] || exit 1
	d=$DEBUG_KERNEL_CACHE/$v-$key
	[ -e "$d/.ready" ] || exit 1
	cat "$d/release"
	exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (installs $SRC_PKG with apt-get)" 4

# Build dependencies (setup.sh installs most; these are the kernel-only ones).
need=()
for p in "$SRC_PKG" bc bison flex libelf-dev libssl-dev build-essential kmod cpio xz-utils patch; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	log "installing: ${need[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${need[@]}" >/dev/null; then
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			"${need[@]}" >/dev/null
	fi
fi
ver=$(srcver)
[ -n "$ver" ] || die "$SRC_PKG is not installed"
tarball=/usr/src/linux-source-6.1.tar.xz
[ -e "$tarball" ] || die "$tarball missing (package $SRC_PKG $ver)"

dir=$DEBUG_KERNEL_CACHE/$ver-$key
mkdir -p "$DEBUG_KERNEL_CACHE" "$KERNEL_CACHE"

# link the build into .cache/kernels and drop links to other builds
link_build() {
	local rel l
	rel=$(cat "$dir/release")
	for l in "$KERNEL_CACHE"/*-xttdebug-*; do
		[ -L "$l" ] || continue
		[ "$l" = "$KERNEL_CACHE/$rel" ] || rm -f "$l"
	done
	ln -sfn "$dir" "$KERNEL_CACHE/$rel"
	echo "$rel"
}

if [ -e "$dir/.ready" ]; then
	link_build
	exit 0
fi

exec 9>"$DEBUG_KERNEL_CACHE/.lock"
flock 9
if [ -e "$dir/.ready" ]; then
	link_build
	exit 0
fi

start=$(date +%s)
log "building $SRC_PKG $ver (key $key) in $dir; log: $dir/build.log"
resumed=
if [ ! -e "$dir/src/.xtt-tree" ]; then
	for old in "$DEBUG_KERNEL_CACHE/$ver"-*/; do
		old=${old%/}
		[ "$old" != "$dir" ] && [ ! -e "$old/.ready" ] && [ -e "$old/src/.xtt-tree" ] &&
			[ "$(head -n1 "$old/src/.xtt-tree")" = "$treekey" ] || continue
		log "resuming the unfinished build tree of $old"
		rm -rf "$dir"
		mv "$old" "$dir"
		break
	done
fi
if [ -e "$dir/src/.xtt-tree" ] && [ "$(head -n1 "$dir/src/.xtt-tree")" = "$treekey" ]; then
	resumed=1
	rm -rf "$dir/root" "$dir/.ready" "$dir/release"
	mkdir -p "$dir/root/boot"
else
	rm -rf "$dir"
	mkdir -p "$dir/src" "$dir/root/boot"
	tar -xaf "$tarball" -C "$dir/src" --strip-components=1
fi
cd "$dir/src"

# PROMISC patches: each must apply cleanly; if one does not, the kernel is built without
# any of them (and says so in $dir/patches), because the suites must still run.
applied=()
patch_note="none"
if [ -n "$resumed" ]; then
	patch_note=$(sed -n 2p .xtt-tree)
elif [ -n "${XTT_DEBUG_KERNEL_NO_PATCHES:-}" ]; then
	patch_note="none (XTT_DEBUG_KERNEL_NO_PATCHES)"
else
	ok=1
	for p in $(cat "$ROOT/$PATCHDIR/series"); do
		if patch -p1 --dry-run --batch --forward -s <"$ROOT/$PATCHDIR/$p" >/dev/null 2>&1; then
			patch -p1 --batch --forward -s <"$ROOT/$PATCHDIR/$p" >/dev/null
			applied+=("$p")
		else
			log "WARNING: $p does not apply to $SRC_PKG $ver: building WITHOUT the PROMISC patches"
			ok=
			break
		fi
	done
	if [ -z "$ok" ]; then
		for ((i = ${#applied[@]} - 1; i >= 0; i--)); do
			patch -p1 -R --batch -s <"$ROOT/$PATCHDIR/${applied[$i]}" >/dev/null
		done
		patch_note="none (${p} does not apply to $ver)"
		applied=()
	else
		patch_note="${applied[*]}"
	fi
fi
printf '%s\n' "$patch_note" >"$dir/patches"
printf '%s\n%s\n' "$treekey" "$patch_note" >.xtt-tree
log "patches: $patch_note"

{
	cat "$ROOT/$FRAGMENT"
	printf 'CONFIG_LOCALVERSION="-xttdebug-%s"\n' "$key"
} >"$dir/fragment.config"
jobs=${XTT_DEBUG_KERNEL_JOBS:-$(nproc)}
{
	make x86_64_defconfig
	scripts/kconfig/merge_config.sh -m .config kernel/configs/kvm_guest.config \
		kernel/configs/debug.config "$dir/fragment.config"
	make olddefconfig
} >"$dir/build.log" 2>&1 || { tail -n 30 "$dir/build.log" >&2; die "configuration failed"; }

# What the suites rely on must have survived olddefconfig (a dependency can drop a symbol).
missing=()
while read -r want; do
	grep -qx "$want" .config || missing+=("$want")
done <<'EOF'
CONFIG_KASAN=y
CONFIG_PROVE_LOCKING=y
CONFIG_PROVE_RCU=y
CONFIG_DEBUG_KMEMLEAK=y
CONFIG_UBSAN=y
CONFIG_DEBUG_ATOMIC_SLEEP=y
CONFIG_DEBUG_INFO_NONE=y
CONFIG_NET_9P=y
CONFIG_NET_9P_VIRTIO=y
CONFIG_9P_FS=y
CONFIG_OVERLAY_FS=y
CONFIG_VIRTIO_PCI=y
CONFIG_NETFILTER_XTABLES=m
CONFIG_IP_NF_RAW=m
CONFIG_NFT_COMPAT=m
CONFIG_NETFILTER_XT_MATCH_PKTTYPE=m
CONFIG_VETH=m
CONFIG_NET_PKTGEN=m
CONFIG_NET_ACT_MIRRED=m
CONFIG_NET_ACT_SKBEDIT=m
CONFIG_TUN=m
EOF
grep -q '^CONFIG_DEBUG_INFO_BTF=y' .config && missing+=("no BTF")
grep -q '^CONFIG_DEBUG_KMEMLEAK_AUTO_SCAN=y' .config && missing+=("kmemleak auto-scan off")
[ ${#missing[@]} -eq 0 ] || die "config lacks: ${missing[*]} (see $dir/src/.config)"

log "make -j$jobs bzImage modules (nice; ~12 min on 2 idle cores)"
if ! nice -n 10 make -j"$jobs" bzImage modules >>"$dir/build.log" 2>&1; then
	grep -E 'error|Error' "$dir/build.log" | tail -n 20 >&2
	die "build failed (log: $dir/build.log)"
fi
rel=$(make -s kernelrelease)
cp arch/x86/boot/bzImage "$dir/root/boot/vmlinuz-$rel"
make INSTALL_MOD_PATH="$dir/root" INSTALL_MOD_STRIP=1 DEPMOD=true modules_install \
	>>"$dir/build.log" 2>&1 || die "modules_install failed (log: $dir/build.log)"
rm -f "$dir/root/lib/modules/$rel/build" "$dir/root/lib/modules/$rel/source"
ln -s "$dir/src" "$dir/root/lib/modules/$rel/build"
depmod -b "$dir/root" "$rel"

# Keep what out-of-tree module builds need (config, headers, scripts, objtool,
# Module.symvers); drop the objects (GBs) unless asked to keep them.
before=$(du -sm "$dir/src" | cut -f1)
if [ -z "${XTT_DEBUG_KERNEL_KEEP_OBJECTS:-}" ]; then
	find . \( -path ./scripts -o -path ./tools \) -prune -o \
		-type f \( -name '*.o' -o -name '*.ko' -o -name '*.a' -o -name '*.mod.c' \) -print0 |
		xargs -0 rm -f
	rm -f vmlinux vmlinux.o .tmp_vmlinux* arch/x86/boot/compressed/vmlinux arch/x86/boot/vmlinux.bin*
fi
after=$(du -sm "$dir/src" | cut -f1)
echo "$rel" >"$dir/release"
touch "$dir/.ready"
secs=$(($(date +%s) - start))
log "built $rel in ${secs}s; tree ${before} MB -> ${after} MB kept; image+modules $(du -sm "$dir/root" | cut -f1) MB"

# Older builds of the debug kernel (other keys or source versions) are not used any more.
for old in "$DEBUG_KERNEL_CACHE"/*/; do
	old=${old%/}
	[ "$old" = "$dir" ] || { log "removing old build $old"; rm -rf "$old"; }
done
cd "$ROOT"
link_build
