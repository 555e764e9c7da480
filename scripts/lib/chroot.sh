# Sourced by scripts/operator-chroot.sh and scripts/newest-kernel.sh (the debootstrap'd chroots).

# in_root ROOT CMD...: CMD in ROOT with /proc and /dev, in a private mount namespace, with a
# clean environment (as apt on an installed Debian box would run).
in_root() {
	local root=$1
	shift
	unshare --mount --propagation private -- bash -c '
		set -e
		r=$1; shift
		mount -t proc proc "$r/proc"
		mount --rbind /dev "$r/dev"
		exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			DEBIAN_FRONTEND=noninteractive "$@"
	' in_root "$root" "$@"
}
