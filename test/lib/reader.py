#!/usr/bin/env python3
"""Reads an xt_traffic file over and over in chunks of a given size until a stop file
exists, then prints JSON: how many reads, and the sums of the total_in and total_out
columns over all of them (exact integers), also per key ("keys": {KEY: [in, out]}).

  reader.py PATH CHUNK MODE STOPFILE     MODE: r (O_RDONLY) or rw (O_RDWR = read-and-clear)
"""
import json
import os
import sys

HEADERS = ('IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER', 'IP\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER',
           'PORT\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER')


def read_once(path, chunk, flags):
    fd = os.open(path, flags)
    parts = []
    try:
        while True:
            b = os.read(fd, chunk)
            if not b:
                break
            parts.append(b)
    finally:
        os.close(fd)
    return b''.join(parts).decode()


def main():
    path, chunk, mode, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    flags = os.O_RDWR if mode == 'rw' else os.O_RDONLY
    reads = 0
    tin = tout = 0
    keys = {}
    while True:
        last = os.path.exists(stop)
        text = read_once(path, chunk, flags)
        lines = text.split('\n')
        if lines[0] not in HEADERS or lines[-1] != '':
            raise SystemExit('bad file: %r' % text[:200])
        for line in lines[1:-1]:
            f = line.split('\t')
            tin += int(f[1])
            tout += int(f[2])
            k = keys.setdefault(f[0], [0, 0])
            k[0] += int(f[1])
            k[1] += int(f[2])
        reads += 1
        if last:
            break
    print(json.dumps({'reads': reads, 'in': tin, 'out': tout, 'keys': keys}))


if __name__ == '__main__':
    main()
