/* An O_TMPFILE made as fsuid 1000 and closed unnamed, then N files made
 * as root in the same directory: prints the owner of each, which must be
 * 0:0 (a new file never takes the record of a freed inode number).
 * usage: tmpfile DIR N */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tmpfile DIR N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    char path[4096];
    for (int round = 0; round < n; round++) {
        setfsgid(100);
        setfsuid(1000);
        int fd = open(argv[1], O_TMPFILE | O_RDWR, 0600);
        if (fd < 0) {
            perror("open(O_TMPFILE)");
            return 1;
        }
        close(fd);
        setfsuid(0);
        setfsgid(0);
        snprintf(path, sizeof path, "%s/f%d", argv[1], round);
        fd = open(path, O_CREAT | O_WRONLY, 0644);
        if (fd < 0) {
            perror(path);
            return 1;
        }
        close(fd);
        struct stat st;
        if (stat(path, &st) != 0) {
            perror(path);
            return 1;
        }
        if (st.st_uid != 0 || st.st_gid != 0)
            printf("%s %u:%u\n", path, st.st_uid, st.st_gid);
    }
    printf("done\n");
    return 0;
}
