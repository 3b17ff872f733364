/*
 * fd_reuse: fr reaches a target's descriptors through a pidfd it keeps per
 * thread (supervisor/src/descriptors.rs). A task that gave the file behind
 * its descriptor 5 to 7:7 ends; a new task is then given its very number
 * (through /proc/sys/kernel/ns_last_pid, as tid_reuse.c does) with another
 * file, one root made and left root's, as its descriptor 5, and prints the
 * owner fstat(5) shows: real root's 0, never the dead task's file's 7. Once
 * for a process, once for a thread with a descriptor table of its own
 * (unshare(CLONE_FILES)).
 *
 * Prints "process: uid N" and "thread: uid N", or why the number could not
 * be had again (exit 2).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long gettid_(void) { return syscall(SYS_gettid); }

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

/* Opens `name` as descriptor 5. */
static void open_as_5(const char *name)
{
    int fd = open(name, O_RDONLY | O_CREAT, 0644);
    if (fd < 0 || dup2(fd, 5) != 5) {
        perror(name);
        exit(2);
    }
    close(fd);
}

static long owner_of_5(void)
{
    struct stat st;
    if (syscall(SYS_fstat, 5, &st) != 0)
        return -1;
    return st.st_uid;
}

/* The first task: its descriptor 5 is the new file `name`, which it gives
 * to 7:7 (fr records it; fstat and fchown are both fr's). 0 if all went
 * so. */
static int give_away(const char *name)
{
    open_as_5(name);
    if (owner_of_5() != 0 || fchown(5, 7, 7) != 0 || owner_of_5() != 7)
        return 1;
    return 0;
}

static void process(void)
{
    pid_t first = fork();
    if (first == 0)
        _exit(give_away("given-by-a-process"));
    int status;
    if (waitpid(first, &status, 0) != first || status != 0) {
        printf("process: the first child could not give its file away (status %d)\n", status);
        exit(2);
    }
    for (int tries = 0; tries < 100; tries++) {
        next_pid(first);
        pid_t again = fork();
        if (again == 0) {
            if (getpid() == first) {
                open_as_5("kept");
                printf("process: uid %ld\n", owner_of_5());
            }
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
    char name[64];
    snprintf(name, sizeof name, "given-by-thread-%ld", first_tid);
    if (unshare(CLONE_FILES) != 0 || give_away(name) != 0)
        first_tid = -1;
    return NULL;
}

static void *look(void *arg)
{
    (void)arg;
    if (gettid_() == first_tid) {
        if (unshare(CLONE_FILES) != 0) {
            perror("unshare(CLONE_FILES)");
            exit(2);
        }
        open_as_5("kept");
        printf("thread: uid %ld\n", owner_of_5());
    }
    fflush(stdout);
    return (void *)gettid_();
}

static int thread_round(void)
{
    pthread_t t;
    pthread_create(&t, NULL, drop, NULL);
    pthread_join(t, NULL);
    if (first_tid < 0) {
        printf("thread: the first thread could not give its file away\n");
        exit(2);
    }
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
