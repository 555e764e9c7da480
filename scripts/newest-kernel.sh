#!/usr/bin/env bash
# The newest Debian kernel reachable from Debian 13 (trixie + trixie-backports), to build the
# module against with -Werror and to boot in the VM (issue 12, "Newer kernels").
#
#   newest-kernel.sh             make sure it is there (idempotent), print its release
#   newest-kernel.sh --release   print the release already prepared in this clone (exit 1: none)
#   newest-kernel.sh make RELEASE [MAKE ARG...]
#                                run make inside that release's chroot; M=DIR (and every
#                                --bind-like path given as M=) is bind-mounted at its own path
#
# What it makes (the approach of scripts/operator-chroot.sh: debootstrap'd minbase, built in a
# temporary folder under a lock and renamed when complete), cached outside the clone in
# ${XTT_NEWEST_KERNEL_CACHE:-/var/cache/xttraffic/newest-kernel}/RELEASE-HASH/:
#   root/   a trixie chroot with trixie-backports, gcc-14, make and linux-headers-RELEASE
#           (Debian's headers need the gcc they were built with, and trixie's glibc for
#           their prebuilt kbuild tools: neither exists on this bookworm host)
#   debs/   the kernel image packages of RELEASE (unsigned image + modules + base files)
# RELEASE is resolved at run time from apt inside the chroot: the newest
# linux-headers-<version>-amd64 (generic flavour: -cloud has no 9p) whose image exists too.
# Then, in the clone, .cache/kernels/RELEASE/ as scripts/lib/kernels.sh has it for 6.1/6.12:
#   root/boot/vmlinuz-RELEASE, root/boot/config-RELEASE, root/lib/modules/RELEASE (depmod'ed)
#   kdir/Makefile  a KDIR for `make -C kernel KDIR=...` that runs Kbuild in the chroot
#                  (scripts/lib/kernels.sh kernel_headers gives it to build.sh)
#   .newest        marks it as the "newest" series of XTT_KERNEL
# Once made, a second call takes a second and needs no network; XTT_NEWEST_REFRESH=1 asks
# apt again and prepares a newer release when there is one.
# Needs root, debootstrap and overlayfs (as scripts/operator-chroot.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/kernels.sh

