/*
 * emfile NAME: fills its own descriptor table (RLIMIT_NOFILE lowered to
 * 16), then tries open(NAME, O_CREAT | O_EXCL | O_WRONLY, 0444) and says
 * what it returned and whether NAME exists afterwards. Real root's open
 * takes the descriptor before it makes the file (fs/open.c:
 * do_sys_openat2() calls get_unused_fd_flags() first), so it fails with
 * EMFILE and leaves no file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: emfile NAME\n");
        return 2;
    }
    struct rlimit lim = { 16, 16 };
    if (setrlimit(RLIMIT_NOFILE, &lim) < 0) {
        perror("setrlimit");
        return 2;
    }
    while (open("/dev/null", O_RDONLY) >= 0)
        ;
    if (errno != EMFILE) {
        perror("filling the descriptor table");
        return 2;
    }
    int fd = open(argv[1], O_CREAT | O_EXCL | O_WRONLY, 0444);
    int err = errno;
    struct stat st;
    int exists = lstat(argv[1], &st) == 0;
    printf("open %s, %s\n", fd < 0 ? strerror(err) : "succeeded",
           exists ? "the file exists" : "no file");
    return 0;
}
