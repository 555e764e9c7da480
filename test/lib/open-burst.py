#!/usr/bin/env python3
"""New keys counted while a non-clearing reader is inside open() or between its read()s.

  open-burst.py FILE TAP < PLAN

PLAN (JSON): {"old": [IP, ...], "bursts": [[IP, ...], ...], "at": ["open" | "read", ...],
"chunk": [BYTES, ...], "dst": IP}. Creates tap TAP (IFF_TAP|IFF_NO_PI) in the current netns
and writes one plain UDP datagram (IP length 128) from each "old" source to dst; tun counts
each in the writer's context (netif_receive_skb() before write() returns). Then per burst
this process, the reader (nice 19), opens FILE read-only, reads it in read()s of chunk
bytes, and a sender child (nice -20) writes one datagram from each source of the burst; both
are pinned to one CPU (the first they may run on), so this holds with several vCPUs too:
  "open": the reader wakes the sender just before open(); the sender sleeps 2 ms, then takes
          the CPU from the reader at its next rescheduling point and keeps it for
          the whole burst: the burst lands inside open() when open() takes longer than 2 ms
          (before the fix it walked the whole bucket array for its snapshot), else inside
          the first read();
  "read": the reader wakes the sender after its first read() returned and waits for the
          burst to end: the burst lands between the first and the second read().
Then the reader reads the rest. Prints one JSON line per burst: {"text": what the reader
read, "beforeOpen": datagrams of the burst written before open() began, "inOpen": during
open(), "inFirstRead": during the first read(), "openMs": open()'s duration}.
"""
import fcntl
import json
import mmap
import os
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def csum(data):
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(head, src, dst, ident):
    iph = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 128, ident & 0xFFFF, 0, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    iph = iph[:10] + struct.pack('!H', csum(iph)) + iph[12:]
    return head + iph + struct.pack('!HHHH', 40000, 53, 108, 0) + b'n' * 100


def main(argv):
    path, ifname = argv[1], argv[2]
    plan = json.load(sys.stdin)
    if not os.path.exists('/dev/net/tun'):
        os.system('modprobe tun')
    tun = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack('16sH', ifname.encode(), IFF_TAP | IFF_NO_PI))
    if os.system('ip link set %s up' % ifname) != 0:
        raise SystemExit('ip link set %s up failed' % ifname)
    # SIOCGIFHWADDR: the tap's MAC, so that each frame is for this host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        mac = fcntl.ioctl(s, 0x8927, struct.pack('256s', ifname.encode()))[18:24]
    head = mac + b'\x02\x00\x00\x00\x0a\x01\x08\x00'
    dst = plan['dst']
    for i, src in enumerate(plan['old']):
        os.write(tun, frame(head, src, dst, i))
    bursts = [[frame(head, src, dst, i) for i, src in enumerate(b)] for b in plan['bursts']]

    # reader and sender on one CPU, whatever the VM has: the scheduling above needs it
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    # the sender's progress: datagrams of the current burst written so far
    sent = mmap.mmap(-1, 8)
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setpriority(os.PRIO_PROCESS, 0, -20)
        for frames in bursts:
            if os.read(go_r, 1) == b'o':
                time.sleep(0.002)
            for n, f in enumerate(frames, 1):
                os.write(tun, f)
                struct.pack_into('Q', sent, 0, n)
            os.write(done_w, b'd')
        os._exit(0)

    os.setpriority(os.PRIO_PROCESS, 0, 19)
    count = lambda: struct.unpack_from('Q', sent, 0)[0]
    for at, chunk in zip(plan['at'], plan['chunk']):
        struct.pack_into('Q', sent, 0, 0)
        if at == 'open':
            os.write(go_w, b'o')
        c0 = count()
        t0 = time.monotonic()
        fd = os.open(path, os.O_RDONLY)
        t1 = time.monotonic()
        c1 = count()
        out = [os.read(fd, chunk)]
        c2 = count()
        if at == 'read':
            os.write(go_w, b'r')
        os.read(done_r, 1)
        while True:
            b = os.read(fd, chunk)
            if not b:
                break
            out.append(b)
        os.close(fd)
        print(json.dumps({'text': b''.join(out).decode(), 'beforeOpen': c0, 'inOpen': c1 - c0,
                          'inFirstRead': c2 - c1, 'openMs': round((t1 - t0) * 1000, 2)}),
              flush=True)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit('sender exited with status %d' % status)


if __name__ == '__main__':
    main(sys.argv)
