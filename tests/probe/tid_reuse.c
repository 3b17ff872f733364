/*
 * tid_reuse: a task that drops to uid 1000 ends; a new task is then given
 * its very number (reuse.h) and prints the uid it sees, which must be
 * real root's 0: the credentials died with the task. Once for a process
 * (a child that calls setuid and is reaped), once for a thread (one that
 * calls the raw, per-thread setuid and is joined).
 *
 * Prints "process: uid N" and "thread: uid N", or why the number could not
 * be had again (exit 2).
 */
#include "reuse.h"

/* The raw call changes this thread alone (glibc's setuid() would change
 * every thread, nptl's setxid broadcast). */
static int drop(void)
{
    return syscall(SYS_setuid, 1000) == 0 && syscall(SYS_getuid) == 1000 ? 0 : 1;
}

static void process_look(void) { printf("process: uid %ld\n", syscall(SYS_getuid)); }

static void thread_look(void) { printf("thread: uid %ld\n", syscall(SYS_getuid)); }

int main(void)
{
    reuse_pid(drop, process_look);
    reuse_tid(drop, thread_look);
    return 0;
}
