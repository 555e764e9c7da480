#!/bin/bash
# PID 1 inside the VM, after switch_root: set up a minimal system, run the command that
# `npm run vm` was given (in $RUN/cmd) with its output on ttyS1, record its exit status in
# $RUN/rc and the kernel log in $RUN/dmesg, then power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null

for arg in $(cat /proc/cmdline); do
	case $arg in
	xtt.run=*) RUN=${arg#xtt.run=} ;;
	xtt.repo=*) REPO=${arg#xtt.repo=} ;;
	esac
done
# The root is an overlay with a tmpfs upper: /tmp, /root and /var are writable as they
# are. A fresh /run, unless the repo or the run folder (mounted by the initramfs) is
# under it: a tmpfs there would hide them.
case "$REPO/ $RUN/" in
*/run/*) ;;
*) mount -t tmpfs tmpfs /run ;;
esac
mkdir -p /run/netns /run/lock
export XTT_RUN=$RUN XTT_IN_VM=1

off() {
	sync
	busybox poweroff -f 2>/dev/null || echo o >/proc/sysrq-trigger
	sleep 10
}

out=/dev/ttyS1
stty -F $out raw -echo 2>/dev/null
hostname xtt-vm
ip link set lo up
# The guest is an appliance: no forwarding, no rp_filter surprises.
sysctl -qw kernel.panic_on_oops=1 kernel.printk_ratelimit=0 >/dev/null 2>&1
echo "xtt-vm: kernel $(uname -r) ready" >/dev/ttyS0

# shellcheck disable=SC1091
[ -f "$RUN/env" ] && . "$RUN/env"
cd "$REPO" || { echo 125 >"$RUN/rc"; off; }
# Through a pipe: the command's output is not a terminal (as in CI), so tools print
# plain text, not progress bars.
bash "$RUN/cmd" </dev/null 2>&1 | cat >"$out"
echo "${PIPESTATUS[0]}" >"$RUN/rc"
# Debug kernel (xtt.kmemleak=1 from vm.sh): kmemleak's debugfs file appears only after its
# late init (~80 s into a TCG boot); scan twice (an object is reported only once it has
# been unreferenced over two scans, as Documentation/dev-tools/kmemleak.rst advises), then
# keep the report for vm.sh, which decides what counts.
if grep -qw 'xtt.kmemleak=1' /proc/cmdline; then
	mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug
	for _ in $(seq 1 240); do
		[ -e /sys/kernel/debug/kmemleak ] && break
		sleep 1
	done
	if [ ! -e /sys/kernel/debug/kmemleak ]; then
		echo "no /sys/kernel/debug/kmemleak after 240 s" >"$RUN/kmemleak.err"
	elif ! { echo scan >/sys/kernel/debug/kmemleak && sleep 6 &&
		echo scan >/sys/kernel/debug/kmemleak; } 2>"$RUN/kmemleak.err"; then
		echo "echo scan failed: $(cat "$RUN/kmemleak.err")" >"$RUN/kmemleak.err"
	else
		cat /sys/kernel/debug/kmemleak >"$RUN/kmemleak.tmp" && mv "$RUN/kmemleak.tmp" "$RUN/kmemleak"
	fi
fi
dmesg >"$RUN/dmesg" 2>/dev/null
off
