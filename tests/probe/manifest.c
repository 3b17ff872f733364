/* manifest ROOT [SKIP...]: one line per file under ROOT, sorted by path:
 *
 *     PATH TYPE MODE UID:GID RDEV [-> TARGET] [XATTR=HEX...]
 *
 * TYPE reg, dir, lnk, chr, blk, fifo or sock; MODE the permission, set-id
 * and sticky bits in octal; RDEV major:minor for devices, else -; a
 * symbolic link's target; extended attributes by name, values in hex. The
 * paths under each SKIP (relative to ROOT) are left out.
 *
 * The build tests run it statically linked, as real root on the oracle's
 * tree and under fr exec -f inside the image fr built (where Python, which
 * tests/tools/manifest.py needs, is not), so that both manifests come from
 * the same code and differ only where the trees do. Links are never
 * followed: lstat, llistxattr, lgetxattr.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static char **lines;
static size_t nlines, cap;
static const char *root;
static size_t rootlen;
static char **skips;
static int nskips;

static void add(char *line)
{
	if (nlines == cap) {
		cap = cap ? cap * 2 : 4096;
		lines = realloc(lines, cap * sizeof *lines);
		if (!lines) {
			perror("realloc");
			exit(1);
		}
	}
	lines[nlines++] = line;
}

/* The path as seen from ROOT: "/" for ROOT itself. */
static const char *rel(const char *path)
{
	const char *r = path + rootlen;
	while (*r == '/' && r[1] == '/')
		r++;
	return *r ? r : "/";
}

static int skipped(const char *r)
{
	for (int i = 0; i < nskips; i++) {
		size_t n = strlen(skips[i]);
		if (strncmp(r, skips[i], n) == 0 && (r[n] == '\0' || r[n] == '/'))
			return 1;
	}
	return 0;
}

static const char *kind(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "reg";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "lnk";
	case S_IFCHR: return "chr";
	case S_IFBLK: return "blk";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "sock";
	}
	return "?";
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int visit(const char *path, const struct stat *st0, int flag, struct FTW *ftw)
{
	(void)st0;
	(void)ftw;
	const char *r = rel(path);
	if (skipped(r))
		return flag == FTW_D || flag == FTW_DP ? FTW_SKIP_SUBTREE : FTW_CONTINUE;
	struct stat st;
	if (lstat(path, &st) != 0) {
		fprintf(stderr, "manifest: lstat %s: %m\n", path);
		exit(1);
	}
	char *line;
	size_t size;
	FILE *out = open_memstream(&line, &size);
	fprintf(out, "%s %s %04o %u:%u ", r, kind(st.st_mode), st.st_mode & 07777, st.st_uid, st.st_gid);
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
		fprintf(out, "%u:%u", major(st.st_rdev), minor(st.st_rdev));
	else
		fputc('-', out);
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(path, target, sizeof target - 1);
		target[n < 0 ? 0 : n] = '\0';
		fprintf(out, " -> %s", target);
	}
	char names[65536];
	ssize_t n = llistxattr(path, names, sizeof names);
	if (n > 0) {
		char *sorted[1024];
		int count = 0;
		for (char *p = names; p < names + n && count < 1024; p += strlen(p) + 1)
			sorted[count++] = p;
		qsort(sorted, count, sizeof *sorted, cmp);
		for (int i = 0; i < count; i++) {
			unsigned char value[65536];
			ssize_t len = lgetxattr(path, sorted[i], value, sizeof value);
			fprintf(out, " %s=", sorted[i]);
			if (len < 0)
				fprintf(out, "<%m>");
			for (ssize_t j = 0; j < len; j++)
				fprintf(out, "%02x", value[j]);
		}
	} else if (n < 0) {
		fprintf(out, " <%m>");
	}
	fclose(out);
	add(line);
	return FTW_CONTINUE;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: manifest ROOT [SKIP...]\n");
		return 2;
	}
	root = argv[1];
	rootlen = strlen(root);
	while (rootlen > 1 && root[rootlen - 1] == '/')
		rootlen--;
	if (rootlen == 1 && root[0] == '/')
		rootlen = 0;
	nskips = argc - 2;
	skips = calloc(nskips + 1, sizeof *skips);
	for (int i = 0; i < nskips; i++) {
		const char *s = argv[i + 2];
		while (*s == '/')
			s++;
		if (asprintf(&skips[i], "/%s", s) < 0)
			return 1;
	}
	if (nftw(root, visit, 64, FTW_PHYS | FTW_ACTIONRETVAL) != 0) {
		perror("nftw");
		return 1;
	}
	qsort(lines, nlines, sizeof *lines, cmp);
	for (size_t i = 0; i < nlines; i++)
		puts(lines[i]);
	return 0;
}
