#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (run as root):
#  - installs every Debian package xttraffic's build, VM and tests need;
#  - resolves the current bookworm kernel ABIs (6.1 and 6.12) at run time,
#    installs their headers and unpacks their images into .cache/kernels/
#    (never into the host's /boot);
#  - builds the debug kernel (KASAN, lockdep, kmemleak, UBSAN; Debian's linux-source-6.1 with
#    the PROMISC patches) once per machine, cached in /var/cache/xttraffic/
#    (scripts/debug-kernel.sh: 12-16 min on 2 cores the first time, a second afterwards), in
#    the background while the network-bound steps below run, and the patched iptables-legacy
#    of its PROMISC suite (scripts/iptables-promisc.sh, ~2 min once). XTT_SETUP_KERNELS
#    (default "6.1 6.12 debug") names the kernels; without debug, neither is built;
#  - prepares the newest Debian 13 kernel (trixie-backports headers in a cached trixie chroot
#    with gcc-14, its image in .cache/kernels/; scripts/newest-kernel.sh);
#  - installs the npm dependencies from package-lock.json.
# When everything is present it finishes in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/kernels.sh

log() { printf 'setup: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
	log "must run as root (it installs Debian packages)"
	exit 4
fi

PKGS=(
	qemu-system-x86 busybox-static kmod cpio xz-utils zstd
	iptables nftables ipset conntrack iproute2 iputils-ping ethtool
	libxtables-dev libip4tc-dev pkg-config build-essential bc flex bison libelf-dev
	tcpreplay tcpdump netcat-openbsd socat python3
	dkms
	debootstrap
	pahole
)
# pahole (bookworm's name; `dwarves` is its transitional package): test/unit/layout.test.ts
# reads the module's structure layout from its DWARF.
# dkms: `xttraffic install --dkms` is tested in the VM. Its Recommends include the
# linux-headers-amd64 metapackage, which --no-install-recommends keeps out: the headers
# installed are exactly the ABIs resolved below.
# debootstrap: the operator's install is tested in Debian 13/12 chroots (test/operator/).
kernels=${XTT_SETUP_KERNELS:-6.1 6.12 debug}
with_debug=
case " $kernels " in *" debug "*) with_debug=1 ;; esac
# the debug kernel's own build dependencies (scripts/debug-kernel.sh installs them itself
# when run alone): installed here, so that its background build never takes dpkg's lock
# while the steps below install packages
[ -z "$with_debug" ] || PKGS+=(linux-source-6.1 libssl-dev patch)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return 0
	log "apt-get update"
	apt-get update -q >/dev/null
	apt_updated=1
}
if [ ${#missing[@]} -gt 0 ]; then
	apt_update
	log "installing: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

# The debug kernel: CPU-bound (12-16 min on 2 cores the first time), so it builds in the
# background, in its own process group, while the steps below mostly wait on the network
# (stock kernels, debootstrap chroots, the trixie chroot, checkpatch's source, npm). Its
# output goes to $debug_log; setup waits for it at the end, and fails naming that log (and
# the build's own log in /var/cache/xttraffic/debug-kernel/) if it failed. If setup fails
# before, the build is stopped (an interrupted build resumes its tree next time).
debug_log=$ROOT/.cache/setup-debug-kernel.log
debug_pid=
stop_debug_build() {
	[ -n "$debug_pid" ] || return 0
	kill -- -"$debug_pid" 2>/dev/null || true
	wait "$debug_pid" 2>/dev/null || true
	debug_pid=
}
if [ -n "$with_debug" ]; then
	mkdir -p "$ROOT/.cache"
	if rel=$(bash scripts/debug-kernel.sh --release 2>/dev/null); then
		bash scripts/debug-kernel.sh >"$debug_log" 2>&1 || { cat "$debug_log" >&2; exit 1; }
		log "debug kernel: $rel (cached)"
	else
		log "debug kernel: building in the background (log: $debug_log)"
		setsid bash scripts/debug-kernel.sh >"$debug_log" 2>&1 </dev/null &
		debug_pid=$!
		trap stop_debug_build EXIT
		trap 'exit 130' INT TERM
	fi
fi

# Kernels: headers on the host (for building the module), image + modules in the cache.
for series in $kernels; do
	[ "$series" = debug ] && continue
	abi=$(kernel_cached_release "$series" || true)
	if [ -z "$abi" ]; then
		apt_update
		abi=$(kernel_resolve_release "$series")
		[ -n "$abi" ] || { log "cannot resolve a Debian $series kernel"; exit 1; }
	fi
	kernel_prepare "$abi"
done

# Debian 13 and 12 chroots for the operator tests (scripts/operator-chroot.sh), cached in
# /var/cache/xttraffic: 4-7 minutes the first time (7 on a busy 2-core host), nothing after.
bash scripts/operator-chroot.sh base trixie bookworm >/dev/null

# The newest Debian kernel (trixie-backports): its headers in a cached trixie chroot with
# gcc-14, its image unpacked into .cache/kernels/ (scripts/newest-kernel.sh): 43 s the first
# time here (a few minutes through a slower mirror), 0.03 s afterwards.
rel=$(bash scripts/newest-kernel.sh) || { log "newest kernel failed"; exit 1; }
log "newest kernel: $rel"

# checkpatch.pl from Debian's linux-source-6.1 (kernel coding style is a test)
bash scripts/checkpatch.sh --prepare

# The patched iptables-legacy 1.8.9 of the PROMISC suite on the debug kernel (once per
# machine; `npm test` would otherwise build it before its VM steps).
if [ -n "$with_debug" ]; then
	root=$(bash scripts/iptables-promisc.sh) || { log "patched iptables-legacy failed (scripts/iptables-promisc.sh, its log named above)"; exit 1; }
	log "patched iptables-legacy: $root"
fi

# npm install with the committed lock installs exactly the locked versions. (Not `npm ci`:
# npm 11 with this machine's omit-lockfile-registry-resolved rejects the lock's optional
# per-platform packages as "Missing ... from lock file".)
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	log "npm install (locked versions)"
	npm install --no-audit --no-fund --loglevel=error
fi

if [ -n "$debug_pid" ]; then
	log "waiting for the debug kernel build (log: $debug_log)"
	status=0
	wait "$debug_pid" || status=$?
	debug_pid=
	if [ "$status" != 0 ]; then
		tail -n 20 "$debug_log" >&2
		log "debug kernel build failed (exit $status; log: $debug_log)"
		exit 1
	fi
	log "debug kernel: $(tail -n 1 "$debug_log")"
fi
log "ok"
