/*
 * reuse.h: a dead task's number given to a new one, for the probes that
 * check that fr forgets what belonged to the dead (tid_reuse.c: fake
 * credentials; fd_reuse.c: descriptors reached through a kept pidfd).
 *
 * The next number comes from /proc/sys/kernel/ns_last_pid, which the root
 * of the pid namespace's owning user namespace may write (kernel/pid.c,
 * pid_ns_ctl_handler()); fr's own threads share the namespace and may take
 * the number first, so each step is tried again a bounded number of times.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
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

/* A child runs `first` (0: it did what it had to) and is reaped; then a
 * child is made with its pid and runs `again`. Exits 2 if `first` failed
 * or the pid never came back. */
static void reuse_pid(int (*first)(void), void (*again)(void))
{
    pid_t dead = fork();
    if (dead == 0)
        _exit(first());
    int status;
    if (waitpid(dead, &status, 0) != dead || status != 0) {
        printf("process: the first child failed (status %d)\n", status);
        exit(2);
    }
    for (int tries = 0; tries < 100; tries++) {
        next_pid(dead);
        pid_t child = fork();
        if (child == 0) {
            if (getpid() == dead)
                again();
            fflush(stdout);
            _exit(0);
        }
        waitpid(child, &status, 0);
        if (child == dead)
            return;
    }
    printf("process: pid %d never came back\n", dead);
    exit(2);
}

static long first_tid;
static int (*thread_first)(void);
static void (*thread_again)(void);

static void *run_first(void *arg)
{
    (void)arg;
    first_tid = gettid_();
    if (thread_first() != 0)
        first_tid = -1;
    return NULL;
}

static void *run_again(void *arg)
{
    (void)arg;
    if (gettid_() == first_tid)
        thread_again();
    fflush(stdout);
    return (void *)gettid_();
}

/* One round: a thread runs `first` and ends, and a new thread is made with
 * its tid and runs `again`; 0 if it got it, -1 if another task took the
 * number. */
static int tid_round(void)
{
    pthread_t t;
    pthread_create(&t, NULL, run_first, NULL);
    pthread_join(t, NULL);
    if (first_tid < 0) {
        printf("thread: the first thread failed\n");
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
        pthread_create(&t, NULL, run_again, NULL);
        pthread_join(t, &got);
        if ((long)got == first_tid)
            return 0;
        if (access(other, F_OK) == 0)
            return -1;
        usleep(1000);
    }
    return -1;
}

/* As reuse_pid, for a thread of this process: `first` in a thread that
 * ends, `again` in a new thread given its tid. */
static void reuse_tid(int (*first)(void), void (*again)(void))
{
    thread_first = first;
    thread_again = again;
    for (int round = 0; round < 20; round++)
        if (tid_round() == 0)
            return;
    printf("thread: tid %ld never came back\n", first_tid);
    exit(2);
}
