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

files() {
	local f s=
	for f in "xt_traffic/$name" "xt_traffic/${name}_ipconn" "xt_traffic/${name}_portconn" \
		"xt_traffic/${name}_info" "xt_traffic_counters/$name" "xt_traffic_packets/$name"; do
		[ -e "/proc/net/$f" ] && s+="$f "
	done
	printf '%s' "${s% }"
}
refcnt() { local r; read -r r </sys/module/xt_traffic/refcnt; printf '%s' "$r"; }
rules() { "$ipt" -t raw -S OUTPUT | grep -c -- '-m traffic'; }
# iptables-nft destroys a deleted or aborted rule's match asynchronously (nft_compat): wait
# up to 5 s for no file of the table and no module reference.
settle() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ -z "$(files)" ] && [ "$(refcnt)" = 0 ] && return
		sleep 0.1
	done
}

for ((n = 1; n <= maxn; n++)); do
	: >"$out"
	FI_NTH=$n FI_OUT=$out LD_PRELOAD=$shim "$ipt" -t raw -A OUTPUT -m traffic "$@" --name "$name" 2>"$err"
	rc=$?
	shimline=$(head -n1 "$out")
	[ -n "$shimline" ] || shimline="call=none res=- errno=- left=-"
	rule=$(rules)
	[ "$rule" = 0 ] && settle
	f=$(files) ref=$(refcnt) entries=- after=- ref_after=-
	if [ "$rule" != 0 ]; then
		echo -n x >"/dev/udp/$dest/9" 2>/dev/null
		entries=$(sed -n 's/^traffic_entries: //p' "/proc/net/xt_traffic/${name}_info")
		"$ipt" -t raw -D OUTPUT -m traffic "$@" --name "$name"
		settle
		after=$(files) ref_after=$(refcnt)
	fi
	msg=$(head -c 200 "$err" | tr '\n' ' ')
	echo "n=$n rc=$rc $shimline rule=$rule ref=$ref files=[$f] entries=$entries after=[$after] ref_after=$ref_after msg=$msg"
	case $shimline in *" left=0") ;; *) break ;; esac
done
rm -f "$out" "$err"
