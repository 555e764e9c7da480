#!/usr/bin/env bash
# Issue 12, defect 3: the per-packet cost of the overflow path (a key's first packet when the
# table is full), on the module before the fix (29fb222^: lock, find, limit check, global
# atomic64) and on HEAD's (limit checked before the lock, per-CPU overflow counter).
#   scripts/overflow-cost.sh [COUNT]     (on the host; opt-in, not in npm test)
# Boots 6.1 once under `vmslot`, deterministic (XTT_VM_ICOUNT=1: -icount shift=0, one vCPU,
# so pktgen's ns/packet is guest instructions/packet, as in bench/run.sh), and for each
# module in turn (insmod max_entries=256): a --traffic rule on 10.50.0.0/16 in raw
# PREROUTING, its table filled with 256 sources (10.50.0.0-10.50.0.255, in order), then
# (for comparison) a warm-up of 5,000 and a measured pass of COUNT (default 50,000) packets
# from random sources of those 256 (the counted path), then a warm-up of 5,000 and a
# measured pass of COUNT packets from random sources of 10.50.1.0-10.50.255.255 (none in
# the table: every packet takes the full-table path), and the same two passes without the
# rule. Prints
#   added instructions/packet = 1e9/pps(rule) - 1e9/pps(no rule)
# for both modules, and checks counts exactly: overflow (NAME_info) = warm-up + measured
# packets, rows = 256, the 256 rows' out bytes = 100 x (256 + 5,000 + COUNT) (the fill and
# the counted passes; the overflow passes add nothing), the rule's packets = 256 + 2 x
# (5,000 + COUNT). Any mismatch fails the run.
# The modules are copied to .cache/overflow-cost/ before the boot (another engineer's
# build of the shared tree cannot change them mid-run). Pre-fix module: built by
# scripts/fail-without-fix.sh --before-only --run A (.cache/prefix/29fb222-parent/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/kernels.sh
COUNT=${1:-50000}
case $COUNT in '' | *[!0-9]*) echo "overflow-cost: COUNT must be a number of packets, not '$COUNT'" >&2; exit 2 ;; esac

if [ "${XTT_IN_GUEST:-}" != 1 ]; then
	rel=$(kernel_cached_release 6.1) || { echo "overflow-cost: no cached 6.1 kernel: run 'npm run setup'" >&2; exit 4; }
	pre=$XTT_CACHE/prefix/29fb222-parent/build/$rel/xt_traffic.ko
	[ -e "$pre" ] || { echo "overflow-cost: no $pre: run scripts/fail-without-fix.sh --before-only --run A first" >&2; exit 4; }
	bash scripts/build.sh --kernel "$rel" --no-node >&2 || { echo "overflow-cost: build failed" >&2; exit 1; }
	head=$XTT_CACHE/build/$rel/xt_traffic.ko
	out=$XTT_CACHE/overflow-cost
	mkdir -p "$out"
	cp "$pre" "$out/pre.ko"
	cp "$head" "$out/head.ko"
	echo "overflow-cost: HEAD $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- kernel || echo ' + uncommitted kernel/ changes'), kernel $rel" >&2
	SLOT=()
	command -v vmslot >/dev/null && SLOT=(vmslot)
	XTT_VM_ICOUNT=1 XTT_NO_BUILD=1 XTT_VM_OUTDIR="$out" XTT_VM_TIMEOUT="${XTT_VM_TIMEOUT:-1200}" \
		exec "${SLOT[@]}" bash scripts/vm.sh env XTT_IN_GUEST=1 XTT_OVF_DIR="$out" \
		bash scripts/overflow-cost.sh "$COUNT"
fi

# ---------- in the guest ----------
[ -n "${XTT_VM_ICOUNT:-}" ] || echo "overflow-cost: WARNING: not under XTT_VM_ICOUNT=1: figures are TCG wall clock"
export XTABLES_LIBDIR=$ROOT/libxt:/usr/lib/x86_64-linux-gnu/xtables
IPT=iptables-legacy
DEV=d0
DST=10.60.0.1
PKT_SIZE=114 # 14 + IP total length 100
IPLEN=100
FILL=256
WARM=5000
FAIL=0
say() { printf 'overflow-cost: %s\n' "$*"; }
die() { say "FAIL: $*"; exit 1; }
check() { # DESCRIPTION EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then say "ok: $1 = $3"; else say "CHECK FAILED: $1: expected $2, got $3"; FAIL=1; fi
}

