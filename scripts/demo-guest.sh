#!/usr/bin/env bash
# Runs inside the VM (see scripts/demo.sh): a router "r" between a LAN host (10.20.1.5,
# inside the monitored net 10.20.0.0/16) and an outside host (198.51.100.7), one
# xt_traffic rule on r, the collector filling the ledger every second, real traffic, what
# xttraffic reads, then the bill: `report` from the ledger (a clearing read meanwhile takes
# nothing away from it).
set -euo pipefail
export XTABLES_LIBDIR=$PWD/libxt:/usr/lib/x86_64-linux-gnu/xtables
xttraffic() { node "$PWD/dist/cli.js" "$@"; }
say() { printf '\n$ %s\n' "$*"; }
in_r() { ip netns exec r "$@"; }

ip netns add lan
ip netns add out
ip netns add r
ip link add eth0 netns lan type veth peer name lan0 netns r
ip link add eth0 netns out type veth peer name out0 netns r
ip -n lan addr add 10.20.1.5/24 dev eth0
ip -n r addr add 10.20.1.1/24 dev lan0
ip -n out addr add 198.51.100.7/24 dev eth0
ip -n r addr add 198.51.100.1/24 dev out0
for ns in lan out r; do ip -n $ns link set lo up; done
ip -n lan link set eth0 up; ip -n out link set eth0 up
ip -n r link set lan0 up; ip -n r link set out0 up
ip -n lan route add default via 10.20.1.1
ip -n out route add default via 198.51.100.1
ip netns exec r sysctl -qw net.ipv4.ip_forward=1
ip netns exec out iptables -A INPUT -p udp -j DROP

say xttraffic load
xttraffic load
say xttraffic rule add --name LAN --net 10.20.0.0/16 --traffic --ipconn --portconn --table raw --chain PREROUTING
in_r node "$PWD/dist/cli.js" rule add --name LAN --net 10.20.0.0/16 --traffic --ipconn --portconn \
	--table raw --chain PREROUTING
say iptables -t raw -S PREROUTING
in_r iptables -t raw -S PREROUTING

# the ledger (default /var/lib/xttraffic/ledger.db; XTT_DB names another, for every command)
export XTT_DB=/tmp/xtt-demo/ledger.db
rm -rf /tmp/xtt-demo && mkdir -p /tmp/xtt-demo
say "export XTT_DB=$XTT_DB; xttraffic collect --interval 1 &    # every second, on the second"
# not through in_r (a function: $! would be a subshell's pid): ip netns exec execs node
ip netns exec r node "$PWD/dist/cli.js" collect --interval 1 >/tmp/xtt-demo/collect.log 2>&1 &
COLLECTOR=$!
sleep 1.5

echo
echo "# traffic: the LAN host pings out 3 times (56 bytes), sends one 1000-byte UDP datagram"
echo "# to port 5353, and the outside host pings it twice."
ip netns exec lan ping -c 3 -i 0.2 -q 198.51.100.7 >/dev/null
ip netns exec lan python3 test/lib/pkt.py udp 198.51.100.7 5353 1000 1
ip netns exec out ping -c 2 -i 0.2 -q 10.20.1.5 >/dev/null
echo "# expected for 10.20.1.5: out = 3 x 84 (echo requests) + 2 x 84 (echo replies) = 420 OTHER"
echo "#                               + 1000 + 8 + 20 = 1028 UDP;  in = 3 x 84 + 2 x 84 = 420 OTHER"
echo "# connections: out 2 (its ping, its UDP flow), in 1 (the outside host's ping)"

sleep 2.2 # the collector takes it within a second
say "tail -n 3 collect.log                          # one line per collection"
tail -n 3 /tmp/xtt-demo/collect.log

say cat /proc/net/xt_traffic/LAN
in_r cat /proc/net/xt_traffic/LAN
say xttraffic read LAN
in_r node "$PWD/dist/cli.js" read LAN
say xttraffic read LAN --conn port
in_r node "$PWD/dist/cli.js" read LAN --conn port
say "xttraffic read LAN --clear                     # read and clear in one atomic step"
in_r node "$PWD/dist/cli.js" read LAN --clear
say xttraffic read LAN
in_r node "$PWD/dist/cli.js" read LAN
say xttraffic status
in_r node "$PWD/dist/cli.js" status

echo
echo "# deleting the rule removes the table: the running collector is told to collect first"
say xttraffic rule del --name LAN
in_r node "$PWD/dist/cli.js" rule del --name LAN
say "kill -TERM \$COLLECTOR                           # a last collection, then exit 0"
kill -TERM "$COLLECTOR"
rc=0
wait "$COLLECTOR" || rc=$?
echo "collector exit $rc"
tail -n 2 /tmp/xtt-demo/collect.log

echo
echo "# the bill: the ledger has every byte (in 420, out 1448 = 420 + 1028, connections 1 in,"
echo "# 2 out), although 'read --clear' cleared the table above and the rule is gone"
say xttraffic report
node "$PWD/dist/cli.js" report
say xttraffic report --ip 10.20.1.5 --csv
node "$PWD/dist/cli.js" report --ip 10.20.1.5 --csv
say xttraffic history 10.20.1.5 --step hour
node "$PWD/dist/cli.js" history 10.20.1.5 --step hour
