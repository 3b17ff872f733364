/* Prints a manifest of the tree under ROOT, one line per path, sorted:
 * path, type, mode, owner:group, device numbers, size of a regular file,
 * the first path (in sorted order) of the file it is a hard link of, and
 * extended attributes (names sorted, values in hex). Built static, so
 * that it runs inside a busybox image under `fr exec` as well as on the
 * host as real root: the two manifests of one image must be equal.
 * Paths under the arguments after ROOT (relative to it) are left out.
 *
 * oci_manifest ROOT [SKIP...]: tests/oci.rs compares OCI unpacks with it;
 * tests/probe/manifest.c is the build tests' (no sizes, no hard links). */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

struct line {
    char *path;
    dev_t dev;
    ino_t ino;
    int multi;
    char *text;
};

static struct line *lines;
static size_t count, cap;
static const char *root;
static size_t root_len;
static char **skips;
static int nskips;

static const char *rel(const char *path) {
    const char *r = path + root_len;
    return *r ? r : "/";
}

static int skipped(const char *r) {
    for (int i = 0; i < nskips; i++) {
        size_t n = strlen(skips[i]);
        if (strncmp(r, skips[i], n) == 0 && (r[n] == 0 || r[n] == '/'))
            return 1;
    }
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *xattrs(const char *path) {
    static char names[65536];
    ssize_t n = llistxattr(path, names, sizeof names);
    if (n < 0)
        return strdup("");
    char *list[4096];
    int k = 0;
    for (char *p = names; p < names + n && k < 4096; p += strlen(p) + 1)
        list[k++] = p;
    qsort(list, k, sizeof *list, cmp_name);
    size_t size = 1;
    char *out = calloc(1, 1);
    for (int i = 0; i < k; i++) {
        unsigned char value[65536];
        ssize_t v = lgetxattr(path, list[i], value, sizeof value);
        size_t need = strlen(list[i]) + 3 + (v > 0 ? 2 * v : 0) + 8;
        out = realloc(out, size + need);
        char *end = out + strlen(out);
        end += sprintf(end, " %s=", list[i]);
        if (v < 0)
            end += sprintf(end, "<error>");
        for (ssize_t j = 0; j < v; j++)
            end += sprintf(end, "%02x", value[j]);
        size = strlen(out) + 1;
    }
    return out;
}

static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)flag;
    const char *r = rel(path);
    if (skipped(r))
        return ftw->level > 0 && S_ISDIR(st->st_mode) ? FTW_SKIP_SUBTREE : FTW_CONTINUE;
    const char *kind = S_ISREG(st->st_mode)    ? "reg"
                       : S_ISDIR(st->st_mode)  ? "dir"
                       : S_ISLNK(st->st_mode)  ? "lnk"
                       : S_ISCHR(st->st_mode)  ? "chr"
                       : S_ISBLK(st->st_mode)  ? "blk"
                       : S_ISFIFO(st->st_mode) ? "fifo"
                       : S_ISSOCK(st->st_mode) ? "sock"
                                               : "?";
    char dev[64] = "-";
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
        snprintf(dev, sizeof dev, "%u:%u", major(st->st_rdev), minor(st->st_rdev));
    char size[32] = "-";
    if (S_ISREG(st->st_mode))
        snprintf(size, sizeof size, "%lld", (long long)st->st_size);
    char *x = xattrs(path);
    char *text;
    if (asprintf(&text, "%s %04o %u:%u %s %s", kind, st->st_mode & 07777, st->st_uid, st->st_gid,
                 dev, size) < 0)
        exit(2);
    if (count == cap) {
        cap = cap ? 2 * cap : 1024;
        lines = realloc(lines, cap * sizeof *lines);
    }
    char *full;
    if (asprintf(&full, "%s%s", text, x) < 0)
        exit(2);
    free(text);
    free(x);
    lines[count++] = (struct line){strdup(r), st->st_dev, st->st_ino,
                                   !S_ISDIR(st->st_mode) && st->st_nlink > 1, full};
    return FTW_CONTINUE;
}

static int by_path(const void *a, const void *b) {
    return strcmp(((const struct line *)a)->path, ((const struct line *)b)->path);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: manifest ROOT [SKIP...]\n");
        return 2;
    }
    root = argv[1];
    root_len = strlen(root);
    while (root_len > 1 && root[root_len - 1] == '/')
        root_len--;
    if (root_len == 1)
        root_len = 0;
    skips = argv + 2;
    nskips = argc - 2;
    if (nftw(root, visit, 64, FTW_PHYS | FTW_ACTIONRETVAL) != 0) {
        perror("nftw");
        return 1;
    }
    qsort(lines, count, sizeof *lines, by_path);
    for (size_t i = 0; i < count; i++) {
        const char *first = "-";
        if (lines[i].multi)
            for (size_t j = 0; j < i; j++)
                if (lines[j].multi && lines[j].dev == lines[i].dev && lines[j].ino == lines[i].ino) {
                    first = lines[j].path;
                    break;
                }
        printf("%s %s link=%s\n", lines[i].path, lines[i].text, first);
    }
    return 0;
}
