/* What this kernel offers of what `fr check` reports, found by using each
 * feature, independently of fr's own probe (which asks with notification
 * ids that cannot exist): one line per feature, "NAME yes" or
 * "NAME no (why)".
 *
 * userns: a child unshare(CLONE_NEWUSER)s.
 * The seccomp features: a thread installs a filter that sends getppid(2)
 * to a listener (a filter belongs to the thread that installs it; the
 * descriptor table is shared, so the main thread is the supervisor, and
 * an ADDFD lands in this process), then calls getppid once per step:
 *   user_notif          a reply with a value is the call's result
 *   continue            SECCOMP_USER_NOTIF_FLAG_CONTINUE: the real result
 *   addfd               SECCOMP_IOCTL_NOTIF_ADDFD, then a reply with its fd
 *   addfd_send          SECCOMP_ADDFD_FLAG_SEND: the fd is the result
 *   sync_wake_up        SECCOMP_IOCTL_NOTIF_SET_FLAGS accepts
 *                       SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, and a round
 *                       trip still works
 * wait_killable_recv: a second thread's filter has
 * SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV; once its notification is
 * received, a SIGUSR1 to it stays pending while it sleeps killably until
 * the reply (without the flag the signal interrupts the wait and its
 * handler runs first).
 *
 * Build: cc -static -pthread. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Newer than Debian 12's kernel headers (6.1). */
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#define STEPS 5

static int listener = -1;
static int install_errno;
static unsigned long install_flags;
static sem_t installed, call, done;
static long result[STEPS];
static int result_errno[STEPS];
static volatile sig_atomic_t handled;

static void on_usr1(int sig) {
    (void)sig;
    handled = 1;
}

static int install(unsigned long flags) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof code / sizeof code[0], code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER | flags,
                   &prog);
}

/* The filtered thread: installs the filter, then one getppid per step. */
static void *target(void *arg) {
    (void)arg;
    listener = install(install_flags);
    install_errno = errno;
    sem_post(&installed);
    if (listener < 0)
        return NULL;
    for (int i = 0; i < STEPS; i++) {
        sem_wait(&call);
        errno = 0;
        result[i] = syscall(SYS_getppid);
        result_errno[i] = errno;
        sem_post(&done);
    }
    return NULL;
}

static int recv_notif(struct seccomp_notif *req) {
    memset(req, 0, sizeof *req);
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req);
}

static int reply(__u64 id, long val, __u32 flags) {
    struct seccomp_notif_resp resp = {.id = id, .val = val, .error = 0, .flags = flags};
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

/* Starts step `i`: the target calls getppid, and its request is read. */
static int step(struct seccomp_notif *req) {
    sem_post(&call);
    if (recv_notif(req) != 0)
        return -1;
    return req->data.nr == SYS_getppid ? 0 : -1;
}

static int same_file(int fd, const struct stat *want) {
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == want->st_dev && st.st_ino == want->st_ino;
}

static void userns(void) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        printf("userns yes\n");
    else
        printf("userns no (%s)\n", strerror(WIFEXITED(status) ? WEXITSTATUS(status) : EINTR));
}

