#!/usr/bin/env bash
# Issue 12: every defect has a test that fails on the module before its fix.
#   scripts/fail-without-fix.sh [--before-only|--head-only|--table] [--run ID]... [--mirror]
# Builds the pre-fix module from git history (git archive of kernel/ at the revision before
# the fix, into .cache/prefix/REV/, never over .cache/build/), runs each defect's tests in the
# VM against it with XTT_MODULE_KO naming that .ko (test/lib/module.ts), expecting FAILURE,
# runs the same tests against HEAD's module (expecting success), and prints a table:
# defect, test, result before the fix, result on HEAD. Opt-in (not in npm test).
#
# One VM boot (under `vmslot` when it exists) runs each group's tests as a step of its own
# (measured: ~5 min per step of group A under TCG). Reports are kept in .cache/fail-without-fix/GROUP-{before,head}.json;
# --table prints the table from the kept reports without running anything; --run ID runs
# only that group (repeatable). Kernel: XTT_KERNEL (default 6.1), as scripts/vm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/lib/kernels.sh

want_before=1
want_head=1
runs=()
while [ $# -gt 0 ]; do
	case $1 in
	--before-only) want_head= ; shift ;;
	--head-only) want_before= ; shift ;;
	--table) want_before= want_head= ; shift ;;
	--run) runs+=("$2"); shift 2 ;;
	--mirror) runs+=(M); shift ;;
	*) echo "fail-without-fix: unknown argument $1" >&2; exit 2 ;;
	esac
done

OUT=$XTT_CACHE/fail-without-fix
mkdir -p "$OUT"

