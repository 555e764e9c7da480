#!/usr/bin/env bash
# bench/bench.sh: host side of `npm run bench`. Three parts, one after the other (never two
# VMs at once on a small host), then one report:
#   1. icount pass: boots the VM deterministically (-icount shift=0,sleep=off -smp 1) and runs
#      bench/run.sh's packet-cost (added guest instructions/packet), reading and memory
#      sections;
#   2. wall pass: boots a plain TCG VM (-smp 1, no icount) and measures the main contenders
#      again in wall-clock time, BENCH_ROUNDS rounds interleaved (median and spread);
#   3. native read on the host (bench/native-read.mjs: addon vs plain node);
#   4. the ledger on the host (bench/ledger.mjs: one collection of 65,536 active hosts, the
#      fold, a month's report, bytes per active host per day).
# The guests write raw TSV files into a work folder (.cache/bench/run.*) shared with them;
# bench/report.mjs prints the tables and writes OUTDIR/latest.md and latest.json
# (OUTDIR = XTT_VM_OUTDIR, default bench/results). A quick run writes quick.* (default
# OUTDIR .cache/bench/quick), a run with a part skipped or failed partial.*: only a complete
# run writes latest.*.
#
#   BENCH_QUICK=1  CI smoke test: one icount VM runs small versions of both passes, native
#                  read of 16,384 rows, ledger of 4,096 hosts; asserts nothing about speed (~2.5 minutes on a busy
#                  2-core host, one of them booting)
#   BENCH_WALL=0, BENCH_NATIVE=0, BENCH_LEDGER=0  skip part 2, 3 or 4; other BENCH_* knobs: see bench/run.sh
#                  (BENCH_IPV6=0, BENCH_IPV4=0: without the IPv6 or the IPv4 by-source packet rows)
#   BENCH_KO=FILE  the module to load (a copy taken after building: the shared tree may be
#                  rebuilt while a long run reloads the module; default .cache/build/REL/...)
#   BENCH_SPLIT=1, then BENCH_SPLIT=2  the full run as two invocations, each one VM hold of
#                  about half the time (`vmslot` each; a full run in one hold takes ~17 minutes
#                  on a busy 2-core host): 1 = the icount VM's IPv4 by-source rows, reads and
#                  memory, the wall-clock VM, native read, ledger; 2 = the icount VM's IPv6 and
#                  IPv4 by-destination rows. The part that finishes last (the two may run at
#                  once, one in each slot) merges both (bench/merge.mjs) and writes
#                  the report (latest.* when both parts are complete); BENCH_SPLIT=report does
#                  only that, without a VM. Raw files in BENCH_SPLIT_DIR (default
#                  .cache/bench/split): each part replaces its own folder there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=${BENCH_QUICK:-}
SPLIT=${BENCH_SPLIT:-}
SPLITDIR=${BENCH_SPLIT_DIR:-$ROOT/.cache/bench/split}
case "$SPLIT" in
'') ;;
1 | 2 | report) [ -z "$QUICK" ] || { echo "bench: BENCH_SPLIT and BENCH_QUICK exclude each other" >&2; exit 2; } ;;
*) echo "bench: BENCH_SPLIT='$SPLIT': 1, 2 or report" >&2; exit 2 ;;
esac
# a quick run never writes into bench/results/
if [ -n "$QUICK" ]; then OUTDIR=${XTT_VM_OUTDIR:-$ROOT/.cache/bench/quick}; else OUTDIR=${XTT_VM_OUTDIR:-$ROOT/bench/results}; fi
# split_report: both parts finished (a mode line each)? merge them and write the run's report
split_report() {
	local p
	for p in 1 2; do
		if ! grep -q '^mode' "$SPLITDIR/part$p/meta.tsv" 2>/dev/null; then
			echo "bench: part $p in $SPLITDIR has not finished: BENCH_SPLIT=report bash bench/bench.sh once it has" >&2
			return 3
		fi
	done
	node bench/merge.mjs "$SPLITDIR/part1" "$SPLITDIR/part2" "$SPLITDIR/merged" && node bench/report.mjs "$SPLITDIR/merged" "$OUTDIR"
}
if [ "$SPLIT" = report ]; then
	split_report
	exit