static void notify_features(void) {
    sem_init(&installed, 0, 0);
    sem_init(&call, 0, 0);
    sem_init(&done, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, target, NULL);
    sem_wait(&installed);
    if (listener < 0) {
        const char *why = strerror(install_errno);
        printf("user_notif no (%s)\ncontinue no\naddfd no\naddfd_send no\nsync_wake_up no\n", why);
        return;
    }
    struct seccomp_notif req;
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct stat null_st;
    fstat(null, &null_st);

    /* 0: a value for a reply. */
    if (step(&req) != 0 || reply(req.id, 4242, 0) != 0) {
        printf("user_notif no (%s)\n", strerror(errno));
        exit(1);
    }
    sem_wait(&done);
    printf("user_notif %s\n", result[0] == 4242 ? "yes" : "no (the reply was not the result)");

    /* 1: CONTINUE runs the real call. */
    step(&req);
    if (reply(req.id, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE) == 0) {
        sem_wait(&done);
        printf("continue %s\n", result[1] == getppid() ? "yes" : "no (not the real result)");
    } else {
        int e = errno;
        reply(req.id, 1, 0);
        sem_wait(&done);
        printf("continue no (%s)\n", strerror(e));
    }

    /* 2: ADDFD, then a reply with the new descriptor. */
    step(&req);
    struct seccomp_notif_addfd add = {.id = req.id, .flags = 0, .srcfd = null};
    int fd = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
    int e = errno;
    reply(req.id, fd, 0);
    sem_wait(&done);
    if (fd < 0)
        printf("addfd no (%s)\n", strerror(e));
    else
        printf("addfd %s\n", same_file(result[2], &null_st) ? "yes" : "no (not the file added)");

    /* 3: ADDFD with SEND: the descriptor is the call's result. */
    step(&req);
    add.id = req.id;
    add.flags = SECCOMP_ADDFD_FLAG_SEND;
    fd = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
    e = errno;
    if (fd < 0)
        reply(req.id, -1, 0);
    sem_wait(&done);
    if (fd < 0)
        printf("addfd_send no (%s)\n", strerror(e));
    else
        printf("addfd_send %s\n",
               result[3] == fd && same_file(fd, &null_st) ? "yes" : "no (not the file added)");

    /* 4: SYNC_WAKE_UP set, and a round trip with it. */
    int set = ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0);
    e = errno;
    step(&req);
    reply(req.id, 77, 0);
    sem_wait(&done);
    if (set != 0)
        printf("sync_wake_up no (%s)\n", strerror(e));
    else
        printf("sync_wake_up %s\n", result[4] == 77 ? "yes" : "no (the round trip failed)");
    pthread_join(t, NULL);
}

/* Whether thread `tid` sleeps killably (state D: TASK_KILLABLE) with
 * SIGUSR1 pending in its own set. */
static int usr1_waits(pid_t tid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    FILE *f = fopen(path, "r");
    int pending = 0, killable = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long mask;
        char state;
        if (sscanf(line, "SigPnd: %llx", &mask) == 1)
            pending = (mask >> (SIGUSR1 - 1)) & 1;
        if (sscanf(line, "State: %c", &state) == 1)
            killable = state == 'D';
    }
    if (f)
        fclose(f);
    return pending && killable;
}

static pid_t killable_tid;

static void *killable_target(void *arg) {
    (void)arg;
    killable_tid = gettid();
    listener = install(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
    install_errno = errno;
    sem_post(&installed);
    if (listener < 0)
        return NULL;
    errno = 0;
    result[0] = syscall(SYS_getppid);
    result_errno[0] = errno;
    sem_post(&done);
    return NULL;
}

static void wait_killable_recv(void) {
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART */
    sem_init(&installed, 0, 0);
    sem_init(&done, 0, 0);
    listener = -1;
    pthread_t t;
    pthread_create(&t, NULL, killable_target, NULL);
    sem_wait(&installed);
    if (listener < 0) {
        printf("wait_killable_recv no (%s)\n", strerror(install_errno));
        return;
    }
    struct seccomp_notif req;
    if (recv_notif(&req) != 0) {
        printf("wait_killable_recv no (receiving: %s)\n", strerror(errno));
        exit(1);
    }
    syscall(SYS_tgkill, getpid(), killable_tid, SIGUSR1);
    /* Either the thread waits killably, the signal pending, for the
     * reply, or the signal interrupted the call and its handler ran. */
    int pending;
    while (!(pending = usr1_waits(killable_tid)) && !handled)
        sched_yield();
    int replied = reply(req.id, 4343, 0);
    sem_wait(&done);
    pthread_join(t, NULL);
    if (pending && replied == 0 && result[0] == 4343)
        printf("wait_killable_recv yes\n");
    else
        printf("wait_killable_recv no (the signal interrupted the wait)\n");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    userns(); /* before any thread: a threaded process cannot unshare a user namespace */
    notify_features();
    wait_killable_recv();
    return 0;
}
