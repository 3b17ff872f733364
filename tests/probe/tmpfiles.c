/*
 * tmpfiles: makes N unnamed files (O_TMPFILE) in DIR with mode 0400, which
 * fr makes and records itself (the kernel's file would keep the owner's
 * write), writes a byte to each and closes it; says how many failed. fr
 * holds such files open so that their inode numbers are not reused while
 * their records stand (supervisor/src/handlers/create.rs, pin); thousands
 * of them must not run fr out of descriptors.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tmpfiles DIR N\n");
        return 2;
    }
    int n = atoi(argv[2]), failed = 0;
    for (int i = 0; i < n; i++) {
        int fd = open(argv[1], O_TMPFILE | O_RDWR, 0400);
        if (fd < 0 || write(fd, "x", 1) != 1)
            failed++;
        if (fd >= 0)
            close(fd);
    }
    printf("%d of %d failed\n", failed, n);
    return failed != 0;
}
