#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (run as root):
#  - installs every Debian package xttraffic's build, VM and tests need;
#  - resolves the current bookworm kernel ABIs (6.1 and 6.12) at run time,
#    installs their headers and unpacks their images into .cache/kernels/
#    (never into the host's /boot);
#  - with XTT_SETUP_KERNELS="6.1 6.12 debug": also builds the debug kernel (KASAN, lockdep,
#    kmemleak, UBSAN; Debian's linux-source-6.1 with the PROMISC patches) once per machine,
#    cached in /var/cache/xttraffic/ (scripts/debug-kernel.sh: ~12-30 min the first time, a
#    second afterwards). Opt-in until `npm test` runs it by default (XTT_TEST_KERNELS);
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
)
# dkms: `xttraffic install --dkms` is tested in the VM. Its Recommends include the
# linux-headers-amd64 metapackage, which --no-install-recommends keeps out: the headers
# installed are exactly the ABIs resolved below.
# debootstrap: the operator's install is tested in Debian 13/12 chroots (test/operator/).
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

# Kernels: headers on the host (for building the module), image + modules in the cache.
for series in ${XTT_SETUP_KERNELS:-6.1 6.12}; do
	if [ "$series" = debug ]; then
		rel=$(bash scripts/debug-kernel.sh) || { log "debug kernel build failed"; exit 1; }
		log "debug kernel: $rel"
		continue
	fi
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

# npm install with the committed lock installs exactly the locked versions. (Not `npm ci`:
# npm 11 with this machine's omit-lockfile-registry-resolved rejects the lock's optional
# per-platform packages as "Missing ... from lock file".)
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	log "npm install (locked versions)"
	npm install --no-audit --no-fund --loglevel=error
fi
log "ok"
