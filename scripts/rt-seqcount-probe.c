// SPDX-License-Identifier: GPL-2.0
/*
 * rt-seqcount-probe: issue 12 defect 4 on PREEMPT_RT (scripts/rt-seqcount.sh runs it in the
 * VM). Two threads share one UDP socket (one source port), so a flow key of one is a flow
 * key of the other:
 *   writer  SCHED_OTHER: sends to DST port 1024, 1025, ... 61023, round and round: each
 *           packet a flow the cache has not seen (60,000 flows > its 4,096 slots), so each
 *           runs xtt_flow_update(), the seqcount's write section, in this thread's process
 *           context (an iptables-nft OUTPUT rule: BHs enabled, preemptible on RT). It
 *           publishes the port before each send.
 *   reader  SCHED_FIFO: sleeps 10-40 us (pseudo-random), wakes from a hard hrtimer and
 *           preempts the writer wherever it is, then sends ONE packet to the writer's
 *           current port: same flow key, same set, so xtt_flow_seen() reads the very
 *           seqcount the writer may be holding odd. With a bare seqcount_t the reader spins
 *           on it and the preempted writer never runs on this CPU again (until RT throttling
 *           takes the CPU from the FIFO class: ~1 s); with seqcount_spinlock_t it takes the
 *           lock, boosts the writer and goes on within microseconds.
 * Each of the reader's sendto() calls is timed (CLOCK_MONOTONIC); one longer than
 * THRESH_MS is a stall. Runs SECONDS of guest time (or stops at the first stall with -1).
 * With WATCHDOG_S > 0 a third thread, SCHED_FIFO 99, checks the reader every 100 ms: after
 * WATCHDOG_S seconds without a finished sendto() it prints the kernel stacks of reader and
 * writer (/proc/self/task/TID/stack) and writes RT_RUNTIME_US (e.g. 950000) to
 * /proc/sys/kernel/sched_rt_runtime_us: with RT throttling off (-1, set by the caller) a
 * spinning reader is a livelock only that throttling can end.
 *   rt-seqcount-probe DST SECONDS THRESH_MS [-1|0] [WATCHDOG_S RT_RUNTIME_US]
 * Prints one RESULT line; exit 0 without a stall, 1 with one, 2 on a usage/setup error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int fd;
static struct sockaddr_in dst;
static atomic_uint cur_port = 1024;
static atomic_int stop;
static atomic_ulong writer_pkts;
static atomic_ulong reader_done;	/* the reader's finished sendto() calls */
static atomic_int writer_tid, reader_tid;
static long long watchdog_s;
static const char *rt_runtime_us;

static void print_stack(const char *who, int tid)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stack", tid);
	f = fopen(path, "r");
	if (!f) {
		printf("WATCHDOG %s stack: cannot open %s: %s\n", who, path, strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f))
		printf("WATCHDOG %s stack: %s", who, line);
	fclose(f);
}

