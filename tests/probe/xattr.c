/*
 * xattr set PATH NAME HEXVALUE | xattr get PATH NAME
 * A static helper for images without attr or libcap tools.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

int main(int argc, char **argv)
{
    unsigned char buf[4096];
    if (argc == 5 && !strcmp(argv[1], "set")) {
        size_t n = strlen(argv[4]) / 2;
        for (size_t i = 0; i < n && i < sizeof buf; i++)
            sscanf(argv[4] + 2 * i, "%2hhx", &buf[i]);
        if (lsetxattr(argv[2], argv[3], buf, n, 0) < 0) {
            perror("lsetxattr");
            return 1;
        }
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "get")) {
        ssize_t n = lgetxattr(argv[2], argv[3], buf, sizeof buf);
        if (n < 0) {
            printf("%s\n", strerror(errno));
            return 0;
        }
        for (ssize_t i = 0; i < n; i++)
            printf("%02x", buf[i]);
        printf("\n");
        return 0;
    }
    fprintf(stderr, "usage: %s set PATH NAME HEX | get PATH NAME\n", argv[0]);
    return 2;
}
