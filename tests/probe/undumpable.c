/* A workload that makes itself undumpable (PR_SET_DUMPABLE 0), as
 * OpenSSH and some daemons do, then changes and reads a file's owner.
 * Prints "chown RC ERRNO" and "stat RC UID:GID". */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat st;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: undumpable FILE\n");
		return 2;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		perror("prctl");
		return 1;
	}
	rc = chown(argv[1], 123, 456);
	printf("chown %d %s\n", rc, rc ? strerror(errno) : "-");
	memset(&st, 0, sizeof(st));
	rc = stat(argv[1], &st);
	printf("stat %d %s %u:%u\n", rc, rc ? strerror(errno) : "-", st.st_uid, st.st_gid);
	return 0;
}
