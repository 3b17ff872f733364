/*
 * A workload with seccomp filters of its own: a plain filter must install
 * under fr; a notification listener cannot (fr's holds the one a process
 * tree may have) and fails with EBUSY.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog prog = { 1, allow };
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
    printf("plain filter: %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "0");
    r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    printf("listener: %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "0");
    r = syscall(SYS_getuid);
    printf("getuid after: %ld\n", r);
    return 0;
}
