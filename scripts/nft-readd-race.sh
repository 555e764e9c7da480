#!/usr/bin/env bash
# Issue 12 defect 4, "iptables-nft: the last rule deleted and re-added with other options can
# fail with a spurious 'exists with other options'": a probe, in the VM, of the pre-fix module
# (29fb222^) beside HEAD's. nft_compat destroys a deleted rule's match after the commit, from a
# work item that first waits for an RCU grace period; the pre-fix module kept the table until
# then, so an add with other options checked sooner would be refused (EINVAL). Found on
# 1 Dec 2026: no add through nf_tables is ever checked sooner. nft_compat's match init calls
# nft_compat_wait_for_destructors() = nf_tables_trans_destroy_flush_work() before
# xt_check_match() (the trace mode shows it), and every nfnetlink socket's release
# (nft_rcv_nl_event) flushes the same work: no variant below refused a re-add on 29fb222^.
#
# Each round switches the one rule of table R between "--traffic" and "--traffic --ipconn"
# (the other of what R_info shows) in one of these ways, and counts the refusals:
#   procs     iptables-nft -D, then iptables-nft -A: two processes (the first one's exit
#             releases its nfnetlink socket, which flushes the destroy work)
#   nft2      iptables-nft-restore --noflush, '-D' and '-A' in two COMMITs: one process,
#             one netlink batch per COMMIT, back to back
#   nft2s     the same with the delete naming the rule (the extension loaded before the first
#             COMMIT), the input from a file
#   nft2rt    nft2s at SCHED_FIFO on CPU 0 (meant to keep the kworker of the destroy off the
#             CPU until the process sleeps; the trace shows it ran 3 ms after the commit anyway)
#   trace     one nft2rt switch under the function tracer (nf_tables_commit, nft_match_init,
#             nf_tables_trans_destroy_flush_work, the destroy work, traffic_mt_check/_destroy)
#   mix       iptables-nft -D, then iptables-legacy -A in one shell (legacy's checkentry does
#             not flush nft_compat's pending destroys as nft_compat's own does)
#   mixrt     mix at SCHED_FIFO on CPU 0, RT throttling off for it (iptables-nft's exit
#             flushes the work before iptables-legacy starts: 0 of 10 on 29fb222^)
#   nft1      the same as nft2 in one COMMIT (one batch: the old rule lives until its commit)
#   nftfull   iptables-nft-restore (flushing) with the rule of the other options (one batch)
#   leg2, leg1, legfull   the same three with iptables-legacy-restore (its own netns)
#   scripts/nft-readd-race.sh [ROUNDS]   (on the host: boots the 6.1 VM under vmslot)
# ROUNDS is for procs, nft2*, mix* and leg2 (default 20); the one-transaction cases take 3 each
# (2 s each on HEAD, which waits that long for the old table before it refuses).
# XTT_RACE_MODES="nft2 nft1" picks the cases. In the guest, XTT_RACE_ONLY=pre|head picks
# the module.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/kernels.sh
rounds=${1:-20}
modes=${XTT_RACE_MODES:-procs nft2 nft2s nft2rt trace mix mixrt nft1 nftfull leg2 leg1 legfull}

if [ "${XTT_IN_GUEST:-}" != 1 ]; then
	rel=$(kernel_cached_release 6.1)
	pre=$XTT_CACHE/prefix/29fb222-parent/build/$rel/xt_traffic.ko
	[ -e "$pre" ] || { echo "nft-readd-race: no $pre: run scripts/fail-without-fix.sh --before-only --run A first" >&2; exit 4; }
	SLOT=()
	command -v vmslot >/dev/null && SLOT=(vmslot)
	exec "${SLOT[@]}" bash scripts/vm.sh env XTT_IN_GUEST=1 XTT_PRE_KO="$pre" XTT_RACE_MODES="$modes" \
		bash scripts/nft-readd-race.sh "$rounds"
fi

export XTABLES_LIBDIR=$ROOT/libxt:/usr/lib/x86_64-linux-gnu/xtables
ns=nftrace

