#!/usr/bin/env bash
# Issue 12 defect 6 ("the monitor port talks"), measured: how many frames a monitor port sends
# in 30 s after `xttraffic mirror enable`, every namespace with the kernel's defaults (IPv6 on),
# while A's and B's IPv4 and IPv6 pings (unicast and to ff02::1) are mirrored to it. Counted
# where they arrive: the peer's rx counter and tcpdump on the peer (frames named by type).
# Runs in the VM (root); CLI: the dist/cli.js to test (a pre-fix worktree's, or HEAD's).
#   bash scripts/mirror-silence-probe.sh LABEL /path/to/dist/cli.js [SECONDS]
# test/vm/mirror.test.ts's silence test is the guard (it fails before the fix on Icmp6InMsgs
# first, before it counts the frames); this only gives the number.
set -euo pipefail
label=$1 cli=$2 secs=${3:-30}
A=10.31.0.1 B=10.31.0.2 A6=2001:db8:31::1 B6=2001:db8:31::2
for n in pa pb pm; do ip netns del $n 2>/dev/null || true; ip netns add $n; done
ip link add pva netns pa type veth peer name pvb netns pb
ip link add pmon netns pb type veth peer name pif netns pm
ip -n pa addr add $A/24 dev pva
ip -n pa addr add $A6/64 dev pva nodad
ip -n pb addr add $B/24 dev pvb
ip -n pb addr add $B6/64 dev pvb nodad
for x in "pa pva" "pb pvb" "pb pmon" "pm pif"; do set -- $x; ip -n "$1" link set "$2" up; done
ip netns exec pm ip link set lo up
tc -n pb qdisc add dev pvb clsact
tc -n pb filter add dev pvb ingress matchall action mirred egress mirror dev pmon
tc -n pb filter add dev pvb egress matchall action mirred egress mirror dev pmon
sleep 2 # the ports up (an operator enables a port that has been up a moment)
rx() { ip -n pb -s -j link show dev pmon | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }
ip netns exec pm node "$cli" mirror enable pif >/dev/null
rx0=$(rx)
ip netns exec pb tcpdump -l -n -e -Q in -i pmon >/tmp/probe-$label.tcpdump 2>/dev/null &
tcpd=$!
sleep 1
pids=()
ip netns exec pa ping -q -c "$secs" -i 1 -W 2 $B >/dev/null 2>&1 &
pids+=($!)
ip netns exec pa ping -6 -q -c "$secs" -i 1 -W 2 $B6 >/dev/null 2>&1 &
pids+=($!)
ip netns exec pa ping -6 -q -c "$secs" -i 1 -W 2 ff02::1%pva >/dev/null 2>&1 &
pids+=($!)
for p in "${pids[@]}"; do wait "$p" || true; done
sleep 1
rx1=$(rx)
kill $tcpd 2>/dev/null || true
wait $tcpd 2>/dev/null || true
printf 'MIRROR %s: %d frames from the port at its peer in %d s after enable\n' "$label" $((rx1 - rx0)) "$secs"
# what they were: tcpdump's lines, the protocol part, counted
sed -E 's/^[^,]*, ethertype ([A-Za-z0-9]+)[^:]*: /\1 /; s/, length [0-9]+$//; s/, id [0-9]+, seq [0-9]+//; s/(fe80|2001|ff02)[0-9a-f:.%]*/ADDR/g; s/[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/ADDR/g' /tmp/probe-$label.tcpdump |
	sort | uniq -c | sort -rn | head -n 8 | sed "s/^/MIRROR $label:   /"
ip netns exec pm node "$cli" mirror disable pif >/dev/null || true
for n in pa pb pm; do ip netns del $n; done
