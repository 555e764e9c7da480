// LD_PRELOAD shim for test/vm/faults.test.ts: fails the N-th fault-injection site
// (Documentation/fault-injection, /proc/thread-self/fail-nth) of the ONE system call that
// makes iptables' rules in the kernel, and of nothing else of the process:
//   iptables-legacy / ip6tables-legacy: setsockopt(SOL_IP / SOL_IPV6, *_SO_SET_REPLACE)
//   iptables-nft / ip6tables-nft:       the first sendmsg() on a netlink socket (the batch;
//                                       nfnetlink runs it in the sender's context)
// Environment: FI_NTH=N (N >= 1) arms it; FI_OUT=FILE gets one line appended per armed call:
//   "call=setsockopt|sendmsg res=R errno=E left=L"  (left 0: the N-th site was reached and
//   failed; left > 0: the call passed fewer than N sites, nothing was failed).
// fail-nth is per task and counts from the write: the file is opened before (an open
// allocates), armed right before the call, read and disarmed (0) right after it.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SO_SET_REPLACE 64 /* IPT_SO_SET_REPLACE == IP6T_SO_SET_REPLACE */

static int nth_fd = -1;
static int armed_calls;

static int want(void)
{
	const char *n = getenv("FI_NTH");

	if (!n || !*n || armed_calls)
		return 0;
	if (nth_fd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/task/%d/fail-nth", (int)gettid());
		nth_fd = open(path, O_RDWR | O_CLOEXEC);
		if (nth_fd < 0) {
			fprintf(stderr, "failnth: cannot open %s: %s\n", path, strerror(errno));
			exit(99);
		}
	}
	return 1;
}

static void arm(void)
{
	const char *n = getenv("FI_NTH");

	armed_calls++;
	if (pwrite(nth_fd, n, strlen(n), 0) < 0) {
		fprintf(stderr, "failnth: write %s: %s\n", n, strerror(errno));
		exit(99);
	}
}

/*
 * The read and the disarm are fault sites themselves (CONFIG_FAULT_INJECTION_USERCOPY: the
 * read's copy_to_user(), the write's copy_from_user()) when the call left fail-nth above 0:
 *   left 1: the read's copy is the N-th site: it fails (EFAULT), which disarms (fail-nth 0);
 *   left 2: the read returns 2, the write's copy is the N-th site: EFAULT, disarmed too;
 *   else:   both succeed.
 * Either way fail-nth must read 0 afterwards (checked: a read of 0 is no fault site).
 */
static void report(const char *call, long res, int err)
{
	char buf[32] = "";
	const char *out = getenv("FI_OUT");
	ssize_t r = pread(nth_fd, buf, sizeof(buf) - 1, 0);
	int left;

	if (r > 0) {
		buf[r] = '\0';
		left = atoi(buf);
	} else if (r < 0 && errno == EFAULT) {
		left = 1;
	} else {
		fprintf(stderr, "failnth: read fail-nth: %s\n", r < 0 ? strerror(errno) : "empty");
		exit(99);
	}
	if (pwrite(nth_fd, "0", 1, 0) < 0 && errno != EFAULT) {
		fprintf(stderr, "failnth: disarm fail-nth: %s\n", strerror(errno));
		exit(99);
	}
	r = pread(nth_fd, buf, sizeof(buf) - 1, 0);
	if (r <= 0 || atoi(buf) != 0) {
		fprintf(stderr, "failnth: fail-nth still armed after the call (left %d)\n", left);
		exit(99);
	}
	if (out) {
		FILE *f = fopen(out, "a");

		if (f) {
			fprintf(f, "call=%s res=%ld errno=%d left=%d\n", call, res, err, left);
			fclose(f);
		}
	}
}

int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	static int (*real)(int, int, int, const void *, socklen_t);
	int res, err;

	if (!real)
		real = dlsym(RTLD_NEXT, "setsockopt");
	if (opt != SO_SET_REPLACE || (level != 0 && level != 41) || !want())
		return real(fd, level, opt, val, len);
	arm();
	res = real(fd, level, opt, val, len);
	err = errno;
	report("setsockopt", res, res < 0 ? err : 0);
	errno = err;
	return res;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, const struct msghdr *, int);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ssize_t res;
	int err;

	if (!real)
		real = dlsym(RTLD_NEXT, "sendmsg");
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) || ss.ss_family != AF_NETLINK || !want())
		return real(fd, msg, flags);
	arm();
	res = real(fd, msg, flags);
	err = errno;
	report("sendmsg", res, res < 0 ? err : 0);
	errno = err;
	return res;
}
