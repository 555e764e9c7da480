#!/usr/bin/env bash
# bench/run.sh: packet-cost benchmark of xt_traffic and its alternatives. Runs INSIDE the VM
# (as root, repo as working directory); start it from the host with bench/bench.sh, which
# boots the guest with `-icount shift=0,sleep=off -smp 1` and shares bench/results.
#
# Method: pktgen `xmit_mode netif_receive` on a dummy device injects 100-byte (IP length)
# UDP packets with random sources over N hosts of the monitored net 10.50.0.0/16 into the
# receive path; raw PREROUTING always ends in DROP. Under -icount shift=0 guest time advances
# 1 ns per guest instruction, so pktgen's ns/packet is an exact instruction count per packet:
#   added instructions/packet = 1e9/pps(config) - 1e9/pps(no rule, same sources)
# Every configuration first gets a warm-up pass (one packet per host, sequential sources)
# so tables, sets and caches are filled: the measured pass is steady state, no inserts.
# These are instruction counts, not times: they do not see cache misses.
#
# Environment:
#   BENCH_QUICK=1   smoke test: 3 contenders, 256 sources, 10,000 packets; checks the pipeline
#                   (xt_traffic rows and byte sums, rule counters), asserts nothing about speed
#   BENCH_COUNT=N   packets per measured pass (default 100000)
#   BENCH_READ=0    skip the reading benchmark;  BENCH_MEM=0  skip the memory figure
#   BENCH_BIG=1     also read 1,048,576 rows (fills a /12; the node read alone is ~70e9 guest
#                   instructions: adds 10+ minutes under icount on a busy 2-core host)
#   BENCH_PACKETS=0 skip the packet-cost section (reading / memory only)
#   XTT_VM_OUTDIR   where latest.md / latest.json are written (else only printed)
set -uo pipefail
cd "$(dirname "$0")/.."
# bench/bench.sh forwards BENCH_* as XTT_BENCH_* (only XTT_* reach the guest)
for v in BENCH_QUICK BENCH_COUNT BENCH_READ BENCH_MEM BENCH_BIG BENCH_IPT BENCH_PACKETS; do
	x=XTT_$v
	[ -n "${!x:-}" ] && [ -z "${!v:-}" ] && export "$v=${!x}"
done
REPO=$PWD
REL=${XTT_KERNEL_RELEASE:-$(uname -r)}
KO=$REPO/.cache/build/$REL/xt_traffic.ko
export XTABLES_LIBDIR=$REPO/libxt:/usr/lib/x86_64-linux-gnu/xtables
IPT=${BENCH_IPT:-iptables-legacy}
IPTR=${IPT}-restore
QUICK=${BENCH_QUICK:-}
COUNT=${BENCH_COUNT:-100000}
[ -n "$QUICK" ] && COUNT=${BENCH_COUNT:-10000}
DEV=d0
DST=10.60.0.1
PKT_SIZE=114 # Ethernet frame without FCS: 14 + IP total length 100 (20 IP + 8 UDP + 72 data)
IPLEN=100
OUT=${XTT_VM_OUTDIR:-}
TMP=$(mktemp -d)
RES=$TMP/results.tsv # contender sources sent usec pps ns_per_pkt
: >"$RES"
EXTRA=$TMP/extra.tsv # key value unit note
: >"$EXTRA"
FAIL=0

say() { printf 'bench: %s\n' "$*"; }
die() { printf 'bench: FAIL: %s\n' "$*"; exit 1; }
check() { # check DESCRIPTION EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then say "ok: $1 = $3"; else
		say "CHECK FAILED: $1: expected $2, got $3"; FAIL=1; fi
}
now_ns() { date +%s%N; }

[ -n "${XTT_IN_VM:-}" ] || die "run me inside the VM: bash bench/bench.sh (or npm run bench)"
[ -z "${XTT_VM_ICOUNT:-}" ] && say "WARNING: not booted with XTT_VM_ICOUNT=1: figures are TCG wall clock, not instruction counts"
[ -e "$KO" ] || die "$KO not found (build first)"