rule() { echo "-m traffic --traffic $1 --netbase 10.5.0.0 --netmask 255.255.0.0 --name R"; }
# the options of R now: "--ipconn" or "" ("none" when there is no table)
current() {
	local info
	info=$(ip netns exec $ns cat /proc/net/xt_traffic/R_info 2>/dev/null) || { echo none; return; }
	case $info in *"options: traffic ipconn"*) echo --ipconn ;; *) echo ;; esac
}

# one switch to the other options in the given way; its status
switch() {
	local mode=$1 new=$2 cur=$3 r f
	r=$(rule "$new")
	case $mode in
	procs)
		ip netns exec $ns iptables-nft -t raw -D PREROUTING 1 &&
			ip netns exec $ns iptables-nft -t raw -A PREROUTING $r ;;
	nft2) printf '*raw\n-D PREROUTING 1\nCOMMIT\n*raw\n-A PREROUTING %s\nCOMMIT\n' "$r" |
		ip netns exec $ns iptables-nft-restore --noflush ;;
	nft2s | nft2rt)
		# the delete names the rule (its -m traffic loads the extension before the first
		# COMMIT: nothing between the batches but the add's parse), the input from a file
		printf '*raw\n-D PREROUTING %s\nCOMMIT\n*raw\n-A PREROUTING %s\nCOMMIT\n' "$(rule "$cur")" "$r" >/tmp/nftrace.rules
		if [ "$mode" = nft2s ]; then
			ip netns exec $ns iptables-nft-restore --noflush /tmp/nftrace.rules
		else
			# SCHED_FIFO on CPU 0: nft_compat's destroy work (a SCHED_NORMAL kworker of
			# that CPU, where the commit queued it) cannot run until the process sleeps
			ip netns exec $ns taskset -c 0 chrt -f 50 iptables-nft-restore --noflush /tmp/nftrace.rules
		fi ;;
	mix | mixrt)
		# the delete through nf_tables (its destroy deferred), the add through
		# iptables-legacy, whose checkentry does not flush nft_compat's destroy work (mixrt:
		# both at SCHED_FIFO on CPU 0 without RT throttling: the work cannot run before the
		# add unless something sleeps); then the rule goes back to nf_tables
		local pre=() rt
		rt=$(cat /proc/sys/kernel/sched_rt_runtime_us)
		if [ "$mode" = mixrt ]; then
			pre=(taskset -c 0 chrt -f 50)
			echo -1 >/proc/sys/kernel/sched_rt_runtime_us
		fi
		ip netns exec $ns "${pre[@]}" sh -c "iptables-nft -t raw -D PREROUTING $(rule "$cur") && iptables-legacy -t raw -A PREROUTING $r" && f=0 || f=$?
		echo "$rt" >/proc/sys/kernel/sched_rt_runtime_us
		[ "$f" = 0 ] || return "$f"
		ip netns exec $ns iptables-legacy -t raw -F PREROUTING
		ip netns exec $ns iptables-nft -t raw -A PREROUTING $r ;;
	trace)
		# one nft2rt switch under the function tracer: who destroys the old match, and when
		local T=/sys/kernel/tracing
		[ -e $T/trace ] || mount -t tracefs nodev $T
		echo nop >$T/current_tracer
		: >$T/set_ftrace_filter
		for f in nf_tables_commit nft_match_init nf_tables_trans_destroy_flush_work \
			nf_tables_trans_destroy_work synchronize_rcu xt_check_match traffic_mt_check \
			traffic_mt_destroy; do
			echo "$f" >>$T/set_ftrace_filter 2>/dev/null || echo "trace: no function $f" >>/tmp/nftrace.trace
		done
		: >$T/trace
		echo function >$T/current_tracer
		echo 1 >$T/tracing_on
		switch nft2rt "$new" "$cur" && f=0 || f=$?
		echo 0 >$T/tracing_on
		grep -v '^#' $T/trace >>/tmp/nftrace.trace
		echo nop >$T/current_tracer
		: >$T/set_ftrace_filter
		return "$f" ;;
	nft1) printf '*raw\n-D PREROUTING 1\n-A PREROUTING %s\nCOMMIT\n' "$r" |
		ip netns exec $ns iptables-nft-restore --noflush ;;
	nftfull) printf '*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING %s\nCOMMIT\n' "$r" |
		ip netns exec $ns iptables-nft-restore ;;
	leg2) printf '*raw\n-D PREROUTING 1\nCOMMIT\n*raw\n-A PREROUTING %s\nCOMMIT\n' "$r" |
		ip netns exec $ns iptables-legacy-restore --noflush ;;
	leg1) printf '*raw\n-D PREROUTING 1\n-A PREROUTING %s\nCOMMIT\n' "$r" |
		ip netns exec $ns iptables-legacy-restore --noflush ;;
	legfull) printf '*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING %s\nCOMMIT\n' "$r" |
		ip netns exec $ns iptables-legacy-restore ;;
	esac
}

