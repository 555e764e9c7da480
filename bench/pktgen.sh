# pktgen on one device, the way the bench drives it: `xmit_mode netif_receive` (the packets
# enter the receive path of DEV as if they came from its wire), fixed UDP ports, PKT_SIZE-byte
# frames. Sourced by bench/run.sh and scripts/overflow-cost.sh (in the guest); the caller sets
# DEV, PKT_SIZE, DST (and for IPv6 SRC6 and dst6_of()) and has die(); pg_device sets MAC.
# pg_device: the dummy device DEV (10.60.0.1/24, no reverse-path filter) and pktgen loaded
pg_device() {
	modprobe dummy || die "modprobe dummy"
	modprobe pktgen || die "modprobe pktgen"
	ip link add $DEV type dummy 2>/dev/null
	ip link set $DEV up
	ip addr add 10.60.0.1/24 dev $DEV
	sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.$DEV.rp_filter=0
	MAC=$(cat /sys/class/net/$DEV/address)
}
PG=/proc/net/pktgen
pgset() { echo "$2" >"$1" || die "pktgen: '$2' > $1 refused"; }
P=$PG/$DEV
# pg_init [6]: a fresh pktgen device (pktgen has no command that turns IPv6 off again)
pg_init() {
	pgset $PG/kpktgend_0 "rem_device_all"
	pgset $PG/kpktgend_0 "add_device $DEV"
	pgset $P "xmit_mode netif_receive"
	pgset $P "pkt_size $PKT_SIZE"
	pgset $P "delay 0"
	pgset $P "dst_mac $MAC"
	pgset $P "udp_src_min 9"
	pgset $P "udp_src_max 9"
	pgset $P "udp_dst_min 9"
	pgset $P "udp_dst_max 9"
	if [ "${1:-}" = 6 ]; then
		pgset $P "src6 $SRC6"
		pgset $P "dst6_min $(dst6_of 0)"
	else
		pgset $P "dst $DST"
	fi
}
pg_result() {
	local r
	r=$(grep -A1 '^Result' $P)
	# Result: OK: 436161(c436161+d0) usec, 100000 (114byte,0frags)
	#   229177pps 187Mb/sec ...
	USEC=$(sed -n 's/^Result: OK: \([0-9]*\)(.*/\1/p' <<<"$r")
	SENT=$(sed -n 's/^Result: OK: [^ ]* usec, \([0-9]*\) .*/\1/p' <<<"$r")
	PPS=$(sed -n 's/^ *\([0-9]*\)pps.*/\1/p' <<<"$r")
	[ -n "$USEC" ] && [ -n "$SENT" ] || die "pktgen result not understood: $r"
}