# ---------- setup ----------
modprobe x_tables
for dep in $(modinfo -F depends "$KO" | tr , ' '); do modprobe "$dep"; done
insmod "$KO" || die "insmod $KO"
modprobe dummy || die "modprobe dummy"
modprobe pktgen || die "modprobe pktgen"
ip link add $DEV type dummy 2>/dev/null
ip link set $DEV up
ip addr add 10.60.0.1/24 dev $DEV
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.$DEV.rp_filter=0
MAC=$(cat /sys/class/net/$DEV/address)

PG=/proc/net/pktgen
pgset() { echo "$2" >"$1" || die "pktgen: '$2' > $1 refused"; }
pgset $PG/kpktgend_0 "rem_device_all"
pgset $PG/kpktgend_0 "add_device $DEV"
P=$PG/$DEV
pgset $P "xmit_mode netif_receive"
pgset $P "pkt_size $PKT_SIZE"
pgset $P "delay 0"
pgset $P "dst $DST"
pgset $P "dst_mac $MAC"
pgset $P "udp_src_min 9"
pgset $P "udp_src_max 9"
pgset $P "udp_dst_min 9"
pgset $P "udp_dst_max 9"

src_max() { # N hosts from 10.50.0.0
	local n=$(($1 - 1))
	echo "10.50.$((n >> 8)).$((n & 255))"
}
# pg_run SOURCES COUNT rnd|seq [SRC_MIN SRC_MAX] -> sets SENT USEC PPS
pg_run() {
	pgset $P "src_min ${4:-10.50.0.0}"
	pgset $P "src_max ${5:-$(src_max "$1")}"
	pgset $P "count $2"
	if [ "$3" = rnd ]; then pgset $P "flag IPSRC_RND"; else pgset $P "flag !IPSRC_RND"; fi
	echo start >$PG/pgctrl
	local r
	r=$(grep -A1 '^Result' $P)
	# Result: OK: 436161(c436161+d0) usec, 100000 (114byte,0frags)
	#   229177pps 187Mb/sec ...
	USEC=$(sed -n 's/^Result: OK: \([0-9]*\)(.*/\1/p' <<<"$r")
	SENT=$(sed -n 's/^Result: OK: [^ ]* usec, \([0-9]*\) .*/\1/p' <<<"$r")
	PPS=$(sed -n 's/^ *\([0-9]*\)pps.*/\1/p' <<<"$r")
	[ -n "$USEC" ] && [ -n "$SENT" ] || die "pktgen result not understood: $r"
}
# measure NAME SOURCES [COUNT]: warm-up (each host once, in order), then COUNT random
measure() {
	local name=$1 n=$2 c=${3:-$COUNT}
	pg_run "$n" "$n" seq
	pg_run "$n" "$c" rnd
	local ns
	ns=$(awk -v u="$USEC" -v s="$SENT" 'BEGIN { printf "%.2f", u * 1000 / s }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$n" "$SENT" "$USEC" "$PPS" "$ns" >>"$RES"
	say "$(printf '%-34s %7s sources %8s pkts %8s pps %9s ns/pkt' "$name" "$n" "$SENT" "$PPS" "$ns")"
}

flush_all() {
	$IPT -t raw -F 2>/dev/null
	$IPT -t raw -X 2>/dev/null
	nft flush ruleset 2>/dev/null
	ipset destroy 2>/dev/null
}
# raw PREROUTING = RULES... then DROP (iptables-legacy)
raw_chain() {
	flush_all
	{
		echo '*raw'
		cat
		echo "-A PREROUTING -j DROP"
		echo COMMIT
	} | $IPTR || die "$IPTR failed"
}
reload_xtt() {
	flush_all
	rmmod xt_traffic 2>/dev/null
	insmod "$KO" || die "insmod $KO"
}
XTT_RULE="-m traffic --netbase 10.50.0.0 --netmask 16 --name bench"
xtt_table() { cat /proc/net/xt_traffic/bench 2>/dev/null; }
# sum of column K (1-based, after the IP) of the traffic table; rows
xtt_rows() { xtt_table | tail -n +2 | grep -c .; }
xtt_sum() { xtt_table | tail -n +2 | awk -v k="$1" '{ s += $(k + 1) } END { printf "%d", s }'; }
rule_pkts() { # packets of the first rule of raw PREROUTING
	$IPT -t raw -nvxL PREROUTING | awk 'NR == 3 { print $1 }'
}
perip_rules() { # N: one -s rule per host, no target (every rule is evaluated)
	local i
	for ((i = 0; i < $1; i++)); do echo "-A PREROUTING -s 10.50.$((i >> 8)).$((i & 255))"; done
}

# xt_ACCOUNT (xtables-addons 3.23, built by bench/build-account.sh), when present
ACC=$REPO/bench/.build/account
ACC_KO=
if [ -e "$ACC/$REL/xt_ACCOUNT.ko" ] && [ -z "$QUICK" ]; then
	ACC_KO=$ACC/$REL/xt_ACCOUNT.ko
	export XTABLES_LIBDIR=$XTABLES_LIBDIR:$ACC/root/usr/lib/x86_64-linux-gnu/xtables
fi
iptaccount() { LD_LIBRARY_PATH=$ACC/root/usr/lib/x86_64-linux-gnu "$ACC/root/usr/sbin/iptaccount" "$@"; }

# ---------- packet cost ----------
# (BENCH_PACKETS=0 skips this section, e.g. for a reading-only run)
if [ "${BENCH_PACKETS:-1}" != 0 ]; then
if [ -n "$QUICK" ]; then
	SRCS=(256)
else
	SRCS=(256 4096 65536)
fi
for n in "${SRCS[@]}"; do
	raw_chain </dev/null
	measure "no rule" "$n"
done

echo "-A PREROUTING -i $DEV" | raw_chain
measure "bare rule -i $DEV" 256
[ -n "$QUICK" ] && check "bare rule packets (warm-up + measured)" $((256 + COUNT)) "$(rule_pkts)"
if [ -z "$QUICK" ]; then
	# floor of any match extension: one rule with a trivial match (indirect call + match loop)
	echo "-A PREROUTING -m mark --mark 0x0/0x0" | raw_chain
	measure "rule with a trivial match (-m mark)" 256
fi

for n in "${SRCS[@]}"; do
	reload_xtt # fresh table per size
	echo "-A PREROUTING $XTT_RULE --traffic" | raw_chain
	if [ "$n" = 65536 ] && [ "${BENCH_MEM:-1}" != 0 ]; then
		s0=$(awk '$1 == "kmalloc-64" { print $2 }' /proc/slabinfo)
		m0=$(awk '$1 == "Slab:" { print $2 }' /proc/meminfo)
	fi
	measure "xt_traffic --traffic" "$n"
	if [ -n "$QUICK" ]; then
		check "xt_traffic rows" "$n" "$(xtt_rows)"
		check "xt_traffic out bytes (packets x $IPLEN)" $(((n + COUNT) * IPLEN)) "$(xtt_sum 2)"
		check "xt_traffic udp out bytes" $(((n + COUNT) * IPLEN)) "$(xtt_sum 6)"
		check "xt_traffic in bytes" 0 "$(xtt_sum 1)"
		check "xt_traffic rule packets" $((n + COUNT)) "$(rule_pkts)"
		json_rows=$(node dist/cli.js read bench --json | node -e '
			let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
				const j = JSON.parse(s); const rows = j.rows ?? j.entries ?? j;
				console.log(Array.isArray(rows) ? rows.length : "?"); })')
		check "xttraffic read --json rows" "$n" "$json_rows"
	fi
	if [ "$n" = 65536 ] && [ "${BENCH_MEM:-1}" != 0 ]; then
		s1=$(awk '$1 == "kmalloc-64" { print $2 }' /proc/slabinfo)
		m1=$(awk '$1 == "Slab:" { print $2 }' /proc/meminfo)
		rows=$(xtt_rows)
		hs=$(awk '$1 == "hashsize:" { print $2 }' /proc/net/xt_traffic/bench_info)
		per=$(awk -v a="$s0" -v b="$s1" -v r="$rows" 'BEGIN { printf "%.1f", (b - a) * 64 / r }')
		perb=$(awk -v h="$hs" -v r="$rows" 'BEGIN { printf "%.1f", h * 8 / r }')
		perslab=$(awk -v a="$m0" -v b="$m1" -v r="$rows" 'BEGIN { printf "%.1f", (b - a) * 1024 / r }')
		say "memory: $rows hosts: kmalloc-64 active objects $s0 -> $s1 = $per B/host; bucket array $hs x 8 B = $perb B/host; Slab total +$((m1 - m0)) KiB = $perslab B/host"
		printf 'mem_hosts\t%s\t\thosts tracked (--traffic)\n' "$rows" >>"$EXTRA"
		printf 'mem_kmalloc64_per_host\t%s\tbytes\tkmalloc-64 active objects delta x 64 / hosts\n' "$per" >>"$EXTRA"
		printf 'mem_buckets_per_host\t%s\tbytes\thashsize %s x 8-byte bucket pointers / hosts (allocated with the rule)\n' "$perb" "$hs" >>"$EXTRA"
		printf 'mem_slab_per_host\t%s\tbytes\t/proc/meminfo Slab delta / hosts (all caches)\n' "$perslab" >>"$EXTRA"
	fi
