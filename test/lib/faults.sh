#!/usr/bin/env bash
# test/vm/faults.test.ts's loop, run inside a network namespace (ip netns exec NS bash ...):
#   faults.sh IPTABLES NAME SHIM MAXN DEST -- MATCH-ARGS...
# For N = 1, 2, ...: inserts `IPTABLES -t raw -A OUTPUT -m traffic MATCH-ARGS --name NAME`
# with the N-th fault-injection site of the rule-making call failed (SHIM = failnth.so, see
# test/lib/failnth.c), then records what is left: the shim's line (res, errno, left), the
# exit status, whether the rule is there, which of the table's files exist and the module's
# reference count. An inserted rule must count: one UDP packet to DEST (bash's /dev/udp)
# makes traffic_entries 1; then the rule is deleted and the files and the reference count
# must go. Stops after the first N whose call passed fewer than N sites (left > 0), or MAXN.
# One line per attempt on stdout:
#   n=N rc=RC call=... res=R errno=E left=L rule=0|1 ref=R files=[...] entries=E after=[...] ref_after=R
set -u
ipt=$1 name=$2 shim=$3 maxn=$4 dest=$5
shift 6
out=$(mktemp)
err=$(mktemp)

# Every helper sets a variable instead of printing (no command substitution): each fork and
# exec costs ~0.5 s on the debug kernel under TCG, and the first version forked ~28 times per
# attempt (14 s each).
files() {
	local f
	FILES=
	for f in "xt_traffic/$name" "xt_traffic/${name}_ipconn" "xt_traffic/${name}_portconn" \
		"xt_traffic/${name}_info" "xt_traffic_counters/$name" "xt_traffic_packets/$name"; do
		[ -e "/proc/net/$f" ] && FILES+="$f "
	done
	FILES=${FILES% }
}
refcnt() { read -r REF </sys/module/xt_traffic/refcnt; }
rules() {
	local s
	s=$("$ipt" -t raw -S OUTPUT 2>/dev/null)
	case $s in *"-m traffic"*) RULE=1 ;; *) RULE=0 ;; esac
}
# iptables-nft destroys a deleted or aborted rule's match asynchronously (nft_compat): wait
# up to 5 s for no file of the table and no module reference.
settle() {
	local i
	for ((i = 0; i < 50; i++)); do
		files
		refcnt
		[ -z "$FILES" ] && [ "$REF" = 0 ] && return
		sleep 0.1
	done
}

for ((n = 1; n <= maxn; n++)); do
	: >"$out"
	FI_NTH=$n FI_OUT=$out LD_PRELOAD=$shim "$ipt" -t raw -A OUTPUT -m traffic "$@" --name "$name" 2>"$err"
	rc=$?
	shimline=
	read -r shimline <"$out"
	[ -n "$shimline" ] || shimline="call=none res=- errno=- left=-"
	rules
	[ "$RULE" = 0 ] && settle
	files
	refcnt
	f=$FILES ref=$REF entries=- after=- ref_after=-
	if [ "$RULE" != 0 ]; then
		echo -n x >"/dev/udp/$dest/9" 2>/dev/null
		while read -r k v; do
			[ "$k" = traffic_entries: ] && entries=$v
		done <"/proc/net/xt_traffic/${name}_info"
		"$ipt" -t raw -D OUTPUT -m traffic "$@" --name "$name"
		settle
		after=$FILES ref_after=$REF
	fi
	msg=
	read -r msg <"$err"
	echo "n=$n rc=$rc $shimline rule=$RULE ref=$ref files=[$f] entries=$entries after=[$after] ref_after=$ref_after msg=${msg:0:200}"
	case $shimline in *" left=0") ;; *) break ;; esac
done
rm -f "$out" "$err"