# Groups: ID|REVISION BEFORE THE FIX|FILES (test/vm/)[|SOURCE FILES]
# Without SOURCE FILES the group's defects are in the module: "before" loads the module of
# REVISION. With them (defect 6 is in src/system/mirror.ts, not in the module), "before" runs
# the tests in a scratch worktree of HEAD whose SOURCE FILES are those of REVISION (own
# build, node_modules linked, HEAD's module), removed afterwards: group M, opt-in (--mirror or
# --run M: ~30 s of watching the port and the enable, ~4 min a side under TCG).
GROUPS_=(
	"A|29fb222^|gso.test.ts memory.test.ts clear.test.ts edges.test.ts packets.test.ts checkentry.test.ts defects.test.ts"
	"D|963ede7^|counters.test.ts"
	"M|5e9bdbc^|mirror.test.ts|src/system/mirror.ts src/commands/mirror.ts"
	"F|963ede7^|faults.test.ts"
	"R|scratch:no-resched|resched.test.ts"
)
# R (long loops reschedule): no revision has the walks as they are now without their
# cond_resched(), so "before" is a scratch module: HEAD's kernel/ (git archive) in
# .cache/fi-scratch/no-resched/ with cond_resched() defined away in xt_traffic.c (after its
# includes: every call of the module, the map clear and free walks among them). Not a commit.
# F (helper FI's fault injection) needs the debug kernel with CONFIG_FAULT_INJECTION: opt-in,
# XTT_KERNEL=debug scripts/fail-without-fix.sh --run F (on stock kernels the file skips itself).
# Its cases: XTT_FI_CASES (default fa; all), or per step XTT_FI_CASES_BEFORE / XTT_FI_CASES_HEAD.
# On 963ede7^ fc and fd skip themselves (no packets / reclaim_idle parameter), fe and fg too (no
# IPv6 match: the module had no ip6t_traffic alias).
# Rows: DEFECT|GROUP|FILE|TEST NAME (a regex of vitest's full name: describe and it titles
# joined by spaces; the alternation of a group's regexes is its -t)|NOTE
# GROUP "host" is a host test (no VM); "-" is a defect without a test (NOTE says why).
ROWS=(
	"1 forged GSO inflates counts|A|gso.test.ts|forged virtio_net_hdr GSO packets|"
	"2 a snapshot of the table per open()|A|memory.test.ts|open files cost a few KB each|"
	"2 a non-clearing read drops rows that existed before open()|A|memory.test.ts|non-clearing read of a hashed table keeps every row|"
	"2 entries in own SLAB_ACCOUNT caches (112/144 B)|A|memory.test.ts|entries come from their own accounted caches|"
	"2 memcg: bucket array charged to the rule's creator|A|defects.test.ts|hashsize 1048576: 8 MiB of buckets|a HEAD FAIL in the kept report is the test's first form (fixed in 7096d1c/82ed023; re-run on HEAD: passed)"
	"2 memcg: entries charged to the rule's creator|A|defects.test.ts|entries added by packets|"
	"2 module parameters validated|A|edges.test.ts|module parameters are validated|"
	"3 SipHash-keyed buckets|A|defects.test.ts|keys chosen to collide under the unkeyed hash|"
	"3 overflow counted exactly at max_entries (per-CPU, before the lock)|A|defects.test.ts|max_entries reached|per-CPU counter and the check before the lock are not visible in counts: expected to pass before too"
	"4 a --clearonread read clears without CAP_NET_ADMIN|D|counters.test.ts|needs CAP_NET_ADMIN of the opener.*a reader without CAP_NET_ADMIN|"
	"4 a clearing read can seek back and lose rows|A|clear.test.ts|cannot seek back|"
	"4 iptables-nft re-add: spurious 'exists with other options'|A|edges.test.ts|iptables-nft(-restore)?: the last rule deleted and re-added|not failing before, and cannot on 6.1-7.3: nft_compat flushes pending destroys before checkentry (nft_compat_wait_for_destructors) and on every nfnetlink socket release; 0 of 121 re-adds refused on 29fb222^ in 7 ways incl. one process with two COMMITs (scripts/nft-readd-race.sh, 1 Dec)"
	"4 user strings unescaped in the log: table name|A|checkentry.test.ts|checkentry refuses a crafted struct .name with a newline|"
	"4 user strings unescaped in the log: written command|A|defects.test.ts|user strings reach the kernel log escaped|"
	"4 -Werror in the DKMS Kbuild|host|test/unit/kbuild.test.ts|no -Werror for DKMS|"
	"4 failed proc creation removes files never created|F|faults.test.ts|fault injection: every allocation of a rule insert failed in turn|debug kernel with CONFIG_FAULT_INJECTION only (XTT_KERNEL=debug, --run F; XTT_FI_CASES picks the cases, default fa); before: remove_proc_entry()'s WARN for names never created: fa (34 attempts), fb (48: fb, fb_ipconn, fb_portconn, fb_info), ff (35, iptables-nft); fc fd fe fg skip there (no packets/reclaim_idle parameter, no IPv6 match); HEAD: all 7 cases pass (38-54 attempts each), no module WARN/BUG/leak"
	"4 bare seqcount_t reader on PREEMPT_RT|-|||not in this script: scripts/rt-seqcount.sh (6.1.0-57-rt-amd64, 1 vCPU, -icount) livelocks 29fb222^ and passes HEAD (1 Dec)"
	"4 per-packet fields share a cache line with the entry count and the stripe locks|host|test/unit/layout.test.ts|cache lines of the per-packet fields|the layout read from the .ko's DWARF (pahole); the table's only pre-fix neighbour is list (written when a table is added or removed)"
	"4 long loops never reschedule|R|resched.test.ts|long loops reschedule|before: a scratch module (HEAD's kernel/ with cond_resched() defined away, .cache/fi-scratch/no-resched; no revision has these loops without it), not a commit: the delete 2,270 ms late; HEAD's worst 16 ms (bound 200 ms)"
	"5 no per-IP packet counters|A|packets.test.ts|packet counters [a-z]|the feature is absent before: the test fails at setup (no packets parameter), not on a count"
	"5 flow-cache evictions not counted in NAME_info|A|packets.test.ts|flow cache evictions|"
	"6 the monitor port talks: enable silences IPv6 and guards egress|M|mirror.test.ts|SPAN port \\(iptables\\) enable: every step once|the pre-fix enable's steps and state (no sysctls, guards, ip6tables chain)"
	"6 the monitor port talks: 30 s of mirrored traffic, 0 frames out|M|mirror.test.ts|SPAN port \\(iptables\\) silence:|before: the first failing assertion is the monitor stack's Icmp6InMsgs (55 ICMPv6 messages received), before the frame count; scripts/mirror-silence-probe.sh counted 33 frames before, 0 on HEAD"
)