rounds_of() {
	local label=$1 mode=$2 n=$3 i fail=0 wrong=0 t0 t1 out log0 cur new ipt=iptables-nft
	case $mode in leg*) ipt=iptables-legacy ;; esac
	ip netns add $ns
	ip netns exec $ns $ipt -t raw -A PREROUTING $(rule "")
	log0=$(dmesg | grep -c 'table R exists with' || true)
	t0=$(date +%s%N)
	for i in $(seq "$n"); do
		cur=$(current)
		if [ "$cur" = --ipconn ]; then new=; else new=--ipconn; fi
		if ! out=$(switch "$mode" "$new" "$cur" 2>&1); then
			fail=$((fail + 1))
			[ "$fail" -le 2 ] && printf '  %s round %d: %s\n' "$mode" "$i" "$(echo "$out" | tr '\n' ' ')"
			# a two-batch switch that failed has deleted the rule: put the old one back
			if ! ip netns exec $ns $ipt -t raw -S PREROUTING | grep -q '^-A PREROUTING'; then
				ip netns exec $ns $ipt -t raw -A PREROUTING $(rule "$cur")
			fi
		elif [ "$(current)" != "$new" ]; then
			wrong=$((wrong + 1))
		fi
	done
	t1=$(date +%s%N)
	printf 'RESULT %s %s: %d of %d switches refused (%d accepted with the wrong options), %d ms per round; kernel log: %d "exists with" lines\n' \
		"$label" "$mode" "$fail" "$n" "$wrong" $(((t1 - t0) / 1000000 / n)) \
		$(($(dmesg | grep -c 'table R exists with' || true) - log0))
	ip netns del $ns
}

probe() {
	local which=$1 ko=$2 mode n
	for dep in $(modinfo -F depends "$ko" | tr , ' '); do modprobe "$dep"; done
	insmod "$ko"
	for mode in $modes; do
		case $mode in procs | nft2* | leg2 | mix*) n=$rounds ;; trace) n=1 ;; *) n=3 ;; esac
		rm -f /tmp/nftrace.trace
		rounds_of "$which" "$mode" "$n"
		[ "$mode" != trace ] || sed "s/^/TRACE $which: /" /tmp/nftrace.trace
	done
	for _ in $(seq 240); do rmmod xt_traffic 2>/dev/null && break; sleep 0.5; done
}

echo "$(uname -r), $(nproc) CPU(s), $(iptables-nft --version)"
[ "${XTT_RACE_ONLY:-pre}" = head ] || probe "pre-fix 29fb222^" "$XTT_PRE_KO"
[ "${XTT_RACE_ONLY:-head}" = pre ] || probe HEAD "$ROOT/.cache/build/$(uname -r)/xt_traffic.ko"

# Defect 6's number, in the same boot when a pre-fix worktree is there (docs/defect-tests.md
# says how it is made): frames the monitor port sends in 30 s after enable.
if [ -e /work/fwf-mirror/dist/cli.js ]; then
	bash scripts/mirror-silence-probe.sh pre-fix /work/fwf-mirror/dist/cli.js || echo "MIRROR pre-fix: probe failed"
	bash scripts/mirror-silence-probe.sh HEAD "$ROOT/dist/cli.js" || echo "MIRROR HEAD: probe failed"
fi
