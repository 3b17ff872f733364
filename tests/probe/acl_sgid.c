/* A caller outside a directory's group, without CAP_FSETID, sets an access
 * ACL on it, which drops the set-group-id bit (posix_acl_update_mode());
 * then root makes a subdirectory, which must not inherit the bit.
 * Prints "setxattr RC", then the octal modes of DIR and DIR/sub. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: acl_sgid DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	pid_t pid = fork();
	if (pid == 0) {
		struct { uint32_t version; int pid; } hdr = {0x20080522, 0};
		struct { uint32_t e, p, i; } caps[2];
		memset(caps, 0, sizeof caps);
		syscall(SYS_capget, &hdr, caps);
		caps[0].e &= ~(1u << 4); /* CAP_FSETID */
		if (syscall(SYS_capset, &hdr, caps) || syscall(SYS_setgroups, 0, NULL) ||
		    syscall(SYS_setresgid, 5, 5, 5)) {
			perror("dropping CAP_FSETID and the group");
			_exit(1);
		}
		/* u::rwx g::rwx o::r-x, in the kernel's xattr form. */
		struct { uint16_t tag, perm; uint32_t id; } __attribute__((packed)) e[3] = {
			{0x01, 7, 0xffffffff}, {0x04, 7, 0xffffffff}, {0x20, 5, 0xffffffff}};
		char value[4 + sizeof e];
		uint32_t version = 2;
		memcpy(value, &version, 4);
		memcpy(value + 4, e, sizeof e);
		int rc = setxattr(dir, "system.posix_acl_access", value, sizeof value, 0);
		printf("setxattr %d %s\n", rc, rc ? strerror(errno) : "-");
		fflush(stdout);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	char sub[4096];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	if (mkdir(sub, 0755) != 0) {
		perror(sub);
		return 1;
	}
	struct stat a, b;
	stat(dir, &a);
	stat(sub, &b);
	printf("dir %o\nsub %o\n", a.st_mode & 07777, b.st_mode & 07777);
	return 0;
}