SLOT=()
command -v vmslot >/dev/null && SLOT=(vmslot)
revdir() { printf '%s' "${1//^/-parent}"; }

series=${XTT_KERNEL:-6.1}
if [ -e "$(kernel_dir "$series")/.ready" ]; then rel=$series; else rel=$(kernel_cached_release "$series"); fi

# The pre-fix module of REV for this kernel: .cache/prefix/REV/build/RELEASE/xt_traffic.ko
build_prefix() {
	local rev=$1 d src id
	d=$XTT_CACHE/prefix/$(revdir "$rev")
	id=$(git rev-parse "$rev" 2>/dev/null || true)
	case $rev in scratch:*)
		d=$XTT_CACHE/fi-scratch/${rev#scratch:}
		id="$rev $(git rev-parse HEAD:kernel)"
		;;
	esac
	src=$d/src
	if [ ! -e "$src/.rev" ] || [ "$(cat "$src/.rev")" != "$id" ]; then
		rm -rf "$src"
		mkdir -p "$src"
		case $rev in
		scratch:no-resched)
			git archive HEAD kernel | tar -x -C "$src"
			# after the last #include: the module's cond_resched() calls do nothing
			sed -i "$(grep -n '^#include' "$src/kernel/xt_traffic.c" | tail -n1 | cut -d: -f1)a\\
/* fail-without-fix.sh scratch: no rescheduling point in the module's loops */\\
#undef cond_resched\\
#define cond_resched() do { } while (0)" "$src/kernel/xt_traffic.c"
			;;
		*) git archive "$rev" kernel | tar -x -C "$src" ;;
		esac
		printf '%s\n' "$id" >"$src/.rev"
	fi
	nice -n 10 make -s -C "$src/kernel" BUILD_DIR="$d/build/$rel" KDIR="$(kernel_headers "$rel")" module >&2
	printf '%s\n' "$d/build/$rel/xt_traffic.ko"
}

