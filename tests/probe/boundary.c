/* Attacks on fr's boundaries, run as the workload (tests/escape.rs).
 * Each subcommand makes one attempt with raw system calls and prints one
 * line: "NAME ok" when the call succeeded, "NAME ERRNO-NAME" when it
 * failed, so that the test can tell "refused" from "went through".
 *
 *   ptrace PID         PTRACE_ATTACH to PID (then detaches)
 *   mem PID            open /proc/PID/mem for writing
 *   getfd PID FD       pidfd_open(PID) then pidfd_getfd(FD)
 *   vmread PID         process_vm_readv of one byte at PID's stack
 *   kill PID SIG       kill(PID, SIG)
 *   iouring            io_uring_setup(1, ...)
 *   fchmod FD MODE     fchmod(FD, MODE, octal)
 *   fchown FD UID GID  fchown(FD, UID, GID)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name_of(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ESRCH: return "ESRCH";
	case ENOSYS: return "ENOSYS";
	case EINVAL: return "EINVAL";
	case EBADF: return "EBADF";
	case ENOENT: return "ENOENT";
	case EFAULT: return "EFAULT";
	default: return strerror(e);
	}
}

static int report(const char *what, long rc)
{
	if (rc < 0)
		printf("%s %s\n", what, name_of(errno));
	else
		printf("%s ok\n", what);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: boundary ATTACK ARGS...\n");
		return 2;
	}
	const char *op = argv[1];
	if (!strcmp(op, "ptrace") && argc == 3) {
		pid_t pid = atoi(argv[2]);
		long rc = ptrace(PTRACE_ATTACH, pid, 0, 0);
		int e = errno;
		if (rc == 0) {
			waitpid(pid, NULL, __WALL);
			ptrace(PTRACE_DETACH, pid, 0, 0);
		}
		errno = e;
		return report("ptrace", rc);
	}
	if (!strcmp(op, "mem") && argc == 3) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%s/mem", argv[2]);
		return report("mem", open(path, O_RDWR | O_CLOEXEC));
	}
	if (!strcmp(op, "getfd") && argc == 4) {
		long pidfd = syscall(SYS_pidfd_open, atoi(argv[2]), 0);
		if (pidfd < 0)
			return report("getfd", pidfd);
		return report("getfd", syscall(SYS_pidfd_getfd, pidfd, atoi(argv[3]), 0));
	}
	if (!strcmp(op, "vmread") && argc == 3) {
		char byte, stat[512];
		unsigned long start_stack = 0;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%s/stat", argv[2]);
		FILE *f = fopen(path, "r");
		if (f && fgets(stat, sizeof(stat), f)) {
			char *p = strrchr(stat, ')');
			/* Field 28, start of stack, counted from field 3 after ')'. */
			for (int field = 2; p && field < 28; field++)
				p = strchr(p + 1, ' ');
			if (p)
				start_stack = strtoul(p + 1, NULL, 10);
		}
		struct iovec local = { &byte, 1 }, remote = { (void *)start_stack, 1 };
		return report("vmread", process_vm_readv(atoi(argv[2]), &local, 1, &remote, 1, 0));
	}
	if (!strcmp(op, "kill") && argc == 4)
		return report("kill", kill(atoi(argv[2]), atoi(argv[3])));
	if (!strcmp(op, "iouring") && argc == 2) {
		char params[120];
		memset(params, 0, sizeof(params));
		return report("iouring", syscall(425, 1, params));
	}
	if (!strcmp(op, "fchmod") && argc == 4)
		return report("fchmod", fchmod(atoi(argv[2]), strtoul(argv[3], NULL, 8)));
	if (!strcmp(op, "fchown") && argc == 5)
		return report("fchown", fchown(atoi(argv[2]), atoi(argv[3]), atoi(argv[4])));
	fprintf(stderr, "boundary: unknown attack or arguments: %s\n", op);
	return 2;
}
