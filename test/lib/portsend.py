#!/usr/bin/env python3
"""A program that talks on a monitor port anyway, through packet sockets (as lldpd, arping or
ndisc6 would): test/vm/mirror.test.ts runs it in the monitor namespace after
`xttraffic mirror enable IF`.

  portsend.py IF chatter SECONDS   for SECONDS: an LLDP frame every 100 ms, and once a second an
                                   ARP request and an IPv6 neighbour solicitation
  portsend.py IF bypass N          N LLDP frames, 50 ms apart, from a socket with
                                   PACKET_QDISC_BYPASS (the kernel skips the qdisc and tc egress)

Prints JSON: frames tried per kind, `tried` in all, `accepted` (send() returned the length) and
`refused` (send() raised: errno names and how many).
"""
import json
import socket
import struct
import sys
import time

SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20


def csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def frames(mac):
    # LLDP: nearest-bridge group address; chassis ID (MAC), port ID (name), TTL 120, end
    def tlv(t, v):
        return struct.pack('!H', (t << 9) | len(v)) + v
    lldpdu = tlv(1, b'\x04' + mac) + tlv(2, b'\x05' + b'mon0') + tlv(3, struct.pack('!H', 120)) + tlv(0, b'')
    lldp = bytes.fromhex('0180c200000e') + mac + b'\x88\xcc' + lldpdu
    # ARP who-has 10.30.0.1 tell 10.30.0.9
    arp = (b'\xff' * 6 + mac + b'\x08\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + mac +
           socket.inet_aton('10.30.0.9') + b'\0' * 6 + socket.inet_aton('10.30.0.1'))
    # IPv6 neighbour solicitation for 2001:db8:30::1 from :: (as DAD does), with its checksum
    target = socket.inet_pton(socket.AF_INET6, '2001:db8:30::1')
    src = b'\0' * 16
    dst = socket.inet_pton(socket.AF_INET6, 'ff02::1:ff00:1')
    icmp = struct.pack('!BBHI', 135, 0, 0, 0) + target
    pseudo = src + dst + struct.pack('!IxxxB', len(icmp), 58)
    icmp = icmp[:2] + struct.pack('!H', csum(pseudo + icmp)) + icmp[4:]
    ip6 = struct.pack('!IHBB', 6 << 28, len(icmp), 58, 255) + src + dst
    ns = bytes.fromhex('3333ff000001') + mac + b'\x86\xdd' + ip6 + icmp
    pad = lambda f: f + b'\0' * max(0, 60 - len(f))
    return pad(lldp), pad(arp), pad(ns)


def main():
    iface, mode, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    if mode == 'bypass':
        s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    mac = s.getsockname()[4]
    lldp, arp, ns = frames(mac)
    out = {'lldp': 0, 'arp': 0, 'ns': 0, 'tried': 0, 'accepted': 0, 'refused': {}}

    def send(kind, f):
        out[kind] += 1
        out['tried'] += 1
        try:
            if s.send(f) == len(f):
                out['accepted'] += 1
        except OSError as e:
            name = errno_name(e.errno)
            out['refused'][name] = out['refused'].get(name, 0) + 1

    if mode == 'chatter':
        ticks = int(float(arg) * 10)
        start = time.monotonic()
        for i in range(ticks):
            send('lldp', lldp)
            if i % 10 == 0:
                send('arp', arp)
                send('ns', ns)
            time.sleep(max(0.0, start + (i + 1) * 0.1 - time.monotonic()))
    elif mode == 'bypass':
        for _ in range(int(arg)):
            send('lldp', lldp)
            time.sleep(0.05)
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out))


def errno_name(n):
    import errno
    return errno.errorcode.get(n, str(n))


if __name__ == '__main__':
    main()