done

if [ -z "$QUICK" ]; then
	for n in "${SRCS[@]}"; do
		reload_xtt
		echo "-A PREROUTING $XTT_RULE --traffic --ipconn --portconn" | raw_chain
		measure "xt_traffic --traffic --ipconn --portconn" "$n"
	done

	perip_rules 256 | raw_chain
	measure "per-IP chain, 256 rules" 256
	perip_rules 4096 | raw_chain
	measure "per-IP chain, 4096 rules" 4096 $((COUNT / 5))

	for n in 256 65536; do
		flush_all
		{
			echo "create s hash:ip counters maxelem 131072"
			for ((i = 0; i < n; i++)); do echo "add s 10.50.$((i >> 8)).$((i & 255))"; done
		} | ipset restore || die "ipset restore"
		{
			echo '*raw'
			echo "-A PREROUTING -m set --match-set s src"
			echo "-A PREROUTING -j DROP"
			echo COMMIT
		} | $IPTR || die "$IPTR (ipset)"
		measure "ipset hash:ip counters" "$n"
	done

	for n in 256 65536; do
		raw_chain </dev/null
		nft -f - <<-EOF || die "nft"
			table ip bench {
				set s { type ipv4_addr; size 131072; flags dynamic; counter; }
				chain pre { type filter hook prerouting priority raw - 1; policy accept;
					update @s { ip saddr counter }
				}
			}
		EOF
		measure "nft dynamic set (counter)" "$n"
		[ "$n" = 256 ] && say "nft set elements: $(nft list set ip bench s | grep -o 'counter packets' | wc -l)"
	done
	flush_all

	if [ -n "$ACC_KO" ]; then
		for n in 256 65536; do
			flush_all
			rmmod xt_ACCOUNT 2>/dev/null
			insmod "$ACC_KO" || die "insmod $ACC_KO"
			echo "-A PREROUTING -j ACCOUNT --addr 10.50.0.0/16 --tname bench" | raw_chain
			measure "xt_ACCOUNT --addr 10.50.0.0/16" "$n"
		done
		flush_all
		rmmod xt_ACCOUNT
	else
		say "xt_ACCOUNT skipped: run bench/build-account.sh on the host first"
	fi
