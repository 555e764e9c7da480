#!/usr/bin/env bash
# Runs inside the VM (see scripts/demo.sh): two hosts of 10.20.0.0/24 in network
# namespaces, a router-like box "mon" that counts them with one rule, real traffic,
# then the /proc tables.
set -euo pipefail
export XTABLES_LIBDIR=$PWD/libxt:/usr/lib/x86_64-linux-gnu/xtables
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

modprobe x_tables
insmod ".cache/build/$XTT_KERNEL_RELEASE/xt_traffic.ko"
ip netns add h1
ip netns add mon
ip link add eth0 netns h1 type veth peer name eth0 netns mon
ip -n h1 addr add 10.20.0.5/24 dev eth0
ip -n mon addr add 10.20.0.1/24 dev eth0
for ns in h1 mon; do ip -n $ns link set lo up; ip -n $ns link set eth0 up; done

echo "# one rule counts every host of 10.20.0.0/24 (here: traffic arriving at 'mon')"
run ip netns exec mon iptables -t raw -A PREROUTING -m traffic --traffic --ipconn --portconn \
	--netbase 10.20.0.0 --netmask 255.255.255.0 --name DEMO
run ip netns exec mon iptables -t raw -S PREROUTING

echo "# traffic: 3 pings of 56 bytes, and a 1000-byte UDP datagram to port 5353"
run ip netns exec h1 ping -c 3 -i 0.2 -q 10.20.0.1
say "ip netns exec h1 sh -c 'head -c 1000 /dev/zero | nc -u -w1 -q0 10.20.0.1 5353'"
ip netns exec h1 sh -c 'head -c 1000 /dev/zero | nc -u -w1 -q0 10.20.0.1 5353' || true

echo "# expected for 10.20.0.5: out = 3 x (56+8+20) = 252 ICMP (OTHER) + 1000+8+20 = 1028 UDP"
for f in DEMO DEMO_ipconn DEMO_portconn DEMO_info; do
	run ip netns exec mon cat /proc/net/xt_traffic/$f
done
if [ -x dist/cli.js ] || [ -f dist/cli.js ]; then
	run ip netns exec mon node dist/cli.js read DEMO --clear
	run ip netns exec mon node dist/cli.js read DEMO
fi