modprobe x_tables
for dep in $(modinfo -F depends "$XTT_OVF_DIR/head.ko" | tr , ' '); do modprobe "$dep"; done
# pktgen as bench/run.sh drives it (bench/pktgen.sh): netif_receive on the dummy device,
# 100-byte UDP packets
. bench/pktgen.sh
pg_device
pg_init
# pg_run SRC_MIN SRC_MAX COUNT rnd|seq -> SENT USEC PPS NS
pg_run() {
	pgset $P "src_min $1"
	pgset $P "src_max $2"
	pgset $P "count $3"
	if [ "$4" = rnd ]; then pgset $P "flag IPSRC_RND"; else pgset $P "flag !IPSRC_RND"; fi
	echo start >$PG/pgctrl
	pg_result
	[ -n "$PPS" ] || die "pktgen gave no pps"
	NS=$(awk -v u="$USEC" -v s="$SENT" 'BEGIN { printf "%.2f", u * 1000 / s }')
}
raw_chain() { # RULE...: raw PREROUTING = RULE, then DROP
	$IPT -t raw -F
	{
		echo '*raw'
		[ -n "${1:-}" ] && echo "-A PREROUTING $1"
		echo "-A PREROUTING -j DROP"
		echo COMMIT
	} | ${IPT}-restore || die "${IPT}-restore failed"
}
RULE="-m traffic --netbase 10.50.0.0 --netmask 16 --name ovf --traffic"
info() { awk -v k="$1:" '$1 == k { print $2 }' /proc/net/xt_traffic/ovf_info; }
rows() { tail -n +2 /proc/net/xt_traffic/ovf | grep -c .; }
out_bytes() { tail -n +2 /proc/net/xt_traffic/ovf | awk '{ s += $3 } END { printf "%d", s }'; }
rule_pkts() { $IPT -t raw -nvxL PREROUTING | awk 'NR == 3 { print $1 }'; }

# the overflow load: random sources of 10.50.1.0-10.50.255.255 (not in the filled table)
OMIN=10.50.1.0
OMAX=10.50.255.255
declare -A NSR NSN NSI
for m in pre head; do
	ko=$XTT_OVF_DIR/$m.ko
	rmmod xt_traffic 2>/dev/null || true
	insmod "$ko" max_entries=$FILL flow_timeout=3600 || die "insmod $ko max_entries=$FILL"
	say "$m: $ko (srcversion $(modinfo -F srcversion "$ko")), max_entries $(cat /sys/module/xt_traffic/parameters/max_entries)"

	# without the rule: the same warm-up and measured pass
	raw_chain ""
	pg_run $OMIN $OMAX $WARM rnd
	pg_run $OMIN $OMAX "$COUNT" rnd
	NSN[$m]=$NS
	say "$(printf '%-5s no rule            %8s pkts %9s pps %9s ns/pkt' "$m" "$SENT" "$PPS" "$NS")"
	check "$m: no rule: packets sent" "$COUNT" "$SENT"

	# the rule; its table filled, then the overflow passes
	raw_chain "$RULE"
	pg_run 10.50.0.0 10.50.0.255 $FILL seq
	check "$m: rows after the fill" $FILL "$(rows)"
	check "$m: overflow after the fill" 0 "$(info overflow)"
	# for comparison, the counted path: random sources of the 256 in the table
	pg_run 10.50.0.0 10.50.0.255 $WARM rnd
	pg_run 10.50.0.0 10.50.0.255 "$COUNT" rnd
	NSI[$m]=$NS
	say "$(printf '%-5s rule, in the table  %8s pkts %9s pps %9s ns/pkt' "$m" "$SENT" "$PPS" "$NS")"
	check "$m: out bytes of the rows (fill + warm-up + measured)" $(((FILL + WARM + COUNT) * IPLEN)) "$(out_bytes)"
	check "$m: overflow after the counted passes" 0 "$(info overflow)"
	pg_run $OMIN $OMAX $WARM rnd
	pg_run $OMIN $OMAX "$COUNT" rnd
	NSR[$m]=$NS
	say "$(printf '%-5s rule, table full   %8s pkts %9s pps %9s ns/pkt' "$m" "$SENT" "$PPS" "$NS")"
	check "$m: rule: packets sent" "$COUNT" "$SENT"
	check "$m: overflow (NAME_info) = warm-up + measured" $((WARM + COUNT)) "$(info overflow)"
	check "$m: traffic_entries (NAME_info)" $FILL "$(info traffic_entries)"
	check "$m: rows" $FILL "$(rows)"
	check "$m: out bytes of the rows (unchanged by the overflow passes)" $(((FILL + WARM + COUNT) * IPLEN)) "$(out_bytes)"
	check "$m: rule packets (fill + 2 x (warm-up + measured))" $((FILL + 2 * (WARM + COUNT))) "$(rule_pkts)"
	raw_chain ""
	$IPT -t raw -F
done
rmmod xt_traffic 2>/dev/null || true

echo
say "overflow path, $COUNT packets from sources not in a full table (max_entries $FILL), 6.1, -icount shift=0:"
say "$(printf '%-8s %14s %18s %22s %22s' module "no rule ns/pkt" "full, ns/pkt" "added instr./pkt" "(counted path: added)")"
for m in pre head; do
	say "$(printf '%-8s %14s %18s %22s %22s' "$m" "${NSN[$m]}" "${NSR[$m]}" \
		"$(awk -v a="${NSR[$m]}" -v b="${NSN[$m]}" 'BEGIN { printf "%.1f", a - b }')" \
		"($(awk -v a="${NSI[$m]}" -v b="${NSN[$m]}" 'BEGIN { printf "%.1f", a - b }'))")"
done
say "HEAD - pre-fix: $(awk -v a="${NSR[head]}" -v b="${NSN[head]}" -v c="${NSR[pre]}" -v d="${NSN[pre]}" 'BEGIN { printf "%.1f", (a - b) - (c - d) }') instructions/packet"
[ "$FAIL" = 0 ] || die "a count check failed"
say "all count checks passed"
