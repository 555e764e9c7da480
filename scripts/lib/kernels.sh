# shellcheck shell=bash
# Helpers to find, fetch and cache Debian bookworm kernels (sourced by setup.sh and vm.sh).
# A "series" is 6.1 or 6.12; a "release" is what `uname -r` says in that kernel,
# e.g. 6.1.0-56-amd64 or 6.12.117+deb12-amd64. Always the generic -amd64 flavour:
# -cloud-amd64 has no 9p, which the VM needs.
# Series "rt" (opt-in, XTT_KERNEL=rt): Debian's PREEMPT_RT flavour of the stock 6.1 ABI,
# e.g. 6.1.0-57-rt-amd64 (linux-image-*-rt-amd64-unsigned and linux-headers-*-rt-amd64),
# fetched and cached as the others (XTT_SETUP_KERNELS="6.1 6.12 debug rt" bash scripts/setup.sh,
# or kernel_prepare "$(kernel_resolve_release rt)"). Series 6.1 never picks an -rt- release.

: "${ROOT:?}"
XTT_CACHE=${XTT_CACHE:-$ROOT/.cache}
KERNEL_CACHE=$XTT_CACHE/kernels
# The debug kernel (scripts/debug-kernel.sh) is built outside the clone and linked into
# $KERNEL_CACHE as RELEASE = 6.1.N-xttdebug-KEY; its "series" is "debug".
DEBUG_KERNEL_CACHE=${XTT_DEBUG_KERNEL_CACHE:-/var/cache/xttraffic/debug-kernel}

# Newest release of a series known to apt with both image and headers.
kernel_resolve_release() {
	local series=$1 hdr
	case $series in
	6.1)
		hdr=$(apt-cache depends linux-headers-amd64 2>/dev/null |
			sed -n 's/^ *Depends: linux-headers-\(6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1)
		[ -n "$hdr" ] && echo "$hdr"
		;;
	rt)
		# the -rt-amd64 flavour of the stock 6.1 ABI (same version, same fixes)
		hdr=$(kernel_resolve_release 6.1) || return 1
		hdr=${hdr%-amd64}-rt-amd64
		apt-cache show "linux-headers-$hdr" >/dev/null 2>&1 &&
			apt-cache show "linux-image-$hdr-unsigned" >/dev/null 2>&1 && echo "$hdr"
		;;
	*)
		local rel
		for rel in $(apt-cache pkgnames "linux-image-$series." 2>/dev/null |
			sed -n "s/^linux-image-\($series\.[0-9]*+deb12-amd64\)-unsigned\$/\1/p" |
			sort -rV); do
			if apt-cache show "linux-headers-$rel" >/dev/null 2>&1; then
				echo "$rel"
				return 0
			fi
		done
		return 1
		;;
	esac
}

# Newest release of a series already unpacked in the cache (prints nothing if none).
# "newest" = the newest Debian kernel of trixie(-backports) that scripts/newest-kernel.sh
# prepared (its folder has a .newest marker); its series name (e.g. 7.3) works too.
kernel_cached_release() {
	local series=$1 d
	[ -d "$KERNEL_CACHE" ] || return 1
	if [ "$series" = newest ]; then
		for d in "$KERNEL_CACHE"/*/.newest; do
			d=$(dirname "$d")
			[ -e "$d/.ready" ] && basename "$d"
		done | sort -V | tail -n1 | grep .
		return
	fi
	if [ "$series" = debug ]; then
		# the build of the current config/patch key if there is one, else the newest link
		d=$(bash "$ROOT/scripts/debug-kernel.sh" --release 2>/dev/null) &&
			[ -e "$KERNEL_CACHE/$d/.ready" ] && { echo "$d"; return 0; }
		for d in $(ls -1t "$KERNEL_CACHE" 2>/dev/null); do
			case $d in *-xttdebug-*) ;; *) continue ;; esac
			[ -e "$KERNEL_CACHE/$d/.ready" ] && { echo "$d"; return 0; }
		done
		return 1
	fi
	for d in $(ls -1 "$KERNEL_CACHE" 2>/dev/null | sort -rV); do
		if [ "$series" = rt ]; then
			case $d in *-rt-amd64) ;; *) continue ;; esac
			[ -e "$KERNEL_CACHE/$d/.ready" ] && { echo "$d"; return 0; }
			continue
		fi
		case $d in
		"$series".*) ;;
		*) continue ;;
		esac
		# 6.1 must not match 6.12, nor the PREEMPT_RT flavour (series rt)
		[ "$series" = 6.1 ] && case $d in 6.1.0-*-rt-amd64) continue ;; 6.1.0-*) ;; *) continue ;; esac
		[ -e "$KERNEL_CACHE/$d/.ready" ] && { echo "$d"; return 0; }
	done
	return 1
}

kernel_dir() { echo "$KERNEL_CACHE/$1"; }
kernel_image() { echo "$KERNEL_CACHE/$1/root/boot/vmlinuz-$1"; }
# KDIR for out-of-tree modules: Debian's headers package, or the debug kernel's own tree,
# or (newest) a Makefile that runs Kbuild in the trixie chroot holding the headers.
kernel_headers() {
	if [ -e "$KERNEL_CACHE/$1/kdir/Makefile" ]; then
		echo "$KERNEL_CACHE/$1/kdir"
	elif [ -e "$KERNEL_CACHE/$1/src/Makefile" ]; then
		echo "$KERNEL_CACHE/$1/src"
	else
		echo "/usr/src/linux-headers-$1"
	fi
}
# 1 when RELEASE is a debug-kernel build
kernel_is_debug() { case $1 in *-xttdebug-*) return 0 ;; esac; return 1; }

# Install the headers of a release and unpack its image into the cache.
kernel_prepare() {
	local rel=$1 dir tmp
	dir=$(kernel_dir "$rel")
	if [ ! -e "$(kernel_headers "$rel")/Makefile" ]; then
		printf 'setup: installing linux-headers-%s\n' "$rel" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			"linux-headers-$rel" >/dev/null
	fi
	[ -e "$dir/.ready" ] && return 0
	printf 'setup: unpacking linux-image-%s-unsigned into %s\n' "$rel" "$dir" >&2
	tmp=$(mktemp -d)
	chmod 755 "$tmp" # apt-get download runs as _apt
	(cd "$tmp" && apt-get download -q "linux-image-$rel-unsigned" >/dev/null)
	rm -rf "$dir"
	mkdir -p "$dir/root"
	dpkg-deb -x "$tmp"/linux-image-*.deb "$dir/root"
	rm -rf "$tmp"
	depmod -b "$dir/root" "$rel"
	touch "$dir/.ready"
}