fi

fi # BENCH_PACKETS

# ---------- reading ----------
# time_cmd KEY DESCRIPTION CMD...: the guest's clock and the process's CPU time (user+sys).
# Under -icount shift=0,sleep=off the guest clock advances 1 ns per instruction while the CPU
# runs but in real time while it idles (9p I/O of a loaded host): CPU time is the steady
# figure, elapsed the noisy one. node runs once untimed first (warms the 9p cache).
time_cmd() {
	local key=$1 desc=$2 t r u sy cpu
	shift 2
	[ "$1" = node ] && [ -z "${NOWARM:-}" ] && "$@" >/dev/null 2>&1
	t=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>"$TMP/err"; } 2>&1) || say "WARNING: $desc failed: $(head -c 300 "$TMP/err")"
	read -r r u sy <<<"$t"
	cpu=$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')
	say "$(printf 'read: %-52s cpu %8s s  elapsed %8s s' "$desc" "$cpu" "$r")"
	printf '%s\t%s\ts cpu\t%s (elapsed %s s)\n' "$key" "$cpu" "$desc" "$r" >>"$EXTRA"
}
if [ -z "$QUICK" ] && [ "${BENCH_READ:-1}" != 0 ]; then
	reload_xtt
	echo "-A PREROUTING $XTT_RULE --traffic" | raw_chain
	pg_run 65536 65536 seq
	say "xt_traffic rows: $(xtt_rows)"
	time_cmd read_node_startup "node -e 0 (startup only, for reference)" node -e 0
	time_cmd read_cli_startup "xttraffic --version (CLI startup, for reference)" node dist/cli.js --version
	time_cmd read_xtt_65536 "xttraffic read --json, 65,536 rows" node dist/cli.js read bench --json
	time_cmd read_xtt_csv_65536 "xttraffic read --csv, 65,536 rows" node dist/cli.js read bench --csv
	time_cmd read_proc_65536 "cat /proc/net/xt_traffic/bench, 65,536 rows" cat /proc/net/xt_traffic/bench

	perip_rules 65536 | raw_chain
	time_cmd read_ipt_65536 "iptables-legacy -t raw -nvxL, 65,536-rule chain" $IPT -t raw -nvxL PREROUTING
	flush_all
	{
		echo "create s hash:ip counters maxelem 131072"
		for ((i = 0; i < 65536; i++)); do echo "add s 10.50.$((i >> 8)).$((i & 255))"; done
	} | ipset restore
	time_cmd read_ipset_65536 "ipset list, 65,536 members" ipset list s
	flush_all

	if [ -n "$ACC_KO" ]; then
		insmod "$ACC_KO"
		echo "-A PREROUTING -j ACCOUNT --addr 10.50.0.0/16 --tname bench" | raw_chain
		pg_run 65536 65536 seq
		say "iptaccount rows: $(iptaccount -l bench | grep -c '^IP: ')"
		time_cmd read_iptaccount_65536 "iptaccount -l bench, 65,536 hosts" iptaccount -l bench
		flush_all
		rmmod xt_ACCOUNT
	fi

	if [ "${BENCH_BIG:-0}" != 0 ]; then
		reload_xtt
		echo "-A PREROUTING -m traffic --netbase 10.48.0.0 --netmask 12 --name bench --traffic" | raw_chain
		pg_run 1048576 1048576 seq 10.48.0.0 10.63.255.255
		say "xt_traffic rows: $(xtt_rows) (overflow: $(awk '$1 == "overflow:" { print $2 }' /proc/net/xt_traffic/bench_info))"
		NOWARM=1
		time_cmd read_proc_1048576 "cat /proc/net/xt_traffic/bench, 1,048,576 rows" cat /proc/net/xt_traffic/bench
		time_cmd read_xtt_1048576 "xttraffic read --json, 1,048,576 rows" node dist/cli.js read bench --json
		NOWARM=
		flush_all
	fi
fi

# ---------- report ----------
{
	printf 'date\t%s\n' "${XTT_BENCH_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
	printf 'kernel\t%s\n' "$(uname -r)"
	mode=full
	[ "${BENCH_PACKETS:-1}" = 0 ] && mode=read
	[ -n "$QUICK" ] && mode=quick
	printf 'mode\t%s\n' "$mode"
	printf 'icount\t%s\n' "$([ -n "${XTT_VM_ICOUNT:-}" ] && echo 1 || echo 0)"
	printf 'iptables\t%s\n' "$($IPT --version)"
	printf 'count\t%s\n' "$COUNT"
} >"$TMP/meta.tsv"
node bench/report.mjs "$TMP" "${OUT:-}" || FAIL=1
rm -rf "$TMP"
[ "$FAIL" = 0 ] || die "some checks failed"
say done
