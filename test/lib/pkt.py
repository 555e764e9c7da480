#!/usr/bin/env python3
"""Deterministic packet senders for the VM tests (run inside a network namespace).

  pkt.py udp DST PORT SIZE COUNT [SPORT]   COUNT datagrams of SIZE payload bytes from one socket
  pkt.py udpflows DST PORT0 N SIZE          N flows: one datagram each from N sockets to PORT0..PORT0+N-1
  pkt.py raw DST PROTO SIZE COUNT           COUNT IPv4 packets of protocol PROTO, SIZE payload bytes
  pkt.py syn DST PORT N                     N TCP connects to a closed port (SYN, answered by RST)
  pkt.py tcpserve PORT                      accepts one connection, reads to EOF, prints the byte count
  pkt.py tcpsend DST PORT BYTES             connects, sends BYTES bytes, closes
  pkt.py udpblast DST PORT SIZE SECONDS     sends datagrams for SECONDS, prints how many
"""
import socket
import sys
import time


def main(argv):
    cmd = argv[1]
    if cmd == 'udp':
        dst, port, size, count = argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if len(argv) > 6:
            s.bind(('', int(argv[6])))
        for _ in range(count):
            s.sendto(b'u' * size, (dst, port))
            time.sleep(0.01)
    elif cmd == 'udpflows':
        dst, port0, n, size = argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b'f' * size, (dst, port0 + i))
            s.close()
            time.sleep(0.01)
    elif cmd == 'raw':
        dst, proto, size, count = argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
        for _ in range(count):
            s.sendto(b'r' * size, (dst, 0))
            time.sleep(0.01)
    elif cmd == 'syn':
        dst, port, n = argv[2], int(argv[3]), int(argv[4])
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect((dst, port))
                raise SystemExit('connected to a port that should be closed')
            except ConnectionRefusedError:
                pass
            s.close()
    elif cmd == 'tcpserve':
        port = int(argv[2])
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(('', port))
        ls.listen(1)
        print('listening', flush=True)
        c, _ = ls.accept()
        total = 0
        while True:
            b = c.recv(65536)
            if not b:
                break
            total += len(b)
        c.close()
        print(total, flush=True)
    elif cmd == 'tcpsend':
        dst, port, nbytes = argv[2], int(argv[3]), int(argv[4])
        s = socket.create_connection((dst, port), timeout=10)
        s.sendall(b't' * nbytes)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        s.close()
    elif cmd == 'udpblast':
        dst, port, size, seconds = argv[2], int(argv[3]), int(argv[4]), float(argv[5])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        end = time.time() + seconds
        n = 0
        while time.time() < end:
            s.sendto(b'b' * size, (dst, port))
            n += 1
        print(n, flush=True)
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
