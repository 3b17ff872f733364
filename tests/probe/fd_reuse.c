/*
 * fd_reuse: fr reaches a target's descriptors through a pidfd it keeps per
 * thread (supervisor/src/descriptors.rs). A task that gave the file behind
 * its descriptor 5 to 7:7 ends; a new task is then given its very number
 * (reuse.h) with another file, one root made and left root's, as its
 * descriptor 5, and prints the owner fstat(5) shows: real root's 0, never
 * the dead task's file's 7. Once for a process, once for a thread with a
 * descriptor table of its own (unshare(CLONE_FILES)).
 *
 * Prints "process: uid N" and "thread: uid N", or why the number could not
 * be had again (exit 2).
 */
#include "reuse.h" /* first: it defines _GNU_SOURCE */

#include <sys/stat.h>

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

/* The first task: its descriptor 5 is a new file, named after the task,
 * which it gives to 7:7 (fr records it; fstat and fchown are both fr's).
 * 0 if all went so. */
static int give_away(void)
{
    char name[64];
    snprintf(name, sizeof name, "given-by-%ld", gettid_());
    open_as_5(name);
    if (owner_of_5() != 0 || fchown(5, 7, 7) != 0 || owner_of_5() != 7)
        return 1;
    return 0;
}

static void process_look(void)
{
    open_as_5("kept");
    printf("process: uid %ld\n", owner_of_5());
}

static int thread_give_away(void)
{
    return unshare(CLONE_FILES) != 0 ? 1 : give_away();
}

static void thread_look(void)
{
    if (unshare(CLONE_FILES) != 0) {
        perror("unshare(CLONE_FILES)");
        exit(2);
    }
    open_as_5("kept");
    printf("thread: uid %ld\n", owner_of_5());
}

int main(void)
{
    reuse_pid(give_away, process_look);
    reuse_tid(thread_give_away, thread_look);
    return 0;
}
