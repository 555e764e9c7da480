// test/vm/resched.test.ts's latency probe: pins itself to one CPU, sleeps 1 ms in a loop
// (clock_nanosleep, CLOCK_MONOTONIC, relative) and records how late each wake-up was.
//   wakeprobe CPU
//   wakeprobe send COUNT      (the test's filler: one 1-byte UDP datagram to port 9 of each
//                             of 10.1.0.0 + 0 .. COUNT-1, from one socket; errors ignored)
// Prints "ready" once pinned; on SIGTERM or SIGINT (or after 300 s) it prints one line:
//   samples=N max_us=M over10ms=A over50ms=B
// A task that keeps the same CPU in the kernel without a rescheduling point delays the
// probe's wake-up by as long as it runs (CONFIG_PREEMPT_NONE/VOLUNTARY: the kernel is not
// preempted, only the return to user space or cond_resched() lets the probe in).
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int send_fan(long count)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	long i, ok = 0;

	if (fd < 0) {
		perror("wakeprobe: socket");
		return 1;
	}
	for (i = 0; i < count; i++) {
		sin.sin_addr.s_addr = htonl(0x0a010000u + (unsigned int)i);
		if (sendto(fd, "x", 1, 0, (struct sockaddr *)&sin, sizeof(sin)) == 1)
			ok++;
	}
	printf("sent=%ld of %ld\n", ok, count);
	return 0;
}

int main(int argc, char **argv)
{
	const struct timespec ms = { 0, 1000000 };
	struct sigaction sa;
	long long start, t0, late, max = 0, n = 0, over10 = 0, over50 = 0;
	cpu_set_t set;

	if (argc == 3 && strcmp(argv[1], "send") == 0)
		return send_fan(atol(argv[2]));
	if (argc != 2) {
		fprintf(stderr, "usage: wakeprobe CPU\n");
		return 2;
	}
	CPU_ZERO(&set);
	CPU_SET(atoi(argv[1]), &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "wakeprobe: CPU %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	start = now_ns();
	while (!stop && now_ns() - start < 300LL * 1000000000LL) {
		t0 = now_ns();
		if (clock_nanosleep(CLOCK_MONOTONIC, 0, &ms, NULL))
			continue; /* a signal: the sleep was cut short, not late */
		late = now_ns() - t0 - 1000000;
		n++;
		if (late > max)
			max = late;
		if (late > 10000000)
			over10++;
		if (late > 50000000)
			over50++;
	}
	printf("samples=%lld max_us=%lld over10ms=%lld over50ms=%lld\n", n, max / 1000, over10, over50);
	return 0;
}
