#!/usr/bin/env bash
# bench/build-account.sh [RELEASE]: host side. Builds xtables-addons' xt_ACCOUNT.ko (Debian
# bookworm's 3.23 sources, from the xtables-addons-dkms package: the deb-src tarballs are not
# always reachable) against /usr/src/linux-headers-RELEASE, and unpacks Debian's
# iptaccount + libxt_ACCOUNT.so + libxt_ACCOUNT_cl.so.1 (xtables-addons-common) into
# bench/.build/account/. bench/run.sh uses them when present. Default RELEASE: the cached 6.1.
set -euo pipefail
cd "$(dirname "$0")/.."
rel=${1:-${XTT_KERNEL_RELEASE:-$(ls -d .cache/build/6.1.* 2>/dev/null | head -n1 | xargs -r basename)}}
[ -n "$rel" ] || { echo "build-account: no kernel release" >&2; exit 1; }
kdir=/usr/src/linux-headers-$rel
[ -d "$kdir" ] || { echo "build-account: $kdir missing" >&2; exit 1; }
out=$PWD/bench/.build/account
mkdir -p "$out/deb" "$out/$rel"
if [ ! -e "$out/root/usr/sbin/iptaccount" ]; then
	(cd "$out/deb" && apt-get download xtables-addons-dkms xtables-addons-common)
	rm -rf "$out/root"
	for d in "$out"/deb/*.deb; do dpkg-deb -x "$d" "$out/root"; done
fi
src=$(ls -d "$out"/root/usr/src/xtables-addons-*/extensions | head -n1)
b=$out/$rel/src
rm -rf "$b"
mkdir -p "$b"
cp "$src"/ACCOUNT/xt_ACCOUNT.[ch] "$src"/compat_*.h "$b/"
echo 'obj-m += xt_ACCOUNT.o' >"$b/Kbuild"
make -C "$kdir" M="$b" modules >&2
cp "$b/xt_ACCOUNT.ko" "$out/$rel/xt_ACCOUNT.ko"
echo "build-account: $out/$rel/xt_ACCOUNT.ko"