fi
mkdir -p "$ROOT/.cache/bench"
if [ -n "$SPLIT" ]; then
	# each part replaces only its own folder: the two may run in either order or at once
	# (bench/merge.mjs refuses parts started more than 3 hours apart, and names both commits)
	rm -rf "$SPLITDIR/merged"
	WORK=$SPLITDIR/part$SPLIT
	rm -rf "$WORK" && mkdir -p "$WORK"
	# the run's date is part 1's when part 1 has started (merge.mjs refuses parts 3 hours apart)
	[ "$SPLIT" = 2 ] && [ -s "$SPLITDIR/part1/meta.tsv" ] &&
		XTT_BENCH_DATE=${XTT_BENCH_DATE:-$(awk -F'\t' '$1 == "date" { print $2 }' "$SPLITDIR/part1/meta.tsv")}
	# each part's share, as knobs of bench/run.sh and of the steps below (not "skipped")
	if [ "$SPLIT" = 1 ]; then export XTT_BENCH_IPV6=0; else
		export XTT_BENCH_IPV4=0 XTT_BENCH_READ=0
		BENCH_WALL=0 BENCH_NATIVE=0 BENCH_LEDGER=0 SPLIT_SKIP=1
	fi
else
	WORK=$(mktemp -d "$ROOT/.cache/bench/run.XXXXXX")
fi
chmod 755 "$WORK"
# The guest's clock is virtual under icount: date the results on the host.
export XTT_BENCH_DATE=${XTT_BENCH_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
# XTT_* reach the guest; BENCH_* do not: pass them as XTT_BENCH_*.
for v in BENCH_QUICK BENCH_COUNT BENCH_READ BENCH_MEM BENCH_BIG BENCH_IPT BENCH_PACKETS BENCH_IPV6 BENCH_IPV4 \
	BENCH_STEP_TIMEOUT BENCH_ROUNDS BENCH_WALL_COUNT BENCH_WALL_SOURCES BENCH_KO; do
	[ -n "${!v:-}" ] && export "XTT_$v=${!v}"
done
unset XTT_BENCH_PASS

say() { printf 'bench: %s\n' "$*" >&2; }
# qemu guests running on the host besides ours (called while none of ours runs): wall-clock
# figures taken beside other VMs are noisier (the report says how many there were)
other_vms() { pgrep -c -x qemu-system-x86 || true; } # comm is cut to 15 characters
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }
failed=()
partial=()
T0=$(now)
meta=$WORK/meta.tsv
{
	printf 'date\t%s\n' "$XTT_BENCH_DATE"
	printf 'started\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf 'host\t%s, %s CPUs, load average %s\n' "$(uname -r)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$meta"
for v in BENCH_PACKETS BENCH_IPV6 BENCH_IPV4 BENCH_READ BENCH_BIG BENCH_MEM BENCH_WALL BENCH_NATIVE BENCH_LEDGER; do
	# part 2 of a split run skips part 1's steps by design
	[ -n "${SPLIT_SKIP:-}" ] && case $v in BENCH_WALL | BENCH_NATIVE | BENCH_LEDGER) continue ;; esac
	[ "${!v:-1}" = 0 ] && partial+=("$v=0")
done
# xt_ACCOUNT, a contender, and its iptaccount, the read target's yardstick: built once per tree
# (bench/build-account.sh: Debian's xtables-addons sources, ~1 min), so a full run on a fresh
# clone measures them too instead of skipping them (a build that fails makes the run partial);
# BENCH_ACCOUNT=0: no build (rows only if built before). Not in a quick run, nor in part 2.
if [ -z "$QUICK" ] && [ "$SPLIT" != 2 ] && [ "${BENCH_ACCOUNT:-1}" != 0 ] &&
	{ [ "${XTT_BENCH_IPV4:-1}" != 0 ] || [ "${XTT_BENCH_READ:-1}" != 0 ]; }; then
	# the release the icount VM boots (scripts/vm.sh's default, XTT_KERNEL=6.1)
	accrel=$(. scripts/lib/kernels.sh && kernel_cached_release 6.1 || true)
	if [ -z "$accrel" ]; then
		say "xt_ACCOUNT: no cached 6.1 kernel (npm run setup): its rows will be missing"
		partial+=("xt_ACCOUNT")
	elif [ ! -e "bench/.build/account/$accrel/xt_ACCOUNT.ko" ]; then
		say "building xt_ACCOUNT for $accrel (bench/build-account.sh, once per tree)"
		bash bench/build-account.sh "$accrel" >"$WORK/build-account.log" 2>&1 ||
			{ say "xt_ACCOUNT: build failed ($WORK/build-account.log): its rows will be missing"; partial+=("xt_ACCOUNT"); }
	fi
