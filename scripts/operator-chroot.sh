#!/usr/bin/env bash
# Debian chroots for testing the operator's install (test/operator/), from Debian's archive.
#
#   operator-chroot.sh base SUITE...  create the cached base of each SUITE once, print its path
#   operator-chroot.sh run SUITE DIR [--bind HOST:GUEST]... -- CMD [ARG...]
#                                     run CMD as root in a copy-on-write view of the base
#   operator-chroot.sh apt-line SUITE print the operator's apt command the base was made with
#
# SUITE:
#   trixie    Debian 13: debootstrap --variant=minbase, then exactly README's apt command
#             ("Installing on a router or monitor box"), with `$(uname -r)` standing for the
#             kernel of a stock Debian 13 box (the ABI linux-headers-amd64 points to today; its
#             image comes in as the headers' dependency, as it is already there on such a box).
#   bookworm  Debian 12: minbase + its own nodejs (18.x), only to run the CLI under a real Node 18.
#
# Bases are cached outside the clone, once per machine, in
# ${XTT_CHROOT_CACHE:-/var/cache/xttraffic}/chroot-SUITE-HASH (HASH: of the suite, mirror and
# apt command), built in a temporary folder and renamed when complete, under a lock.
# `run` never writes into the base: DIR/upper holds a run's changes (an overlay mounted in a
# private mount namespace, with /proc, /dev and the --bind folders, all gone when CMD ends), so
# runs do not pollute each other and successive `run`s with the same DIR see each other's
# changes. Inside, the host's CA bundle is given to node as NODE_EXTRA_CA_CERTS (this machine
# reaches the npm registry through a TLS proxy).
# Needs root, debootstrap (scripts/setup.sh installs it) and overlayfs.
set -euo pipefail

MIRROR=${XTT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${XTT_CHROOT_CACHE:-/var/cache/xttraffic}
# README's apt command, word for word (test/operator/ checks that README still has it).
TRIXIE_APT='apt install build-essential linux-headers-$(uname -r) libxtables-dev pkg-config nodejs npm'
BOOKWORM_APT='apt install nodejs'
# Bump when the way a base is made changes (invalidates the cached bases).
RECIPE=2

log() { printf 'operator-chroot: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

apt_line() {
	case "$1" in
	trixie) printf '%s\n' "$TRIXIE_APT" ;;
	bookworm) printf '%s\n' "$BOOKWORM_APT" ;;
	*) die "unknown suite '$1' (trixie or bookworm)" ;;
	esac
}

base_dir() {
	local hash
	hash=$(printf '%s\n' "$RECIPE" "$1" "$MIRROR" "$(apt_line "$1")" | sha256sum | cut -c1-12)
	printf '%s/chroot-%s-%s\n' "$CACHE" "$1" "$hash"
}

. "$(dirname "${BASH_SOURCE[0]}")/lib/chroot.sh" # in_root

