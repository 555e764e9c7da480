#!/usr/bin/env python3
"""Forged GSO packets with a virtio_net_hdr, and the wire bytes xt_traffic must count.

  vnet.py tap IFNAME COUNT SEED
      creates tap IFNAME (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) in the current netns, sets it up
      and writes COUNT frames, each from its own source 10.9.X.Y (X.Y = 0.1, 0.2, ...) to
      10.99.0.1, with randomized forged vnet headers (gso_type, gso_size, flags, hdr_len)
      and randomized IP/TCP/UDP headers (ihl 5..8, doff 0..15, payload 0..3000 bytes).
  vnet.py packet IFNAME DSTMAC COUNT SEED
      the same through an AF_PACKET socket with PACKET_VNET_HDR bound to IFNAME (a veth):
      the sender's stack segments what it can (veth is not GSO_ROBUST), the peer counts.
      Headers there always ask for a checksum (NEEDS_CSUM, as a real guest does).
  vnet.py plain IFNAME COUNT FIRST [ROUNDS]
      through tap IFNAME (made if missing): ROUNDS (default 1) rounds of one plain 100-byte
      UDP datagram (IP length 128, no GSO) from each source 10.9.X.Y, X.Y = FIRST .. FIRST +
      COUNT - 1 (as one number), to 10.99.0.1. Prints the number of frames written.

Prints one JSON document: {"sent": N, "rows": {"10.9.X.Y": [bytes, segments], ...}} where
bytes and segments follow the counting rule of docs/design.md ("GSO packets"), computed here
from the headers that were written, independently of the module:

  L = IP total length, H = IP header + transport header, where the transport header is
  TCP doff*4 for a TCPV4 GSO packet of protocol TCP (doff >= 5), 8 for a UDP_L4 GSO packet
  of protocol UDP, 0 for UFO (UDP fragmentation: each fragment carries the IP header);
  anything else, a header that does not fit in L, gso_size 0 or a payload P = L - H of at
  most gso_size: one segment of L bytes. gso_size is the one the kernel keeps: for TCP at
  least 8 (virtio_net_hdr_to_skb raises it to TCP_MIN_GSO_SIZE). Else segs = min(ceil(P / gso_size), 65535) and
  bytes = L + (segs - 1) * H.
"""
import fcntl
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
SOL_PACKET = 263
PACKET_VNET_HDR = 15

GSO_NONE, GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_UDP_L4, GSO_ECN = 0, 1, 3, 4, 5, 0x80
F_NEEDS_CSUM = 1
GSO_MAX_SEGS = 65535
TCP_MIN_GSO_SIZE = 8  # include/net/tcp.h: TCP_MIN_SND_MSS - MAX_TCP_OPTION_SPACE


def csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def rule(length, ihl, proto, gso_type, gso_size, doff):
    """(bytes, segments) of the counting rule for a packet as written."""
    kind = gso_type & ~GSO_ECN
    if gso_size == 0 or kind == GSO_NONE:
        return length, 1
    if kind in (GSO_TCPV4, GSO_TCPV6):
        # virtio_net_hdr_to_skb() raises a TCP gso_size to TCP_MIN_GSO_SIZE (8) on 6.1 and
        # 6.12: the packet the match sees carries that, and segmentation would use it
        gso_size = max(gso_size, TCP_MIN_GSO_SIZE)
    if kind == GSO_TCPV4 and proto == 6:
        if doff < 5:
            return length, 1
        hdr = ihl + doff * 4
    elif kind == GSO_UDP_L4 and proto == 17:
        hdr = ihl + 8
    elif kind == GSO_UDP and proto == 17:
        hdr = ihl
    else:
        return length, 1
    payload = length - hdr
    if payload <= gso_size:
        return length, 1
    segs = min((payload + gso_size - 1) // gso_size, GSO_MAX_SEGS)
    return length + (segs - 1) * hdr, segs


def packet(rng, i, dst_mac, src_mac, careful):
    """One frame (vnet header + Ethernet + IP) and its rule values."""
    src = '10.9.%d.%d' % (i >> 8, i & 255)
    if careful:
        proto = rng.choice([6, 6, 6, 17])
        gso_type = GSO_TCPV4 if proto == 6 else rng.choice([GSO_UDP_L4, GSO_NONE])
        ihl = 5
        doff = rng.choice([5, 5, 8, 15, rng.randint(5, 15)])
    else:
        proto = rng.choice([6, 6, 6, 17, 17, 47])
        gso_type = rng.choice([GSO_NONE, GSO_TCPV4, GSO_TCPV4, GSO_TCPV4, GSO_TCPV4 | GSO_ECN,
                               GSO_UDP, GSO_UDP_L4, GSO_TCPV6])
        ihl = rng.choice([5, 5, 5, 6, 8])
        doff = rng.choice([0, 4, 5, 5, 6, 8, 15, rng.randint(0, 15)])
    gso_size = rng.choice([0, 1, 1, 2, 3, 7, 8, 100, 536, 1448, 1460, rng.randint(1, 65535)])
    rest = rng.choice([0, 1, 8, 30, rng.randint(0, 3000), rng.randint(0, 64)])
    opts = b'\x01' * ((ihl - 5) * 4)
    if proto == 6:
        l4 = struct.pack('!HHIIBBHHH', 40000 + (i & 1023), 80, rng.getrandbits(32), 1,
                         (doff & 15) << 4, 0x10, 512, 0, 0) + b'\x01' * rest
    elif proto == 17:
        l4 = struct.pack('!HHHH', 40000 + (i & 1023), 53, (8 + rest) & 0xFFFF, 0) + b'u' * rest
    else:
        l4 = b'g' * (4 + rest)
    length = ihl * 4 + len(l4)
    iph = struct.pack('!BBHHHBBH4s4s', 0x40 | ihl, 0, length, i & 0xFFFF,
                      0x4000 if proto == 6 else 0, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton('10.99.0.1')) + opts
    iph = iph[:10] + struct.pack('!H', csum(iph)) + iph[12:]
    flags = 0
    csum_start = csum_off = 0
    if careful or rng.random() < 0.7:
        flags = F_NEEDS_CSUM
        csum_start = 14 + ihl * 4
        csum_off = 16 if proto == 6 else 6
        if not careful and rng.random() < 0.05:
            csum_off = rng.randint(0, 40)
    hdr_len = rng.randint(0, 14 + length)
    vnet = struct.pack('<BBHHHH', flags, gso_type, hdr_len, gso_size, csum_start, csum_off)
    frame = vnet + dst_mac + src_mac + b'\x08\x00' + iph + l4
    return frame, src, rule(length, ihl * 4, proto, gso_type, gso_size, doff)


def open_tun():
    # /dev/net/tun appears (devtmpfs) once the tun module is loaded
    if not os.path.exists('/dev/net/tun'):
        subprocess.run(['modprobe', 'tun'], check=True)
    return os.open('/dev/net/tun', os.O_RDWR)


def mac_of(ifname):
    with open('/sys/class/net/%s/address' % ifname) as f:
        return bytes.fromhex(f.read().strip().replace(':', ''))


def main(argv):
    mode = argv[1]
    rows = {}
    if mode == 'tap':
        ifname, count, seed = argv[2], int(argv[3]), int(argv[4])
        fd = open_tun()
        fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', ifname.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
        subprocess.run(['ip', 'link', 'set', ifname, 'up'], check=True)
        dst_mac = mac_of(ifname)
        write = lambda f: os.write(fd, f)
        careful = False
    elif mode == 'plain':
        ifname, count, first = argv[2], int(argv[3]), int(argv[4])
        rounds = int(argv[5]) if len(argv) > 5 else 1
        fd = open_tun()
        fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', ifname.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
        subprocess.run(['ip', 'link', 'set', ifname, 'up'], check=True)
        head = struct.pack('<BBHHHH', 0, 0, 0, 0, 0, 0) + mac_of(ifname) + b'\x02\x00\x00\x00\x09\x01\x08\x00'
        frames = []
        for i in range(first, first + count):
            src = socket.inet_aton('10.9.%d.%d' % ((i >> 8) & 255, i & 255))
            iph = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 128, i & 0xFFFF, 0, 64, 17, 0, src,
                              socket.inet_aton('10.99.0.1'))
            iph = iph[:10] + struct.pack('!H', csum(iph)) + iph[12:]
            frames.append(head + iph + struct.pack('!HHHH', 40000, 53, 108, 0) + b'p' * 100)
        n = 0
        for _ in range(rounds):
            for f in frames:
                os.write(fd, f)
                n += 1
        time.sleep(1)  # the backlog drains before the tap goes away with this process
        print(n)
        return
    elif mode == 'packet':
        ifname, dst, count, seed = argv[2], argv[3], int(argv[4]), int(argv[5])
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.bind((ifname, 0))
        dst_mac = bytes.fromhex(dst.replace(':', ''))
        write = s.send
        careful = True
    else:
        raise SystemExit('unknown mode ' + mode)
    rng = random.Random(seed)
    src_mac = b'\x02\x00\x00\x00\x09\x01'
    sent = 0
    for i in range(1, count + 1):
        frame, src, value = packet(rng, i, dst_mac, src_mac, careful)
        try:
            write(frame)
            sent += 1
            rows[src] = value
        except OSError:
            pass  # the kernel refused the header: nothing reached the hook
    time.sleep(1)  # the backlog drains before the tap goes away with this process
    json.dump({'sent': sent, 'rows': rows}, sys.stdout)


if __name__ == '__main__':
    main(sys.argv)
