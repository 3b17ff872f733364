/*
 * many_processes: starts N processes one after another, each of which
 * makes one call fr answers through the caller's descriptor (fstat of its
 * stdin), and says how many failed. fr keeps a pidfd per thread for such
 * calls (supervisor/src/descriptors.rs); thousands of them must not run
 * fr out of descriptors, which would fail the workload's later calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3000, failed = 0;
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) {
            perror("fork");
            return 2;
        }
        if (p == 0) {
            struct stat st;
            _exit(syscall(SYS_fstat, 0, &st) == 0 ? 0 : 1);
        }
        int status;
        if (waitpid(p, &status, 0) != p || status != 0)
            failed++;
    }
    printf("%d of %d failed\n", failed, n);
    return failed != 0;
}
