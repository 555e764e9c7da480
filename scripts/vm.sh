#!/usr/bin/env bash
# npm run vm -- CMD [ARGS...]
# Builds what is stale, boots a cached Debian kernel under qemu, runs CMD as root in the
# guest (the host's root file system read-only with a tmpfs overlay, the repo as working
# directory), streams its output and exits with its status. Fails when the guest kernel
# logs a BUG/WARNING/Oops/..., when the guest does not finish in time, or does not boot.
#
# Environment:
#   XTT_KERNEL=6.1|6.12|debug|newest|RELEASE  kernel to boot (default 6.1); debug = the
#                                KASAN/lockdep/kmemleak/UBSAN build of scripts/debug-kernel.sh;
#                                newest = the newest Debian 13 kernel (trixie-backports) of
#                                scripts/newest-kernel.sh, also by its series (e.g. 7.3)
#   XTT_VM_TIMEOUT=SECONDS       wall-clock limit for the whole run (default 600)
#   XTT_KVM=1                    use KVM instead of TCG (broken on some hosts)
#   XTT_VM_ICOUNT=1              deterministic -icount shift=0,sleep=off, one vCPU (benchmarks)
#   XTT_VM_SMP, XTT_VM_MEM       vCPUs (default 2) and memory in MiB (default 2048, 3072 debug)
#   XTT_VM_HARDEN=0|1            stock kernels: slub_debug=FZPU init_on_free=1 (+ KFENCE
#                                sampling where the config has it); default 1, but 0 for
#                                the bench (XTT_VM_ICOUNT or XTT_BENCH_PASS set)
#   XTT_VM_KMEMLEAK=0            debug kernel: skip the kmemleak scan at the end
#   XTT_VM_KEEP=1                keep the run folder (.cache/vm/runs/ID) after success
#   XTT_NO_BUILD=1               do not run the build first
#   XTT_VM_OUTDIR=DIR            a host folder the guest may write, at the same path
# Variables named XTT_* and CI are passed into the guest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/kernels.sh

die() { printf 'vm: %s\n' "$*" >&2; exit "${2:-1}"; }

[ $# -gt 0 ] || die "usage: npm run vm -- CMD [ARGS...]" 2
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found: run 'npm run setup'" 4

series=${XTT_KERNEL:-6.1}
if [ -e "$(kernel_dir "$series")/.ready" ]; then
	rel=$series
else
	rel=$(kernel_cached_release "$series") ||
		die "no cached $series kernel in $KERNEL_CACHE: run 'npm run setup'" 4
fi
debug=
kernel_is_debug "$rel" && debug=1
# the real path: the debug kernel's folder is a symlink into /var/cache, which the
# initramfs (which sees the host root under /lower) must not follow as an absolute link
kroot=$(readlink -f "$(kernel_dir "$rel")")/root
img=$(kernel_image "$rel")

if [ -z "${XTT_NO_BUILD:-}" ]; then
	bash scripts/build.sh --kernel "$rel" >&2 || die "build failed"
fi

# Initramfs: busybox + the 9p/overlay module chain of this kernel, cached per release.
initrd=$XTT_CACHE/initramfs/$rel.cpio.gz
if [ ! -e "$initrd" ] || [ scripts/vm/initramfs-init -nt "$initrd" ]; then
	bb=$(command -v busybox) || die "busybox not found: run 'npm run setup'" 4
	work=$(mktemp -d)
	mkdir -p "$work"/{bin,dev,proc,sys,mod} "$(dirname "$initrd")"
	cp "$bb" "$work/bin/busybox"
	cp scripts/vm/initramfs-init "$work/init"
	: >"$work/modules.list"
	for m in virtio_pci 9pnet_virtio 9p overlay; do
		modprobe -d "$kroot" -S "$rel" --show-depends "$m" | while read -r kw path _; do
			[ "$kw" = insmod ] || continue
			base=$(basename "$path")
			base=${base%.xz}
			base=${base%.zst}
			grep -qx "$base" "$work/modules.list" && continue
			case $path in
			*.xz) xz -dc "$path" >"$work/mod/$base" ;;
			*.zst) zstd -qdc "$path" >"$work/mod/$base" ;;
			*) cp "$path" "$work/mod/$base" ;;
			esac
			echo "$base" >>"$work/modules.list"
		done
	done
	# a temporary name of this run's own: two VMs of one release may start at once (npm test's
	# lanes); each writes its own file and renames it into place whole
	(cd "$work" && find . | cpio -o -H newc --quiet | gzip -1 >"$initrd.tmp.$$")
	mv "$initrd.tmp.$$" "$initrd"
	rm -rf "$work"
