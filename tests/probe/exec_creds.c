/*
 * exec_creds WORKDIR: a process that drops to uid 1000 and executes
 * set-user-id-root programs: one the kernel cannot run (ENOEXEC), which
 * must change nothing, and one it runs, whose effective uid is then 0 and
 * which reads a file only root may read.
 * Prints what it sees at each step, for real root and fr to be compared.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void ids(const char *when)
{
    unsigned r, e, s;
    syscall(SYS_getresuid, &r, &e, &s);
    printf("%s: uid=%u/%u/%u\n", when, r, e, s);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "child")) {
        ids("after exec of set-user-id root");
        int fd = open("secret", O_RDONLY);
        printf("open(secret) as euid 0: %s\n", fd < 0 ? strerrorname_np(errno) : "ok");
        return 0;
    }
    if (argc != 2 || chdir(argv[1]) < 0) {
        fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
        return 2;
    }
    int bad = open("suid-bad", O_CREAT | O_WRONLY | O_TRUNC, 0755);
    if (bad < 0 || write(bad, "\x01\x02garbage", 9) != 9 || fchmod(bad, 04755) < 0)
        return 3;
    close(bad);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        return 4;
    self[n] = 0;
    int in = open(self, O_RDONLY), out = open("suid-ok", O_CREAT | O_WRONLY | O_TRUNC, 0755);
    char buf[65536];
    for (ssize_t r; (r = read(in, buf, sizeof buf)) > 0;)
        if (write(out, buf, r) != r)
            return 5;
    if (fchmod(out, 04755) < 0)
        return 6;
    close(in);
    close(out);
    int secret = open("secret", O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (secret < 0)
        return 7;
    close(secret);
    ids("start");
    syscall(SYS_setresuid, 1000, 1000, 1000);
    ids("dropped");
    errno = 0;
    secret = open("secret", O_RDONLY);
    printf("open(secret) as uid 1000: %s\n", secret < 0 ? strerrorname_np(errno) : "ok");
    char *bad_argv[] = {"suid-bad", NULL};
    errno = 0;
    execv("./suid-bad", bad_argv);
    printf("exec suid-bad: %s\n", strerrorname_np(errno));
    ids("after the failed exec");
    char *ok_argv[] = {"suid-ok", "child", NULL};
    execv("./suid-ok", ok_argv);
    printf("exec suid-ok failed: %s\n", strerrorname_np(errno));
    return 1;
}
