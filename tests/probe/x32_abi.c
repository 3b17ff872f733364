/* Whether the running kernel serves the x32 system call ABI: an x86_64
 * program makes getpid with __X32_SYSCALL_BIT. A kernel without
 * CONFIG_X86_X32_ABI (or booted with it off) answers ENOSYS
 * (arch/x86/entry/common.c: do_syscall_x32()). Prints "x32 yes" or
 * "x32 no (why)". */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define X32_SYSCALL_BIT 0x40000000

int main(void) {
    long r = syscall(X32_SYSCALL_BIT | SYS_getpid);
    if (r == getpid())
        printf("x32 yes\n");
    else
        printf("x32 no (%s)\n", r < 0 ? strerror(errno) : "another answer");
    return 0;
}
