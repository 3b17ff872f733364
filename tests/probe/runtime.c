/* The ownership calls a build makes, through whatever libc this is built
 * with (musl-gcc -static; gcc -mx32 -static), and two raw ones: one line
 * per call with its result, errno and what stat then shows. runtime.go
 * makes the same calls through Go's syscall package and prints the same
 * lines. Usage: runtime DIR (DIR must not exist). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

static void result(const char *what, long r) {
    if (r < 0)
        printf("%s = -1 errno %d\n", what, errno);
    else
        printf("%s = 0\n", what);
}

static void show(const char *what, int r, const struct stat *st) {
    if (r != 0) {
        printf("%s = -1 errno %d\n", what, errno);
        return;
    }
    printf("%s %u:%u %o nlink %u rdev %u:%u\n", what, (unsigned)st->st_uid, (unsigned)st->st_gid,
           (unsigned)st->st_mode, (unsigned)st->st_nlink, major(st->st_rdev), minor(st->st_rdev));
}

static void stat_path(const char *name) {
    struct stat st;
    char what[64];
    snprintf(what, sizeof what, "stat %s", name);
    show(what, stat(name, &st), &st);
}

static void lstat_path(const char *name) {
    struct stat st;
    char what[64];
    snprintf(what, sizeof what, "lstat %s", name);
    show(what, lstat(name, &st), &st);
}

static uint32_t u32(const unsigned char *b, int off) {
    return b[off] | b[off + 1] << 8 | b[off + 2] << 16 | (uint32_t)b[off + 3] << 24;
}

/* Raw statx(2), read from struct statx's layout (include/uapi/linux/stat.h):
 * stx_uid at 20, stx_gid at 24, stx_mode (16 bits) at 28, stx_rdev_major
 * at 128, stx_rdev_minor at 132. */
static void statx_path(const char *name) {
    unsigned char buf[256];
    memset(buf, 0, sizeof buf);
    long r = syscall(SYS_statx, AT_FDCWD, name, AT_SYMLINK_NOFOLLOW, 0x7ff /* BASIC_STATS */, buf);
    if (r != 0) {
        printf("statx %s = -1 errno %d\n", name, errno);
        return;
    }
    printf("statx %s %u:%u %o rdev %u:%u\n", name, u32(buf, 20), u32(buf, 24),
           (unsigned)(buf[28] | buf[29] << 8), u32(buf, 128), u32(buf, 132));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: runtime DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    umask(022);
    if (mkdir(argv[1], 0755) != 0 || chdir(argv[1]) != 0) {
        perror(argv[1]);
        return 1;
    }
    printf("ids %u %u %u %u\n", getuid(), geteuid(), getgid(), getegid());
    int fd = open("f", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    result("open f", fd);
    result("chown f 123 456", chown("f", 123, 456));
    stat_path("f");
    result("symlink f l", symlink("f", "l"));
    result("lchown l 7 8", lchown("l", 7, 8));
    lstat_path("l");
    stat_path("l");
    result("fchown f 9 -1", fchown(fd, 9, -1));
    struct stat st;
    show("fstat f", fstat(fd, &st), &st);
    result("chmod f 4755", chmod("f", 04755));
    result("chown f 10 -1", chown("f", 10, -1));
    stat_path("f");
    result("chown f 70000 70000", chown("f", 70000, 70000));
    stat_path("f");
    result("fchownat f \"\" 11 12 AT_EMPTY_PATH",
           syscall(SYS_fchownat, fd, "", 11, 12, AT_EMPTY_PATH));
    show("fstat f", fstat(fd, &st), &st);
    result("link f h", link("f", "h"));
    stat_path("h");
    result("mknod c char 1:3", mknod("c", S_IFCHR | 0640, makedev(1, 3)));
    stat_path("c");
    result("chown c 5 6", chown("c", 5, 6));
    statx_path("c");
    result("mknod b block 8:1", mknod("b", S_IFBLK | 0600, makedev(8, 1)));
    stat_path("b");
    result("mknod p fifo", mknod("p", S_IFIFO | 0644, 0));
    stat_path("p");
    result("mknod s socket", mknod("s", S_IFSOCK | 0644, 0));
    stat_path("s");
    result("mknod c again", mknod("c", S_IFCHR | 0640, makedev(1, 3)));
    result("chown missing 1 1", chown("missing", 1, 1));
    result("mkdir d 0700", mkdir("d", 0700));
    result("chown d 1000 1000", chown("d", 1000, 1000));
    stat_path("d");
    statx_path("d");
    printf("== end\n");
    return 0;
}