fi

mkdir -p "$XTT_CACHE/vm/runs"
run=$(mktemp -d "$XTT_CACHE/vm/runs/run.XXXXXX")
chmod 755 "$run"
{
	printf '#!/bin/bash\n'
	printf '%q ' "$@"
	printf '\n'
} >"$run/cmd"
{
	{ env | grep -E '^(XTT_[A-Z0-9_]*|CI|VITEST_[A-Z_]*|NO_COLOR|FORCE_COLOR)=' || true; } |
		while IFS='=' read -r k v; do printf 'export %s=%q\n' "$k" "$v"; done
	printf 'export XTT_KERNEL_RELEASE=%q\n' "$rel"
} >"$run/env"

accel=(-accel tcg -cpu max)
[ -n "${XTT_KVM:-}" ] && accel=(-accel kvm -cpu host)
smp=${XTT_VM_SMP:-2}
extra=()
if [ -n "${XTT_VM_ICOUNT:-}" ]; then
	accel=(-accel tcg -cpu max)
	smp=1
	extra+=(-icount shift=0,sleep=off)
fi
timeout_s=${XTT_VM_TIMEOUT:-600}
mem=${XTT_VM_MEM:-$([ -n "$debug" ] && echo 3072 || echo 2048)}
# Kernel command line extras. Stock kernels: SLUB red zones/poisoning/user tracking and
# poison-on-free catch use-after-free and overflows that would otherwise go unseen; not
# for the bench (its icount and wall-clock passes would measure the poisoning too).
append=
harden=${XTT_VM_HARDEN:-$([ -n "${XTT_VM_ICOUNT:-}${XTT_BENCH_PASS:-}" ] && echo 0 || echo 1)}
if [ -z "$debug" ] && [ "$harden" = 1 ]; then
	append+=" slub_debug=FZPU init_on_free=1"
	grep -qx 'CONFIG_KFENCE=y' "$kroot/boot/config-$rel" 2>/dev/null &&
		append+=" kfence.sample_interval=100"
fi
# Debug kernel: 4-level paging (no5lvl). TCG's -cpu max offers LA57, and with it 6.1's
# identify_cpu() clears the boot CPU's feature words for a moment while interrupts are on: an
# interrupt then sees pgtable_l5_enabled() false and KASAN calls every direct-map address
# (ff11...) "wild" ("BUG: KASAN: wild-memory-access in do_raw_spin_lock", 2 s into the boot,
# before any module: 1 of 15 debug boots kept on 1 Dec; the likely cause of stop 18's CI
# failure, whose debug job passed every test). Most machines have 4-level paging anyway.
[ -n "$debug" ] && append+=" no5lvl"
# Debug kernel: the guest scans kmemleak at the end of the run (scripts/vm/guest-init.sh).
[ -n "$debug" ] && [ "${XTT_VM_KMEMLEAK:-1}" != 0 ] && append+=" xtt.kmemleak=1"
outshare=()
outarg=
if [ -n "${XTT_VM_OUTDIR:-}" ]; then
	mkdir -p "$XTT_VM_OUTDIR"
	XTT_VM_OUTDIR=$(cd "$XTT_VM_OUTDIR" && pwd)
	outshare=(-fsdev "local,id=outdir,path=$XTT_VM_OUTDIR,security_model=none"
		-device virtio-9p-pci,fsdev=outdir,mount_tag=outdir)
	outarg=" xtt.out=$XTT_VM_OUTDIR"
fi

: >"$run/out.log"
: >"$run/console.log"
qemu=(qemu-system-x86_64 "${accel[@]}" "${extra[@]}" -smp "$smp" -m "$mem"
	-no-reboot -display none -vga none -monitor none -nic none
	-kernel "$img" -initrd "$initrd"
	-append "console=ttyS0 panic=-1 loglevel=7 xtt.run=$run xtt.repo=$ROOT xtt.kmod=$kroot/lib/modules$outarg$append"
	-serial "file:$run/console.log" -serial "file:$run/out.log"
	-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
	-fsdev "local,id=results,path=$run,security_model=none"
	-device virtio-9p-pci,fsdev=results,mount_tag=results "${outshare[@]}")

printf 'vm: booting %s (%s, %s vCPU, timeout %ss): %s\n' "$rel" \
	"$([ -n "${XTT_KVM:-}" ] && echo kvm || echo tcg)" "$smp" "$timeout_s" "$*" >&2
