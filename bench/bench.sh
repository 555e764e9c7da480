#!/usr/bin/env bash
# bench/bench.sh [run.sh args]: host side of `npm run bench`. Boots the VM deterministically
# (-icount shift=0,sleep=off -smp 1) with bench/results shared writable, runs bench/run.sh
# inside. BENCH_QUICK=1 for the CI smoke mode. Never start two VMs at once on a small host.
set -euo pipefail
cd "$(dirname "$0")/.."
export XTT_VM_ICOUNT=1
export XTT_VM_OUTDIR=${XTT_VM_OUTDIR:-$PWD/bench/results}
if [ -n "${BENCH_QUICK:-}" ]; then
	export XTT_VM_TIMEOUT=${XTT_VM_TIMEOUT:-300}
else
	export XTT_VM_TIMEOUT=${XTT_VM_TIMEOUT:-1500}
fi
# The guest's clock is virtual under icount: date the results on the host.
export XTT_BENCH_DATE=${XTT_BENCH_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
# XTT_* reach the guest; BENCH_* do not: pass them as XTT_BENCH_*.
for v in BENCH_QUICK BENCH_COUNT BENCH_READ BENCH_MEM BENCH_BIG BENCH_IPT BENCH_PACKETS; do
	[ -n "${!v:-}" ] && export "XTT_$v=${!v}"
done
exec bash scripts/vm.sh bash bench/run.sh "$@"
