/* sockpoke PATH MESSAGE: connects to the SOCK_SEQPACKET unix socket PATH,
 * sends MESSAGE, and prints what comes back: "reply: TEXT", "closed", or
 * the step that failed and its errno name. For the instance tests: a
 * workload that reaches an instance's monitor socket must be refused. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *name(int e) {
    switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ENOTDIR: return "ENOTDIR";
    default: return strerror(e);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: sockpoke PATH MESSAGE\n");
        return 2;
    }
    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        printf("connect %s\n", name(errno));
        return 0;
    }
    if (send(s, argv[2], strlen(argv[2]), MSG_NOSIGNAL) < 0) {
        printf("send %s\n", name(errno));
        return 0;
    }
    char buf[4096];
    ssize_t n = recv(s, buf, sizeof buf - 1, 0);
    if (n < 0) {
        printf("recv %s\n", name(errno));
    } else if (n == 0) {
        printf("closed\n");
    } else {
        buf[n] = 0;
        printf("reply: %s\n", buf);
    }
    return 0;
}
