/*
 * sysbench OP N DIR: makes N calls of OP on files prepared in DIR and
 * prints the elapsed nanoseconds of the timed loop alone (start-up and
 * preparation are not counted). The benchmark harness runs it natively,
 * under fr and under the host's fakeroot, and compares.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static long long now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s OP N DIR\n", argv[0]);
        return 2;
    }
    const char *op = argv[1];
    long n = atol(argv[2]);
    if (chdir(argv[3]) < 0) {
        perror(argv[3]);
        return 2;
    }
    int fd = open("f", O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("f");
        return 2;
    }
    unlink("l");
    if (symlink("f", "l") < 0) {
        perror("l");
        return 2;
    }
    uid_t uid = getuid();
    gid_t gid = getgid();
    struct stat st;
    long long start = now();
    long fails = 0;
    for (long i = 0; i < n; i++) {
        long r;
        if (!strcmp(op, "getpid"))
            r = syscall(SYS_getpid) > 0 ? 0 : -1;
        else if (!strcmp(op, "stat"))
            r = syscall(SYS_stat, "f", &st);
        else if (!strcmp(op, "lstat"))
            r = syscall(SYS_lstat, "l", &st);
        else if (!strcmp(op, "fstat"))
            r = syscall(SYS_fstat, fd, &st);
        else if (!strcmp(op, "newfstatat"))
            r = syscall(SYS_newfstatat, AT_FDCWD, "f", &st, 0);
        else if (!strcmp(op, "statx")) {
            struct statx sx;
            r = statx(AT_FDCWD, "f", 0, STATX_BASIC_STATS, &sx);
        } else if (!strcmp(op, "chown"))
            r = chown("f", uid, gid);
        else if (!strcmp(op, "fchown"))
            r = fchown(fd, uid, gid);
        else if (!strcmp(op, "lchown"))
            r = lchown("l", uid, gid);
        else if (!strcmp(op, "mknod-fifo")) {
            char name[32];
            snprintf(name, sizeof name, "p%ld", i);
            r = mknod(name, S_IFIFO | 0644, 0);
        } else if (!strcmp(op, "setxattr-user"))
            r = setxattr("f", "user.bench", "v", 1, 0);
        else if (!strcmp(op, "getuid"))
            r = getuid() == uid ? 0 : -1;
        else if (!strcmp(op, "open-close")) {
            int f = open("f", O_RDONLY | O_CLOEXEC);
            r = f < 0 ? -1 : close(f);
        } else if (!strcmp(op, "open-write-close")) {
            int f = open("f", O_WRONLY | O_CLOEXEC);
            r = f < 0 ? -1 : close(f);
        } else {
            fprintf(stderr, "unknown op %s\n", op);
            return 2;
        }
        fails += r < 0;
    }
    long long elapsed = now() - start;
    if (!strcmp(op, "mknod-fifo"))
        for (long i = 0; i < n; i++) {
            char name[32];
            snprintf(name, sizeof name, "p%ld", i);
            unlink(name);
        }
    if (fails) {
        fprintf(stderr, "%s: %ld of %ld calls failed\n", op, fails, n);
        return 1;
    }
    printf("%lld\n", elapsed);
    return 0;
}
