#!/usr/bin/env python3
"""IPv6 packet senders for test/vm/accounting6.test.ts (run inside a network namespace).
SRC (optional, last) binds the sending socket to that address.

  pkt6.py udp DST PORT SIZE COUNT [SRC [SPORT]]  COUNT datagrams of SIZE payload bytes, one socket
                                               (from source port SPORT: one flow per port)
  pkt6.py udpdst DST PORT SIZE COUNT [SRC]     the same with a destination options header (PadN, 8 bytes)
  pkt6.py raw DST PROTO SIZE COUNT [SRC]       COUNT packets of next header PROTO, SIZE payload bytes
  pkt6.py tcpsend DST PORT BYTES [SRC]         connects, sends BYTES bytes, waits for EOF, closes
  pkt6.py tcpserve PORT                        accepts one connection, reads to EOF, prints the byte count
  pkt6.py udpsink PORT COUNT SECONDS           receives COUNT datagrams (or for at most SECONDS), prints how many
  pkt6.py udpblast DST PORT SIZE SECONDS [SRC] sends datagrams for SECONDS, prints how many
"""
import socket
import sys
import time

# A destination options header: next header (the kernel fills it), length 0 (8 bytes),
# then a PadN option (type 1) of 4 bytes of padding.
DSTOPTS = bytes([0, 0, 1, 4, 0, 0, 0, 0])


def bound(s, argv, i):
    if len(argv) > i:
        s.bind((argv[i], int(argv[i + 1]) if len(argv) > i + 1 else 0))
    return s


def main(argv):
    cmd = argv[1]
    if cmd in ('udp', 'udpdst'):
        dst, port, size, count = argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        s = bound(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM), argv, 6)
        if cmd == 'udpdst':
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, DSTOPTS)
        for _ in range(count):
            s.sendto(b'u' * size, (dst, port))
            time.sleep(0.01)
    elif cmd == 'raw':
        dst, proto, size, count = argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        s = bound(socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto), argv, 6)
        for _ in range(count):
            s.sendto(b'r' * size, (dst, 0))
            time.sleep(0.01)
    elif cmd == 'tcpsend':
        dst, port, n = argv[2], int(argv[3]), int(argv[4])
        s = bound(socket.socket(socket.AF_INET6, socket.SOCK_STREAM), argv, 5)
        s.connect((dst, port))
        s.sendall(b't' * n)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
        s.close()
    elif cmd == 'tcpserve':
        ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(('::', int(argv[2])))
        ls.listen(1)
        print('listening', flush=True)
        c, _ = ls.accept()
        n = 0
        while True:
            b = c.recv(65536)
            if not b:
                break
            n += len(b)
        c.close()
        print(n, flush=True)
    elif cmd == 'udpsink':
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(('::', int(argv[2])))
        print('listening', flush=True)
        want, end = int(argv[3]), time.time() + float(argv[4])
        n = 0
        while n < want:
            left = end - time.time()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                s.recv(65536)
                n += 1
            except socket.timeout:
                break
        print(n, flush=True)
    elif cmd == 'udpblast':
        dst, port, size, seconds = argv[2], int(argv[3]), int(argv[4]), float(argv[5])
        s = bound(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM), argv, 6)
        end = time.time() + seconds
        n = 0
        while time.time() < end:
            s.sendto(b'b' * size, (dst, port))
            n += 1
        print(n, flush=True)
    else:
        sys.exit('pkt6.py: unknown command ' + cmd)


if __name__ == '__main__':
    main(sys.argv)
