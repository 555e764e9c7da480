#!/usr/bin/env bash
# Runs inside the VM (see `npm run demo6`): the IPv6 session of the README. A router "r"
# between a customer's LAN (2001:db8:100::/48, delegated per /56) and an outside host
# (2001:db8:ff::7); one `xttraffic rule add --net 2001:db8:100::/48 --hostprefix 56` (it
# runs ip6tables), the collector filling the ledger every second, real traffic from three
# addresses of one /56 (two of them privacy-style addresses in one /64) and one host of a
# second /56, then what the table shows, and the bill per /56 from the ledger.
# Neighbours are static and DAD is off: no neighbour discovery packet is counted.
set -euo pipefail
export XTABLES_LIBDIR=$PWD/libxt:/usr/lib/x86_64-linux-gnu/xtables
xttraffic() { node "$PWD/dist/cli.js" "$@"; }
say() { printf '\n$ %s\n' "$*"; }
in_r() { ip netns exec r "$@"; }

A=2001:db8:100:1::a     # LAN host, /64 2001:db8:100:1::/64
B=2001:db8:100:1:8d3c:2f1e:9a40:7b21 # the same host's privacy address, same /64
C=2001:db8:100:2::c     # another /64 of the same /56
D=2001:db8:100:200::d   # a host of the next /56
X=2001:db8:ff::7        # outside

ip netns add lan
ip netns add lan2
ip netns add out
ip netns add r
ip link add eth0 netns lan type veth peer name lan0 netns r
ip link add eth0 netns lan2 type veth peer name lan1 netns r
ip link add eth0 netns out type veth peer name out0 netns r
for ns in lan lan2 out r; do ip -n $ns link set lo up; done
ip -n lan addr add $A/64 dev eth0 nodad
ip -n lan addr add $B/64 dev eth0 nodad
ip -n lan addr add $C/64 dev eth0 nodad
ip -n r addr add 2001:db8:100:1::1/64 dev lan0 nodad
ip -n lan2 addr add $D/64 dev eth0 nodad
ip -n r addr add 2001:db8:100:200::1/64 dev lan1 nodad
ip -n out addr add $X/64 dev eth0 nodad
ip -n r addr add 2001:db8:ff::1/64 dev out0 nodad
ip -n lan link set eth0 up; ip -n lan2 link set eth0 up; ip -n out link set eth0 up
ip -n r link set lan0 up; ip -n r link set lan1 up; ip -n r link set out0 up
ip -n r route add 2001:db8:100:2::/64 dev lan0
ip -n lan route add default via 2001:db8:100:1::1
ip -n lan2 route add default via 2001:db8:100:200::1
ip -n out route add default via 2001:db8:ff::1
ip netns exec r sysctl -qw net.ipv6.conf.all.forwarding=1
mac() { ip -n "$1" -j link show dev "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])'; }
neigh() { ip -n "$1" -6 neigh replace "$2" lladdr "$(mac "$3" "$4")" dev "$5" nud permanent; }
for ip in $A $B $C; do neigh r $ip lan eth0 lan0; done
neigh r $D lan2 eth0 lan1
neigh r $X out eth0 out0
neigh lan 2001:db8:100:1::1 r lan0 eth0
neigh lan2 2001:db8:100:200::1 r lan1 eth0
neigh out 2001:db8:ff::1 r out0 eth0
ip netns exec out ip6tables -A INPUT -p udp -j DROP

say xttraffic load
xttraffic load
say xttraffic rule add --name V6 --net 2001:db8:100::/48 --hostprefix 56 --traffic --ipconn --portconn --table raw --chain PREROUTING
in_r node "$PWD/dist/cli.js" rule add --name V6 --net 2001:db8:100::/48 --hostprefix 56 --traffic --ipconn --portconn \
	--table raw --chain PREROUTING
say ip6tables -t raw -S PREROUTING
in_r ip6tables -t raw -S PREROUTING

export XTT_DB=/tmp/xtt-demo6/ledger.db
rm -rf /tmp/xtt-demo6 && mkdir -p /tmp/xtt-demo6
say "export XTT_DB=$XTT_DB; xttraffic collect --interval 1 &    # every second, on the second"
ip netns exec r node "$PWD/dist/cli.js" collect --interval 1 >/tmp/xtt-demo6/collect.log 2>&1 &
COLLECTOR=$!
sleep 1.5

echo
echo "# traffic: $A pings out 3 times (56 bytes),"
echo "#   its privacy address $B sends one 1000-byte UDP datagram to port 5353,"
echo "#   $C connects to a closed TCP port (SYN, RST),"
echo "#   and the outside host pings $D twice (200 bytes)."
ip netns exec lan ping -6 -c 3 -i 0.2 -q -I $A $X >/dev/null
ip netns exec lan python3 test/lib/pkt6.py udp $X 5353 1000 1 $B
ip netns exec lan python3 -c "
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(('$C', 0))
try:
    s.connect(('$X', 9))
except ConnectionRefusedError:
    pass
"
ip netns exec out ping -6 -c 2 -i 0.2 -s 200 -q $D >/dev/null
echo "# expected, per /56 (IPv6 bytes = 40-byte header + payload):"
echo "#  2001:db8:100::/56   OTHER out 3 x (40 + 8 + 56) = 312, in 312 (the echo replies)"
echo "#                      UDP out 40 + 8 + 1000 = 1048"
echo "#                      TCP out 40 + 40 (SYN with options) = 80, in 40 + 20 (RST) = 60"
echo "#                      total in 372, out 1440; connections out 3 (ping, UDP flow, TCP)"
echo "#  2001:db8:100:200::/56  OTHER in 2 x (40 + 8 + 200) = 496, out 496; connections in 1"

sleep 2.2
say "tail -n 3 collect.log                          # one line per collection"
tail -n 3 /tmp/xtt-demo6/collect.log

say cat /proc/net/xt_traffic/V6
in_r cat /proc/net/xt_traffic/V6
say cat /proc/net/xt_traffic/V6_info
in_r cat /proc/net/xt_traffic/V6_info
say xttraffic read V6
in_r node "$PWD/dist/cli.js" read V6
say xttraffic read V6 --conn ip
in_r node "$PWD/dist/cli.js" read V6 --conn ip
say xttraffic read V6 --conn port
in_r node "$PWD/dist/cli.js" read V6 --conn port
say "xttraffic read V6 --clear                      # read and clear in one atomic step"
in_r node "$PWD/dist/cli.js" read V6 --clear
say xttraffic read V6
in_r node "$PWD/dist/cli.js" read V6
say xttraffic status
in_r node "$PWD/dist/cli.js" status

echo
say xttraffic rule del --name V6
in_r node "$PWD/dist/cli.js" rule del --name V6
say "kill -TERM \$COLLECTOR                           # a last collection, then exit 0"
kill -TERM "$COLLECTOR"
rc=0
wait "$COLLECTOR" || rc=$?
echo "collector exit $rc"
tail -n 2 /tmp/xtt-demo6/collect.log

echo
echo "# the bill per /56: the ledger has every byte, although 'read --clear' cleared the table"
say xttraffic report
node "$PWD/dist/cli.js" report
say "xttraffic report --ip $B --csv     # an address: the /56 it is counted in"
node "$PWD/dist/cli.js" report --ip $B --csv
say "xttraffic history 2001:db8:100:200::/56 --step hour"
node "$PWD/dist/cli.js" history 2001:db8:100:200::/56 --step hour