MIRROR=${XTT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${XTT_NEWEST_KERNEL_CACHE:-/var/cache/xttraffic/newest-kernel}
SUITE=trixie
# Bump when the way a chroot is made changes (invalidates the cached chroots).
RECIPE=1

log() { printf 'newest-kernel: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

. "$(dirname "${BASH_SOURCE[0]}")/lib/chroot.sh" # in_root

key_of() { printf '%s\n' "$RECIPE" "$SUITE" "$MIRROR" "$1" | sha256sum | cut -c1-10; }

# Newest ready chroot in the cache: prints its folder.
cached_dir() {
	local d best=
	for d in "$CACHE"/*/; do
		d=${d%/}
		[ -e "$d/.ready" ] || continue
		[ "$(basename "$d")" = "$(cat "$d/release")-$(key_of "$(cat "$d/release")")" ] || continue
		best+="$d"$'\n'
	done
	[ -n "$best" ] || return 1
	printf '%s' "$best" | sort -V | tail -n1
}

# resolve ROOT: apt-get update in the chroot, print the newest generic -amd64 release with
# headers and an image (old packaging: linux-image-REL-unsigned; since 6.17-ish:
# linux-binary-unsigned-REL + linux-modules-REL + linux-base-REL).
resolve() {
	local root=$1
	in_root "$root" apt-get update -q >/dev/null
	in_root "$root" bash -c '
		for rel in $(apt-cache pkgnames linux-headers- |
			sed -n "s/^linux-headers-\([0-9][0-9.]*\(-[0-9]*\)\{0,1\}\(+deb[0-9]*\)\{0,1\}-amd64\)\$/\1/p" |
			sort -rV); do
			if apt-cache show "linux-image-$rel-unsigned" >/dev/null 2>&1 ||
				apt-cache show "linux-binary-unsigned-$rel" >/dev/null 2>&1; then
				echo "$rel"
				exit 0
			fi
		done
		exit 1'
}

# image_packages ROOT REL: the packages whose files make the bootable image + modules.
image_packages() {
	if in_root "$1" apt-cache show "linux-image-$2-unsigned" >/dev/null 2>&1; then
		echo "linux-image-$2-unsigned"
	else
		echo "linux-binary-unsigned-$2 linux-modules-$2 linux-base-$2"
	fi
}

# make_chroot TMP: debootstrap + backports, resolve, install; renames TMP when complete.
# Prints the final folder.
make_chroot() {
	local tmp=$1 rel dest pkgs
	log "debootstrap $SUITE (minbase) from $MIRROR into $tmp"
	rm -rf --one-file-system "$tmp"
	mkdir -p "$tmp"
	debootstrap --variant=minbase "$SUITE" "$tmp/root" "$MIRROR" >"$tmp/log" 2>&1 ||
		{ tail -20 "$tmp/log" >&2; die "debootstrap $SUITE failed (log above)"; }
	cat >"$tmp/root/etc/apt/sources.list" <<-EOF
		deb $MIRROR $SUITE main
		deb $MIRROR $SUITE-updates main
		deb ${MIRROR%/debian}/debian-security $SUITE-security main
		deb $MIRROR $SUITE-backports main
	EOF
	echo force-unsafe-io >"$tmp/root/etc/dpkg/dpkg.cfg.d/xtt-unsafe-io"
	cp /etc/resolv.conf "$tmp/root/etc/resolv.conf"
	rel=$(resolve "$tmp/root") || die "no linux-headers-*-amd64 with an image in $SUITE(-backports)"
	log "newest release: $rel; installing gcc-14, make, linux-headers-$rel"
	in_root "$tmp/root" apt-get install -y -q --no-install-recommends \
		make gcc-14 "linux-headers-$rel" >"$tmp/log" 2>&1 ||
		{ tail -30 "$tmp/log" >&2; die "installing linux-headers-$rel failed (log above)"; }
	pkgs=$(image_packages "$tmp/root" "$rel")
	mkdir -p "$tmp/root/debs"
	chmod 777 "$tmp/root/debs" # apt-get download runs as _apt
	# shellcheck disable=SC2086 # a list of package names
	in_root "$tmp/root" bash -c "cd /debs && apt-get download -q $pkgs" >"$tmp/log" 2>&1 ||
		{ tail -20 "$tmp/log" >&2; die "apt-get download $pkgs failed (log above)"; }
	mv "$tmp/root/debs" "$tmp/debs"
	in_root "$tmp/root" apt-get clean
	echo "$rel" >"$tmp/release"
	rm -f "$tmp/log"
	touch "$tmp/.ready"
	dest=$CACHE/$rel-$(key_of "$rel")
	rm -rf --one-file-system "$dest"
	mv "$tmp" "$dest"
	printf '%s\n' "$dest"
}

# write_kdir K REL: K/kdir/Makefile, a KDIR for kernel/Makefile (`$(MAKE) -C $(KDIR) M=...
# modules`) that runs Kbuild in REL's chroot with M bind-mounted at its own path; make's
# -s and a KCFLAGS given on the command line go along.
write_kdir() {
	local k=$1 rel=$2
	mkdir -p "$k/kdir"
	{
		printf '# KDIR proxy made by scripts/newest-kernel.sh: Debian'"'"'s linux-headers-%s\n' "$rel"
		printf '# live in a %s chroot (gcc-14, %s'"'"'s glibc); Kbuild runs there.\n' "$SUITE" "$SUITE"
		printf '.PHONY: modules clean\n'
		printf 'modules clean:\n'
		printf '\t@bash %s/scripts/newest-kernel.sh make %s $(if $(findstring s,$(firstword -$(MAKEFLAGS))),-s) ' "$ROOT" "$rel"
		printf -- '-C /usr/src/linux-headers-%s M=$(M) $(if $(KCFLAGS),KCFLAGS='"'"'$(KCFLAGS)'"'"') $@\n' "$rel"
	} >"$k/kdir/Makefile.tmp"
	mv "$k/kdir/Makefile.tmp" "$k/kdir/Makefile"
}

# unpack DIR REL: DIR/debs into .cache/kernels/REL in the layout of 6.1/6.12, plus kdir/.
unpack() {
	local dir=$1 rel=$2 k tmp f mods
	k=$(kernel_dir "$rel")
	[ -e "$k/.ready" ] && [ "$(cat "$k/.newest" 2>/dev/null)" = "$dir" ] && return 0
	log "unpacking $rel into $k"
	tmp=$k.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$tmp/root"
	for f in "$dir"/debs/*.deb; do dpkg-deb -x "$f" "$tmp/root"; done
	# Debian 13's packages put everything under /usr/lib/modules/REL; the harness wants
	# /boot/vmlinuz-REL, /boot/config-REL and a real /lib/modules (bind-mounted in the guest).
	if [ -d "$tmp/root/usr/lib/modules/$rel" ]; then
		mkdir -p "$tmp/root/lib/modules"
		mv "$tmp/root/usr/lib/modules/$rel" "$tmp/root/lib/modules/$rel"
	fi
	mods=$tmp/root/lib/modules/$rel
	mkdir -p "$tmp/root/boot"
	if [ ! -e "$tmp/root/boot/vmlinuz-$rel" ]; then
		for f in "$mods/vmlinuz.unsigned" "$mods/vmlinuz"; do
			[ -e "$f" ] && { mv "$f" "$tmp/root/boot/vmlinuz-$rel"; break; }
		done
	fi
	[ -e "$tmp/root/boot/config-$rel" ] || { [ -e "$mods/config" ] && cp "$mods/config" "$tmp/root/boot/config-$rel"; }
	[ -e "$tmp/root/boot/vmlinuz-$rel" ] || die "no kernel image in $(ls "$dir"/debs)"
	[ -e "$mods/kernel" ] || die "no modules in $(ls "$dir"/debs)"
	depmod -b "$tmp/root" "$rel"
	echo "$dir" >"$tmp/.newest"
	touch "$tmp/.ready"
	rm -rf "$k"
	mkdir -p "$KERNEL_CACHE"
	mv "$tmp" "$k"
	# an older newest release of this clone goes (6.1, 6.12 and debug have no .newest)
	for f in "$KERNEL_CACHE"/*/.newest; do
		[ -e "$f" ] || continue
		[ "$(dirname "$f")" = "$k" ] || rm -rf "$(dirname "$f")"
	done
}

cmd_ensure() {
	local dir rel t0 newer
	[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot)"
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	dir=$(cached_dir || true)
	if [ -n "$dir" ] && [ -n "${XTT_NEWEST_REFRESH:-}" ]; then
		newer=$(resolve "$dir/root") || die "apt in $dir/root found no kernel"
		[ "$newer" = "$(cat "$dir/release")" ] || { log "newer release: $newer"; dir=; }
	fi
	if [ -z "$dir" ]; then
		command -v debootstrap >/dev/null || die "debootstrap is missing: run 'npm run setup' (or apt install debootstrap)"
		t0=$(date +%s)
		trap 'rm -rf --one-file-system "$CACHE/tmp.$$"' EXIT
		dir=$(make_chroot "$CACHE/tmp.$$")
		trap - EXIT
		log "chroot ready in $(($(date +%s) - t0)) s: $dir"
		# older releases' chroots go
		for old in "$CACHE"/*/; do
			old=${old%/}
			[ "$old" = "$dir" ] || [ ! -e "$old/.ready" ] || rm -rf --one-file-system "$old"
		done
	fi
	rel=$(cat "$dir/release")
	unpack "$dir" "$rel"
	write_kdir "$(kernel_dir "$rel")" "$rel"
	exec 9>&-
	printf '%s\n' "$rel"
}


# make REL ARGS...: make in REL's chroot, seen through an overlay whose upper is a tmpfs
# (the cached chroot is never written), with M=DIR bind-mounted at DIR.
cmd_make() {
	local rel=$1 dir a m=
	shift
	[ "$(id -u)" = 0 ] || die "must run as root (chroot)"
	dir=$(cat "$(kernel_dir "$rel")/.newest" 2>/dev/null) ||
		die "no newest-kernel chroot for '$rel': run 'npm run setup' (scripts/newest-kernel.sh)"
	[ -e "$dir/.ready" ] || die "the chroot $dir of '$rel' is gone: run 'npm run setup'"
	for a in "$@"; do
		case $a in M=*) m=${a#M=} ;; esac
	done
	[ -n "$m" ] && [ -d "$m" ] || die "make: M=DIR (an existing folder) expected, got '${m}'"
	unshare --mount --propagation private -- bash -c '
		set -e
		base=$1 m=$2; shift 2
		t=$(mktemp -d)
		mount -t tmpfs -o mode=755 tmpfs "$t"
		mkdir "$t/u" "$t/w" "$t/r"
		mount -t overlay overlay -o "lowerdir=$base,upperdir=$t/u,workdir=$t/w" "$t/r"
		mount -t proc proc "$t/r/proc"
		mount --rbind /dev "$t/r/dev"
		mkdir -p "$t/r$m"
		mount --bind "$m" "$t/r$m"
		cd "$t/r$m"
		exec chroot "$t/r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin make "$@"
	' make "$dir/root" "$m" "$@"
}

case "${1:-}" in
'') cmd_ensure ;;
--release) kernel_cached_release newest ;;
make) [ $# -ge 2 ] || die "usage: $0 make RELEASE [MAKE ARG...]"; shift; cmd_make "$@" ;;
*) die "usage: $0 [--release | make RELEASE [MAKE ARG...]]" ;;
esac
