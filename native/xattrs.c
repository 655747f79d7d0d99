/*
 * berth-xattrs: reads the extended attributes of many files beneath one directory, for the layer
 * differ and the container archive writer (src/image/tree-reader.ts). Node has no llistxattr or
 * lgetxattr; one process per tree, not per file, keeps it cheap.
 *
 *   berth-xattrs ROOT < paths
 *
 * paths is a sequence of NUL-terminated paths relative to ROOT ("" is ROOT itself). For each
 * path, in order, stdout gets (integers little-endian):
 *   u32 count, then count × (u32 name_len, name bytes, u32 value_len, value bytes)
 * A path that no longer exists, or whose parent is not a directory, gets count 0 (the tree may
 * change while it is read: the caller decides what a vanished file means).
 *
 * Every parent component is opened with O_NOFOLLOW|O_DIRECTORY one by one, so nothing outside
 * ROOT is ever read through a symlink, even if a running container swaps a directory for one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

static int root_fd = -1;

static void die(const char *what, const char *path, int err) {
  fprintf(stderr, "berth-xattrs: %s \"%s\": %s\n", what, path, strerror(err));
  exit(1);
}

static void out(const void *p, size_t n) {
  if (n && fwrite(p, 1, n, stdout) != n) die("write", "stdout", errno);
}

static void out_u32(uint32_t v) {
  unsigned char b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
  out(b, 4);
}

/* Opens the parent directory of path without following symlinks; -1 when it is gone. */
static int open_parent(char *path, const char **base) {
  char *slash = strrchr(path, '/');
  int fd = dup(root_fd);
  if (fd < 0) die("dup", path, errno);
  if (!slash) {
    *base = *path ? path : ".";
    return fd;
  }
  *slash = 0;
  *base = slash + 1;
  char *save = NULL;
  for (char *c = strtok_r(path, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0) die("refusing", c, EINVAL);
    int next = openat(fd, c, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    close(fd);
    if (next < 0) return -1;
    fd = next;
  }
  return fd;
}

static char *names, *value;
static size_t names_cap = 1 << 12, value_cap = 1 << 12;

static void dump(char *path) {
  const char *base;
  int dir = open_parent(path, &base);
  if (dir < 0 || strcmp(base, "..") == 0) {
    if (dir >= 0) close(dir);
    out_u32(0);
    return;
  }
  /* No llistxattrat before Linux 6.13: work from the verified parent. */
  if (fchdir(dir) < 0) die("chdir", path, errno);
  close(dir);
  ssize_t n;
  for (;;) {
    n = llistxattr(base, names, names_cap);
    if (n >= 0) break;
    if (errno == ERANGE) {
      names_cap *= 2;
      names = realloc(names, names_cap);
      if (!names) die("malloc", path, ENOMEM);
      continue;
    }
    if (errno == ENOENT || errno == ENOTSUP || errno == ENOTDIR) n = 0;
    else die("llistxattr", path, errno);
    break;
  }
  uint32_t count = 0;
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) count++;
  /* A name whose value vanishes meanwhile is written with an empty value: the count is fixed. */
  out_u32(count);
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
    const char *name = names + i;
    ssize_t v;
    for (;;) {
      v = lgetxattr(base, name, value, value_cap);
      if (v >= 0) break;
      if (errno == ERANGE) {
        value_cap *= 2;
        value = realloc(value, value_cap);
        if (!value) die("malloc", path, ENOMEM);
        continue;
      }
      v = 0;
      break;
    }
    out_u32((uint32_t)strlen(name));
    out(name, strlen(name));
    out_u32((uint32_t)v);
    out(value, (size_t)v);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: berth-xattrs ROOT < paths\n");
    return 2;
  }
  root_fd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) die("open", argv[1], errno);
  names = malloc(names_cap);
  value = malloc(value_cap);
  if (!names || !value) die("malloc", "", ENOMEM);
  size_t cap = 1 << 16, len = 0;
  char *in = malloc(cap);
  if (!in) die("malloc", "", ENOMEM);
  for (;;) {
    if (len == cap) {
      cap *= 2;
      in = realloc(in, cap);
      if (!in) die("malloc", "", ENOMEM);
    }
    ssize_t r = read(0, in + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("read", "stdin", errno);
    if (r == 0) break;
    len += (size_t)r;
  }
  size_t pos = 0;
  while (pos < len) {
    char *end = memchr(in + pos, 0, len - pos);
    if (!end) die("unterminated path", "", EINVAL);
    dump(in + pos);
    pos = (size_t)(end - in) + 1;
  }
  if (fflush(stdout) != 0) die("write", "stdout", errno);
  return 0;
}