# A scratch worktree of HEAD with FILES as of REV, built (scripts/build.sh: libxt, dist):
# prints its path. Removed by remove_worktrees at exit (all of .cache/prefix/*-worktree).
build_src_prefix() {
	local rev=$1 files=$2 wt f
	wt=$XTT_CACHE/prefix/$(revdir "$rev")-worktree
	git worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
	git worktree prune
	git worktree add -q --detach "$wt" HEAD >&2
	for f in $files; do git show "$rev:$f" >"$wt/$f"; done
	ln -s "$ROOT/node_modules" "$wt/node_modules"
	(cd "$wt" && nice -n 10 bash scripts/build.sh >&2)
	printf '%s\n' "$wt"
}
remove_worktrees() {
	local wt
	for wt in "$XTT_CACHE"/prefix/*-worktree; do
		[ -d "$wt" ] || continue
		git worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
	done
	git worktree prune
}
trap remove_worktrees EXIT

# One VM boot runs every selected step (a step: one group against one module, as its own
# vitest run; between steps the module is unloaded, so the next loadModule() loads the
# step's .ko): the VM slots are shared, and one boot waits for a slot once, not per group.
# $@: the steps, GROUP:before|head
run_vm() {
	local step id which rev files pat ko rep args f
	local guest=$OUT/guest-$$.sh
	{
		printf '#!/bin/bash\n# written by scripts/fail-without-fix.sh: runs in the guest\ncd %q\n' "$ROOT"
		cat <<-'EOS'
		unload() {
			local i
			for i in $(seq 240); do
				[ -e /sys/module/xt_traffic ] || return 0
				rmmod xt_traffic 2>/dev/null || sleep 0.5
			done
			echo "xt_traffic still in use: $(cat /sys/module/xt_traffic/refcnt)" >&2
			return 1
		}
		step() {
			local id=$1 which=$2 ko=$3 pat=$4 out=$5 dir=$6
			shift 6
			unload || { echo 99 >"$out/$id-$which.rc"; return; }
			echo "fail-without-fix: step $id $which ${ko:-HEAD} in $dir"
			# group F: XTT_FI_CASES_BEFORE / XTT_FI_CASES_HEAD pick the step's cases (else XTT_FI_CASES)
			local v=XTT_FI_CASES_${which^^}
			(cd "$dir" && if [ -n "${!v:-}" ]; then export XTT_FI_CASES=${!v}; fi
				XTT_MODULE_KO=$ko node node_modules/.bin/vitest run --config vitest.vm.config.ts \
				--reporter=default --reporter=json --outputFile.json="$out/$id-$which.json" \
				"$@" -t "$pat" >"$out/$id-$which.log" 2>&1)
			echo $? >"$out/$id-$which.rc"
			grep -E '^ *(Test Files|Tests) ' "$out/$id-$which.log"
		}
		EOS
	} >"$guest"
	for step in "$@"; do
		id=${step%%:*}
		which=${step#*:}
		IFS='|' read -r _ rev files srcfiles <<<"$(printf '%s\n' "${GROUPS_[@]}" | grep "^$id|")"
		pat=$(for r in "${ROWS[@]}"; do IFS='|' read -r _ g _ t _ <<<"$r"; if [ "$g" = "$id" ]; then printf '%s\n' "$t"; fi; done | paste -sd'|')
		rm -f "$OUT/$id-$which.json" "$OUT/$id-$which.rc" "$OUT/$id-$which.log"
		ko=
		dir=$ROOT
		if [ "$which" = before ] && [ -n "$srcfiles" ]; then
			dir=$(build_src_prefix "$rev" "$srcfiles")
			ko=$ROOT/.cache/build/$rel/xt_traffic.ko
		elif [ "$which" = before ]; then
			ko=$(build_prefix "$rev")
		fi
		args=()
		for f in $files; do args+=("test/vm/$f"); done
		printf 'step %q %q %q %q %q %q' "$id" "$which" "$ko" "$pat" "$OUT" "$dir" >>"$guest"
		printf ' %q' "${args[@]}" >>"$guest"
		printf '\n' >>"$guest"
	done
	printf 'exit 0\n' >>"$guest"
	printf 'fail-without-fix: one VM boot for %s (log %s)\n' "$*" "$OUT/vm-$$.log" >&2
	set +e
	XTT_VM_OUTDIR="$OUT" XTT_VM_TIMEOUT="${XTT_VM_TIMEOUT:-2400}" "${SLOT[@]}" bash scripts/vm.sh bash "$guest" 2>&1 | tee "$OUT/vm-$$.log" >&2
	set -e
}

# Host rows (no VM), all in one vitest run: $1 before|head. Before the fix, the files of
# 29fb222^ (XTT_KBUILD_REV: kbuild.test.ts) and its module built from history
# (XTT_LAYOUT_KO: layout.test.ts reads the structures' layout from its DWARF).
run_host() {
	local which=$1 r g f t rev=29fb222^ rep files=()
	for r in "${ROWS[@]}"; do
		IFS='|' read -r _ g f t _ <<<"$r"
		[ "$g" = host ] || continue
		case " ${files[*]} " in *" $f "*) ;; *) files+=("$f") ;; esac
	done
	[ ${#files[@]} -gt 0 ] || return 0
	rep=$OUT/host-$which.json
	rm -f "$rep"
	set +e
	if [ "$which" = before ]; then
		XTT_KBUILD_REV=$rev XTT_LAYOUT_KO=$(build_prefix "$rev") npx vitest run --config vitest.config.ts --reporter=json --outputFile.json="$rep" "${files[@]}" >/dev/null 2>&1
	else
		npx vitest run --config vitest.config.ts --reporter=json --outputFile.json="$rep" "${files[@]}" >/dev/null 2>&1
	fi
	set -e
}

selected() { [ ${#runs[@]} -eq 0 ] && return 0; local x; for x in "${runs[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }

steps=()
for which in before head; do
	if [ "$which" = before ] && [ -z "$want_before" ]; then continue; fi
	if [ "$which" = head ] && [ -z "$want_head" ]; then continue; fi
	if selected host; then run_host "$which"; fi
	for g in "${GROUPS_[@]}"; do
		id=${g%%|*}
		# M (a worktree and ~8 min of VM), F (the debug kernel) and R (a scratch module) only when named
		case $id in M | F | R) printf '%s\n' "${runs[@]}" | grep -qx "$id" || continue ;; esac
		if selected "$id"; then steps+=("$id:$which"); fi
	done
done
[ ${#steps[@]} -eq 0 ] || run_vm "${steps[@]}"

# The table, from the kept reports.
printf '%s\n' "${ROWS[@]}" | OUT=$OUT node -e '
const fs = require("fs");
const out = process.env.OUT;
const rows = fs.readFileSync(0, "utf8").trim().split("\n").map((l) => l.split("|"));
const load = (g, w) => {
  try { return JSON.parse(fs.readFileSync(`${out}/${g}-${w}.json`, "utf8")); } catch { return null; }
};
const clean = (s) => s.replace(/\x1b\[[0-9;]*m/g, "").replace(/\s+/g, " ").trim();
function result(g, file, re, w) {
  if (g === "-") return "no test";
  const rep = load(g, w);
  const rc = (() => { try { return fs.readFileSync(`${out}/${g}-${w}.rc`, "utf8").trim(); } catch { return ""; } })();
  if (!rep) return rc ? `no report (VM exit ${rc})` : "not run";
  const rx = new RegExp(re);
  const tests = rep.testResults.filter((f) => f.name.endsWith(file)).flatMap((f) => f.assertionResults)
    .filter((a) => rx.test(a.fullName) && a.status !== "pending" && a.status !== "skipped");
  if (!tests.length) {
    const fileErr = rep.testResults.filter((f) => f.name.endsWith(file)).map((f) => f.message).filter(Boolean)[0];
    return fileErr ? `FAIL (file: ${clean(fileErr).slice(0, 100)})` : "not run";
  }
  const failed = tests.filter((a) => a.status !== "passed");
  if (!failed.length) return `pass ${tests.length}/${tests.length}`;
  const msg = clean((failed[0].failureMessages || [""])[0].split("\n")[0]).slice(0, 110);
  return `FAIL ${failed.length}/${tests.length}: ${msg}`;
}
const lines = [["defect", "test", "before the fix (must fail)", "HEAD (must pass)", "note"]];
for (const [defect, g, file, re, note] of rows) {
  const test = g === "-" ? "-" : `${file.replace(/^test\/unit\//, "test/unit/")} /${re}/`;
  lines.push([defect, test, result(g, file, re, "before"), result(g, file, re, "head"), note || ""]);
}
console.log(lines.map((l, i) => "| " + l.map((c) => c.replace(/\|/g, "\\|")).join(" | ") + " |" + (i === 0 ? "\n|" + l.map(() => "---").join("|") + "|" : "")).join("\n"));
'
