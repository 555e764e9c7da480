#!/usr/bin/env bash
# Issue 12 defect 4, "iptables-nft: the last rule deleted and re-added with other options can
# fail with a spurious 'exists with other options'": a probe, in the VM, of the pre-fix module
# (29fb222^) beside HEAD's. nft_compat destroys a deleted rule's match after the commit, from a
# work item that first waits for an RCU grace period; the pre-fix module kept the table until
# then, so a re-add with other options that came sooner found it. Under TCG the gap between
# two iptables commands is longer than the grace period (the test passed 20/20 before the fix).
# This widens the grace period as a slower or busier machine has it: RCU's force-quiescent-
# state scan, which notices idle CPUs, waits rcutree.jiffies_till_first_fqs (writable; at most
# HZ, 1 s) instead of a few jiffies. Rounds: add (options alternate), flush, in one shell.
#   scripts/nft-readd-race.sh [ROUNDS]   (on the host: boots the 6.1 VM under vmslot)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/kernels.sh
rounds=${1:-20}

if [ "${XTT_IN_GUEST:-}" != 1 ]; then
	rel=$(kernel_cached_release 6.1)
	pre=$XTT_CACHE/prefix/29fb222-parent/build/$rel/xt_traffic.ko
	[ -e "$pre" ] || { echo "nft-readd-race: no $pre: run scripts/fail-without-fix.sh --before-only --run A first" >&2; exit 4; }
	SLOT=()
	command -v vmslot >/dev/null && SLOT=(vmslot)
	exec "${SLOT[@]}" bash scripts/vm.sh env XTT_IN_GUEST=1 XTT_PRE_KO="$pre" bash scripts/nft-readd-race.sh "$rounds"
fi

export XTABLES_LIBDIR=$ROOT/libxt:/usr/lib/x86_64-linux-gnu/xtables
P=/sys/module/rcutree/parameters
fqs0=$(cat $P/jiffies_till_first_fqs)
next0=$(cat $P/jiffies_till_next_fqs)
ns=nftrace

rounds_of() {
	local label=$1 i fail=0 other=0 t0 t1 out log0
	log0=$(dmesg | grep -c 'table R exists with' || true)
	t0=$(date +%s%N)
	for i in $(seq "$rounds"); do
		local extra=
		[ $((i % 2)) = 1 ] && extra=--ipconn
		if ! out=$(ip netns exec $ns iptables -t raw -A PREROUTING -m traffic --traffic $extra \
			--netbase 10.5.0.0 --netmask 255.255.0.0 --name R 2>&1); then
			# the spurious refusal: EINVAL from checkentry (the kernel log says "table R
			# exists with[out] --ipconn", rate-limited)
			case $out in *"Invalid argument"*) fail=$((fail + 1)) ;; *) other=$((other + 1)) ;; esac
			[ $((fail + other)) -le 2 ] && printf '  round %d: %s\n' "$i" "$(echo "$out" | tail -n1)"
		fi
		ip netns exec $ns iptables -t raw -F PREROUTING
	done
	t1=$(date +%s%N)
	printf 'RESULT %s: %d of %d re-adds refused with EINVAL (%d other failures), %d ms per round; kernel log: %d "exists with" lines\n' \
		"$label" "$fail" "$rounds" "$other" $(((t1 - t0) / 1000000 / rounds)) $(($(dmesg | grep -c 'table R exists with' || true) - log0))
}

probe() {
	local which=$1 ko=$2
	for dep in $(modinfo -F depends "$ko" | tr , ' '); do modprobe "$dep"; done
	insmod "$ko"
	ip netns add $ns
	rounds_of "$which, RCU fqs $fqs0/$next0 jiffies (default)"
	echo 250 >$P/jiffies_till_first_fqs
	echo 250 >$P/jiffies_till_next_fqs
	rounds_of "$which, RCU fqs $(cat $P/jiffies_till_first_fqs)/$(cat $P/jiffies_till_next_fqs) jiffies"
	# back to the boot's values (a write above HZ would be clamped to HZ: never write those)
	if [ "$fqs0" -le 250 ] && [ "$next0" -le 250 ]; then
		echo "$fqs0" >$P/jiffies_till_first_fqs
		echo "$next0" >$P/jiffies_till_next_fqs
	else
		echo "nft-readd-race: boot values $fqs0/$next0 cannot be written back" >&2
	fi
	ip netns del $ns
	for _ in $(seq 240); do rmmod xt_traffic 2>/dev/null && break; sleep 0.5; done
}

echo "HZ jiffies: first_fqs=$fqs0 next_fqs=$next0; $(uname -r)"
probe "pre-fix 29fb222^" "$XTT_PRE_KO"
probe HEAD "$ROOT/.cache/build/$(uname -r)/xt_traffic.ko"

# Defect 6's number, in the same boot when a pre-fix worktree is there (docs/defect-tests.md
# says how it is made): frames the monitor port sends in 30 s after enable.
if [ -e /work/fwf-mirror/dist/cli.js ]; then
	bash scripts/mirror-silence-probe.sh pre-fix /work/fwf-mirror/dist/cli.js || echo "MIRROR pre-fix: probe failed"
	bash scripts/mirror-silence-probe.sh HEAD "$ROOT/dist/cli.js" || echo "MIRROR HEAD: probe failed"
fi
