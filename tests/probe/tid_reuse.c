/*
 * tid_reuse: a task that drops to uid 1000 ends; a new task is then given
 * its very number (through /proc/sys/kernel/ns_last_pid, which the root of
 * the pid namespace's owning user namespace may write: kernel/pid.c,
 * pid_ns_ctl_handler()) and prints the uid it sees, which must be real
 * root's 0: the credentials died with the task. Once for a process (a
 * child that calls setuid and is reaped), once for a thread (one that
 * calls the raw, per-thread setuid and is joined).
 *
 * Prints "process: uid N" and "thread: uid N", or why the number could not
 * be had again (exit 2).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long gettid_(void) { return syscall(SYS_gettid); }

/* The next pid the kernel hands out in this namespace is `next`, if free
 * (alloc_pid() starts the search after the last one). */
static void next_pid(long next)
{
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld", next - 1);
    if (fd < 0 || write(fd, buf, n) != n) {
        perror("writing /proc/sys/kernel/ns_last_pid");
        exit(2);
    }
    close(fd);
}

static void process(void)
{
    pid_t first = fork();
    if (first == 0)
        _exit(syscall(SYS_setuid, 1000) == 0 && syscall(SYS_getuid) == 1000 ? 0 : 1);
    int status;
    if (waitpid(first, &status, 0) != first || status != 0) {
        printf("process: the first child could not drop to 1000 (status %d)\n", status);
        exit(2);
    }
    /* fr's own threads share the namespace and may take the number first. */
    for (int tries = 0; tries < 100; tries++) {
        next_pid(first);
        pid_t again = fork();
        if (again == 0) {
            if (getpid() == first)
                printf("process: uid %ld\n", syscall(SYS_getuid));
            fflush(stdout);
            _exit(0);
        }
        waitpid(again, &status, 0);
        if (again == first)
            return;
    }
    printf("process: pid %d never came back\n", first);
    exit(2);
}

static long first_tid;

static void *drop(void *arg)
{
    (void)arg;
    first_tid = gettid_();
    /* The raw call changes this thread alone (glibc's setuid() would
     * change every thread, nptl's setxid broadcast). */
    if (syscall(SYS_setuid, 1000) != 0 || syscall(SYS_getuid) != 1000)
        first_tid = -1;
    return NULL;
}

static void *look(void *arg)
{
    (void)arg;
    if (gettid_() == first_tid)
        printf("thread: uid %ld\n", syscall(SYS_getuid));
    fflush(stdout);
    return (void *)gettid_();
}

/* One round: a thread drops to 1000 and ends, and a new thread is made
 * with its tid; 0 if it got it (and printed what it saw), -1 if another
 * task (one of fr's threads, which share the namespace) took the number. */
static int thread_round(void)
{
    pthread_t t;
    pthread_create(&t, NULL, drop, NULL);
    pthread_join(t, NULL);
    if (first_tid < 0) {
        printf("thread: the first thread could not drop to 1000\n");
        exit(2);
    }
    /* pthread_join() returns once the thread cleared its tid, before the
     * kernel has released it (kernel/exit.c: do_exit()). */
    char task[64];
    snprintf(task, sizeof task, "/proc/self/task/%ld", first_tid);
    while (access(task, F_OK) == 0)
        sched_yield();
    char other[64];
    snprintf(other, sizeof other, "/proc/%ld", first_tid);
    for (int tries = 0; tries < 100; tries++) {
        next_pid(first_tid);
        void *got;
        pthread_create(&t, NULL, look, NULL);
        pthread_join(t, &got);
        if ((long)got == first_tid)
            return 0;
        if (access(other, F_OK) == 0)
            return -1;
        usleep(1000);
    }
    return -1;
}

static void thread(void)
{
    for (int round = 0; round < 20; round++)
        if (thread_round() == 0)
            return;
    printf("thread: tid %ld never came back\n", first_tid);
    exit(2);
}

int main(void)
{
    process();
    thread();
    return 0;
}