create_base() {
	local suite=$1 dest=$2 tmp line
	tmp="$dest.tmp.$$"
	rm -rf --one-file-system "$tmp"
	trap 'rm -rf --one-file-system "$tmp"' EXIT
	log "debootstrap $suite (minbase) from $MIRROR into $tmp"
	debootstrap --variant=minbase "$suite" "$tmp" "$MIRROR" >"$tmp.log" 2>&1 ||
		{ tail -20 "$tmp.log" >&2; die "debootstrap $suite failed (log above)"; }
	rm -f "$tmp.log"
	# The suite's updates and security fixes, as on an installed Debian box.
	cat >"$tmp/etc/apt/sources.list" <<-EOF
		deb $MIRROR $suite main
		deb $MIRROR $suite-updates main
		deb ${MIRROR%/debian}/debian-security $suite-security main
	EOF
	# Faster dpkg in a throwaway tree (no fsync); changes nothing that is installed.
	echo force-unsafe-io >"$tmp/etc/dpkg/dpkg.cfg.d/xtt-unsafe-io"
	cp /etc/resolv.conf "$tmp/etc/resolv.conf"
	line=$(apt_line "$suite")
	in_root "$tmp" apt-get update -q >/dev/null
	if [[ $line == *'$(uname -r)'* ]]; then
		local abi
		abi=$(in_root "$tmp" apt-cache depends linux-headers-amd64 |
			sed -n 's/^ *Depends: linux-headers-\(.*-amd64\)$/\1/p' | head -1)
		[ -n "$abi" ] || die "cannot resolve the $suite kernel ABI from linux-headers-amd64"
		line=${line//'$(uname -r)'/$abi}
		echo "$abi" >"$tmp/etc/xtt-kernel-release"
	fi
	log "in the $suite chroot: $line"
	# INITRD=No: no initramfs for the kernel image the headers pull in (on the operator's box
	# that image is already installed; here nothing boots it).
	# shellcheck disable=SC2086 # the line is words, as the operator types them
	in_root "$tmp" env INITRD=No $line -y -q >"$tmp.log" 2>&1 ||
		{ tail -30 "$tmp.log" >&2; die "'$line' failed in the $suite chroot (log above)"; }
	rm -f "$tmp.log"
	in_root "$tmp" apt-get clean
	rm -rf "$tmp/var/lib/apt/lists/"*_Packages "$tmp/var/lib/apt/lists/"*_Translation-*
	mv "$tmp" "$dest"
	trap - EXIT
}

cmd_base() {
	local suite=$1 dest t0
	[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot)"
	command -v debootstrap >/dev/null || die "debootstrap is missing: run 'npm run setup' (or apt install debootstrap)"
	dest=$(base_dir "$suite")
	if [ ! -d "$dest" ]; then
		mkdir -p "$CACHE"
		exec 9>"$dest.lock"
		flock 9
		if [ ! -d "$dest" ]; then
			t0=$(date +%s)
			create_base "$suite" "$dest"
			log "$suite base ready in $(($(date +%s) - t0)) s: $dest"
		fi
		exec 9>&-
	fi
	printf '%s\n' "$dest"
}

cmd_run() {
	local suite=$1 dir=$2 base
	shift 2
	local binds=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		case "$1" in
		--bind) binds+=("$2"); shift 2 ;;
		*) die "run: unknown option '$1' (--bind HOST:GUEST, then -- CMD)" ;;
		esac
	done
	[ "${1:-}" = -- ] || die "run: '--' and a command expected"
	shift
	[ $# -gt 0 ] || die "run: no command given"
	base=$(cmd_base "$suite")
	mkdir -p "$dir/upper" "$dir/work" "$dir/root"
	dir=$(cd "$dir" && pwd)
	unshare --mount --propagation private -- bash -c '
		set -e
		base=$1 dir=$2 nbinds=$3; shift 3
		r=$dir/root
		mount -t overlay overlay -o "lowerdir=$base,upperdir=$dir/upper,workdir=$dir/work" "$r"
		mount -t proc proc "$r/proc"
		mount --rbind /dev "$r/dev"
		cp /etc/resolv.conf "$r/etc/resolv.conf"
		cp /etc/ssl/certs/ca-certificates.crt "$r/etc/xtt-host-ca.crt"
		for ((i = 0; i < nbinds; i++)); do
			src=${1%%:*} dst=${1#*:}; shift
			mkdir -p "$r$dst"
			mount --bind "$src" "$r$dst"
		done
		exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			NODE_EXTRA_CA_CERTS=/etc/xtt-host-ca.crt "$@"
	' run "$base" "$dir" "${#binds[@]}" "${binds[@]}" "$@"
}

case "${1:-}" in
base)
	[ $# -ge 2 ] || die "usage: $0 base SUITE..."
	shift
	for s in "$@"; do apt_line "$s" >/dev/null; done
	for s in "$@"; do cmd_base "$s"; done
	;;
run) [ $# -ge 4 ] || die "usage: $0 run SUITE DIR [--bind HOST:GUEST]... -- CMD [ARG...]"; apt_line "$2" >/dev/null; shift; cmd_run "$@" ;;
apt-line) [ $# = 2 ] || die "usage: $0 apt-line SUITE"; apt_line "$2" ;;
*) die "usage: $0 base SUITE... | run SUITE DIR [--bind HOST:GUEST]... -- CMD [ARG...] | apt-line SUITE" ;;
esac