fi
# HEAD, the folders with uncommitted changes (by name: a part that does not run src/ is not
# touched by changes there), and the module copy loaded instead of the tree's (BENCH_KO)
dirty=
for d in kernel src libxt; do git diff --quiet HEAD -- "$d" 2>/dev/null || dirty+=" $d/"; done
ko=
[ -n "${BENCH_KO:-}" ] && ko="; module $BENCH_KO (srcversion $(modinfo -F srcversion "$BENCH_KO" 2>/dev/null || echo '?'))"
printf 'commit\t%s%s%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "${dirty:+ + uncommitted changes in$dirty}" "$ko" >>"$meta"

# 1. icount pass (quick: both passes in this one VM, to keep CI short)
t=$(now)
pass=icount
[ -n "$QUICK" ] && pass=icount,wall
if [ -n "$QUICK" ]; then vmt=${XTT_VM_TIMEOUT:-300}; else vmt=${XTT_VM_TIMEOUT:-1800}; fi
say "icount VM (passes: $pass)"
if ! XTT_VM_ICOUNT=1 XTT_VM_OUTDIR=$WORK XTT_BENCH_PASS=$pass XTT_VM_TIMEOUT=$vmt \
	bash scripts/vm.sh bash bench/run.sh; then
	failed+=("icount VM")
fi
printf 'seconds_icount_vm\t%s\n' "$(secs "$t")" >>"$meta"

# 2. wall pass
if [ -z "$QUICK" ] && [ "${BENCH_WALL:-1}" != 0 ]; then
	t=$(now)
	say "plain TCG VM, -smp 1 (wall-clock pass)"
	v0=$(other_vms)
	if ! env -u XTT_VM_ICOUNT XTT_VM_SMP=1 XTT_NO_BUILD=1 XTT_VM_OUTDIR="$WORK" XTT_BENCH_PASS=wall \
		XTT_VM_TIMEOUT="${XTT_VM_WALL_TIMEOUT:-900}" bash scripts/vm.sh bash bench/run.sh; then
		failed+=("wall VM")
	fi
	printf 'seconds_wall_vm\t%s\n' "$(secs "$t")" >>"$meta"
	printf 'vms_beside_wall\t%s at its start, %s at its end\n' "$v0" "$(other_vms)" >>"$meta"
fi

# 3. native read on the host (after the VM parts: the first one built dist/ and the addon)
if [ "${BENCH_NATIVE:-1}" != 0 ]; then
	t=$(now)
	rows=()
	[ -n "$QUICK" ] && rows=(--rows "${BENCH_NATIVE_ROWS:-16384}")
	node bench/native-read.mjs "${rows[@]}" --tsv "$WORK/native.tsv" || failed+=("native read")
	printf 'seconds_native\t%s\n' "$(secs "$t")" >>"$meta"
fi

# 4. the ledger on the host (dist/ built by the first VM part)
if [ "${BENCH_LEDGER:-1}" != 0 ]; then
	t=$(now)
	largs=()
	[ -n "$QUICK" ] && largs=(--hosts "${BENCH_LEDGER_HOSTS:-4096}" --growth-hosts "${BENCH_LEDGER_GROWTH_HOSTS:-128}")
	node bench/ledger.mjs "${largs[@]}" --tsv "$WORK/ledger.tsv" || failed+=("ledger")
	printf 'seconds_ledger\t%s\n' "$(secs "$t")" >>"$meta"
fi

printf 'seconds_total\t%s\n' "$(secs "$T0")" >>"$meta"
mode=full
[ -n "$SPLIT" ] && mode=part$SPLIT # bench/merge.mjs makes a full run of the two
if [ ${#partial[@]} -gt 0 ] || [ ${#failed[@]} -gt 0 ]; then mode=partial; fi
if [ -n "$QUICK" ]; then mode=quick; fi
{
	printf 'mode\t%s\n' "$mode"
	printf 'failed\t%s\n' "$(IFS=,; echo "${failed[*]:-}")"
	printf 'skipped\t%s\n' "$(IFS=,; echo "${partial[*]:-}")"
} >>"$meta"
rc=0
if [ -n "$SPLIT" ]; then
	# this part's own report (partial.* in its folder), then the run's if the other part is done
	node bench/report.mjs "$WORK" "$WORK" >/dev/null || rc=1
	say "part $SPLIT of 2 in $WORK ($(secs "$T0") s)"
	split_report || { [ $? = 3 ] || rc=1; }
else
	node bench/report.mjs "$WORK" "$OUTDIR" || rc=1
fi
if [ ${#failed[@]} -gt 0 ]; then
	say "FAIL: ${failed[*]} (raw results kept in $WORK)"
	exit 1
fi
[ "$rc" = 0 ] || { say "FAIL: the report found problems (raw results kept in $WORK)"; exit 1; }
[ -z "$SPLIT" ] && rm -rf "$WORK"
say "done in $(secs "$T0") s"