/* SCHED_FIFO 99: preempts the spinning reader; ends a livelock by turning throttling on */
static void *watchdog(void *arg)
{
	unsigned long last = 0, still = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		struct timespec d = { 0, 100000000 };
		unsigned long now;

		clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL);
		now = atomic_load(&reader_done);
		if (now != last) {
			last = now;
			still = 0;
			continue;
		}
		if (++still != (unsigned long)watchdog_s * 10)
			continue;
		printf("WATCHDOG: the FIFO reader has not finished a sendto() for %lld s (RT throttling off): livelock; its kernel stack and the writer's:\n",
		       watchdog_s);
		print_stack("reader", atomic_load(&reader_tid));
		print_stack("writer", atomic_load(&writer_tid));
		{
			FILE *f = fopen("/proc/sys/kernel/sched_rt_runtime_us", "w");

			if (!f || fprintf(f, "%s\n", rt_runtime_us) < 0 || fclose(f)) {
				printf("WATCHDOG: cannot write sched_rt_runtime_us: %s\n", strerror(errno));
				exit(2);
			}
		}
		printf("WATCHDOG: sched_rt_runtime_us set to %s (RT throttling on) to end it\n", rt_runtime_us);
		fflush(stdout);
	}
	return NULL;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *writer(void *arg)
{
	static const char payload[16] = "rt-seqcount";
	struct sockaddr_in a = dst;
	unsigned int i = 0;

	(void)arg;
	atomic_store(&writer_tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&stop)) {
		unsigned int port = 1024 + i % 60000;

		atomic_store(&cur_port, port);
		a.sin_port = htons(port);
		if (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&a, sizeof(a)) < 0 &&
		    errno != ENOBUFS && errno != EAGAIN) {
			perror("rt-seqcount-probe: writer sendto");
			exit(2);
		}
		atomic_fetch_add(&writer_pkts, 1);
		i++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const char payload[16] = "rt-seqcount-rd";
	struct sched_param sp = { .sched_priority = 50 };
	unsigned long long wakeups = 0, over1ms = 0, stalls = 0;
	long long secs, thresh_ns, t_end, worst = 0, first_stall = 0;
	unsigned int rnd = 2463534242u, worst_port = 0;
	int stop_at_first;
	pthread_attr_t attr;
	pthread_t w, wd;

	if (argc < 4) {
		fprintf(stderr, "usage: rt-seqcount-probe DST SECONDS THRESH_MS [-1|0] [WATCHDOG_S RT_RUNTIME_US]\n");
		return 2;
	}
	secs = atoll(argv[2]);
	thresh_ns = atoll(argv[3]) * 1000000LL;
	stop_at_first = argc > 4 && !strcmp(argv[4], "-1");
	if (argc > 6) {
		watchdog_s = atoll(argv[5]);
		rt_runtime_us = argv[6];
		if (watchdog_s <= 0) {
			fprintf(stderr, "rt-seqcount-probe: bad WATCHDOG_S '%s'\n", argv[5]);
			return 2;
		}
	}
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1 || secs <= 0 || thresh_ns <= 0) {
		fprintf(stderr, "rt-seqcount-probe: bad argument: DST '%s' SECONDS '%s' THRESH_MS '%s'\n",
			argv[1], argv[2], argv[3]);
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("rt-seqcount-probe: socket");
		return 2;
	}
	mlockall(MCL_CURRENT | MCL_FUTURE);

	/* the writer: SCHED_OTHER, whatever this process was started with */
	pthread_attr_init(&attr);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_OTHER);
	if (pthread_create(&w, &attr, writer, NULL)) {
		fprintf(stderr, "rt-seqcount-probe: pthread_create failed\n");
		return 2;
	}
	/* the reader: this thread, SCHED_FIFO 50 */
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp)) {
		fprintf(stderr, "rt-seqcount-probe: SCHED_FIFO refused\n");
		return 2;
	}
	atomic_store(&reader_tid, (int)syscall(SYS_gettid));
	if (watchdog_s) {
		struct sched_param top = { .sched_priority = 99 };

		pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
		pthread_attr_setschedparam(&attr, &top);
		if (pthread_create(&wd, &attr, watchdog, NULL)) {
			fprintf(stderr, "rt-seqcount-probe: the SCHED_FIFO 99 watchdog was refused\n");
			return 2;
		}
	}
	/* let the writer start before the first wake-up (sleeping: a FIFO yield would spin) */
	while (atomic_load(&writer_pkts) < 100) {
		struct timespec d = { 0, 1000000 };

		clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL);
	}

	t_end = now_ns() + secs * 1000000000LL;
	while (now_ns() < t_end) {
		struct timespec d = { 0, 0 };
		struct sockaddr_in a = dst;
		long long t0, dt;
		unsigned int port;

		rnd ^= rnd << 13;
		rnd ^= rnd >> 17;
		rnd ^= rnd << 5;
		d.tv_nsec = 10000 + rnd % 30000;
		clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL);
		wakeups++;
		port = atomic_load(&cur_port);
		a.sin_port = htons(port);
		t0 = now_ns();
		if (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&a, sizeof(a)) < 0 &&
		    errno != ENOBUFS && errno != EAGAIN) {
			perror("rt-seqcount-probe: reader sendto");
			return 2;
		}
		dt = now_ns() - t0;
		atomic_fetch_add(&reader_done, 1);
		if (dt > worst) {
			worst = dt;
			worst_port = port;
		}
		if (dt > 1000000)
			over1ms++;
		if (dt > thresh_ns) {
			stalls++;
			if (!first_stall)
				first_stall = dt;
			printf("STALL %llu: the FIFO reader's sendto to port %u took %.1f ms (wake-up %llu, writer packets %lu)\n",
			       stalls, port, dt / 1e6, wakeups, atomic_load(&writer_pkts));
			fflush(stdout);
			if (stop_at_first)
				break;
		}
	}
	atomic_store(&stop, 1);
	pthread_join(w, NULL);
	if (watchdog_s)
		pthread_join(wd, NULL);
	printf("RESULT %s: %llu reader wake-ups, %lu writer packets, worst reader sendto %.3f ms (port %u), %llu over 1 ms, %llu stalls over %lld ms\n",
	       stalls ? "STALL" : "clean", wakeups, atomic_load(&writer_pkts), worst / 1e6, worst_port,
	       over1ms, stalls, thresh_ns / 1000000);
	return stalls ? 1 : 0;
}