start=$(date +%s)
timeout -s KILL "$timeout_s" "${qemu[@]}" </dev/null >"$run/qemu.log" 2>&1 &
qpid=$!
tail -n +1 -f --pid="$qpid" "$run/out.log" &
tpid=$!
set +e
wait "$qpid"
qrc=$?
wait "$tpid" 2>/dev/null
set -e
elapsed=$(($(date +%s) - start))

fail=
# The console carries only kernel messages; the guest's dmesg covers what the console level hid.
# (test/lib/dmesg.ts KERNEL_TROUBLE is the same list.) KASAN, UBSAN, KFENCE, SLUB debug and
# lockdep reports; most start with BUG: or WARNING:, named here so a changed prefix is caught.
pat='BUG|WARNING|Oops|general protection|refcount_t|refcount|list_del corruption|soft lockup|hung task|Kernel panic|UBSAN:|KASAN|KFENCE|possible circular locking|inconsistent lock state|suspicious RCU usage|possible recursive locking|sleeping function called from invalid context'
hits=$(cat "$run/console.log" "$run/dmesg" 2>/dev/null | grep -E "$pat" | sort -u || true)
if [ -n "$hits" ]; then
	printf 'vm: FAIL: the guest kernel logged:\n%s\n' "$hits" >&2
	grep -E -B3 -A25 "$pat" "$run/console.log" | head -n 80 | sed 's/^/vm:   /' >&2 || true
	fail=1
fi
# kmemleak (debug kernel). A leak counts when its report names one of the project's
# modules (xt_traffic, or the xtt_* test fixtures) or has a frame at an address no symbol
# resolves: that is module text unloaded since (the suites rmmod xt_traffic; the kernel's
# own modules stay loaded). Other reports (leaks or false positives in unrelated kernel
# code) are listed as a note, not a failure.
if [ -n "$debug" ] && [ "${XTT_VM_KMEMLEAK:-1}" != 0 ] && [ -s "$run/rc" ]; then
	if [ ! -e "$run/kmemleak" ]; then
		printf 'vm: FAIL: the guest wrote no kmemleak report (%s)\n' \
			"$(cat "$run/kmemleak.err" 2>/dev/null || echo 'no reason given')" >&2
		fail=1
	else
		ours=$(awk -v RS='unreferenced object' 'NR > 1 && (/\[(xt_traffic|xtt_[a-z_]*)\]/ || /\] 0x[0-9a-f]+\n/) { n++ } END { print n + 0 }' "$run/kmemleak")
		all=$(grep -c '^unreferenced object' "$run/kmemleak" || true)
		if [ "$ours" -gt 0 ]; then
			printf 'vm: FAIL: kmemleak: %s unreferenced object(s) allocated by the project'"'"'s module:\n' "$ours" >&2
			awk -v RS='unreferenced object' 'NR > 1 && (/\[(xt_traffic|xtt_[a-z_]*)\]/ || /\] 0x[0-9a-f]+\n/) { print "unreferenced object" $0 }' \
				"$run/kmemleak" | head -n 60 | sed 's/^/vm:   /' >&2
			fail=1
		elif [ "$all" -gt 0 ]; then
			printf 'vm: note: kmemleak: %s unreferenced object(s) in other kernel code (not counted; %s)\n' \
				"$all" "$run/kmemleak" >&2
			XTT_VM_KEEP=1
		fi
	fi
fi
if [ "$qrc" = 137 ]; then
	printf 'vm: FAIL: the guest did not finish within %ss\n' "$timeout_s" >&2
	fail=1
fi
if [ ! -s "$run/rc" ]; then
	if ! grep -q 'xtt-vm: kernel .* ready' "$run/console.log"; then
		printf 'vm: FAIL: the kernel did not boot to the guest init (qemu exit %s); console tail:\n' "$qrc" >&2
	else
		printf 'vm: FAIL: the guest stopped without an exit status; console tail:\n' >&2
	fi
	tail -n 30 "$run/console.log" | sed 's/^/vm:   /' >&2
	sed 's/^/vm: qemu: /' "$run/qemu.log" >&2
	fail=1
	rc=1
else
	rc=$(cat "$run/rc")
fi
printf 'vm: guest exited %s after %ss\n' "$rc" "$elapsed" >&2
if [ -n "$fail" ]; then
	printf 'vm: logs kept in %s\n' "$run" >&2
	[ "$rc" = 0 ] && rc=1
	exit "$rc"
fi
[ -n "${XTT_VM_KEEP:-}" ] || rm -rf "$run"
exit "$rc"
