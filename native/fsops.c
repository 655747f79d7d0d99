/*
 * berth-fsops: applies a batch of filesystem operations that Node has no call for (mknod of
 * devices and FIFOs, lsetxattr with binary values, utimensat with nanoseconds) beneath one
 * directory, for the layer unpacker (src/image/unpack/fsops.ts). One process per layer, not per
 * entry: the unpacker queues the operations while it extracts and runs them in one batch.
 *
 *   berth-fsops ROOT < ops
 *
 * ops is a sequence of records, integers little-endian:
 *   u8 op, u32 path_len, path bytes (relative to ROOT; empty = ROOT itself), then by op:
 *   'N' mknod     u32 mode (with S_IFCHR/S_IFBLK/S_IFIFO), u32 major, u32 minor
 *   'X' lsetxattr u32 name_len, name, u32 value_len, value
 *   'O' lchown    u32 uid, u32 gid
 *   'M' chmod     u32 mode (skipped for symlinks, whose mode Linux cannot change)
 *   'T' times     i64 atime_sec, u32 atime_nsec, i64 mtime_sec, u32 mtime_nsec (not following)
 *
 * Every parent component is opened with O_NOFOLLOW|O_DIRECTORY one by one, so no operation
 * reaches outside ROOT through a symlink even if the TypeScript side had a bug; "." and ".."
 * components are refused. On the first failure it prints what failed and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static const unsigned char *buf;
static size_t buf_len, pos;

static void die(const char *what, const char *path, int err) {
  fprintf(stderr, "berth-fsops: %s \"%s\": %s\n", what, path, strerror(err));
  exit(1);
}

static void need(size_t n) {
  if (buf_len - pos < n) {
    fprintf(stderr, "berth-fsops: truncated operation list at byte %zu\n", pos);
    exit(2);
  }
}

static uint32_t u32(void) {
  need(4);
  uint32_t v = (uint32_t)buf[pos] | (uint32_t)buf[pos + 1] << 8 | (uint32_t)buf[pos + 2] << 16 | (uint32_t)buf[pos + 3] << 24;
  pos += 4;
  return v;
}

static int64_t i64(void) {
  uint64_t lo = u32();
  uint64_t hi = u32();
  return (int64_t)(lo | hi << 32);
}

/* Returns a NUL-terminated copy of the next length-prefixed byte string. */
static char *bytes(uint32_t *len_out) {
  uint32_t len = u32();
  need(len);
  char *s = malloc((size_t)len + 1);
  if (!s) die("malloc", "", ENOMEM);
  memcpy(s, buf + pos, len);
  s[len] = 0;
  pos += len;
  if (len_out) *len_out = len;
  return s;
}

static int root_fd = -1;
static int parent_fd = -1;
static char *parent_path; /* the directory part parent_fd was opened for (cache) */

/* Opens the directory that holds `path` without following any symlink; returns the base name. */
static const char *resolve(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t dir_len = slash ? (size_t)(slash - path) : 0;
  const char *base = slash ? slash + 1 : path;
  if (*path == 0) base = ".";
  else if (*base == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) die("refusing", path, EINVAL);

  if (parent_path && strlen(parent_path) == dir_len && memcmp(parent_path, path, dir_len) == 0) return base;
  if (parent_fd >= 0 && parent_fd != root_fd) close(parent_fd);
  free(parent_path);
  parent_path = strndup(path, dir_len);
  if (!parent_path) die("malloc", path, ENOMEM);

  int fd = root_fd;
  char *dir = strndup(path, dir_len), *save = NULL;
  if (!dir) die("malloc", path, ENOMEM);
  for (char *comp = dir_len ? strtok_r(dir, "/", &save) : NULL; comp; comp = strtok_r(NULL, "/", &save)) {
    if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) die("refusing", path, EINVAL);
    int next = openat(fd, comp, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    if (next < 0) die("open parent of", path, errno);
    if (fd != root_fd) close(fd);
    fd = next;
  }
  free(dir);
  parent_fd = fd;
  return base;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: berth-fsops ROOT < operations\n");
    return 2;
  }
  umask(0); /* modes arrive exact */
  root_fd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) die("open", argv[1], errno);

  size_t cap = 1 << 16;
  unsigned char *in = malloc(cap);
  if (!in) die("malloc", "", ENOMEM);
  for (;;) {
    if (buf_len == cap) {
      cap *= 2;
      in = realloc(in, cap);
      if (!in) die("malloc", "", ENOMEM);
    }
    ssize_t n = read(0, in + buf_len, cap - buf_len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("read", "stdin", errno);
    if (n == 0) break;
    buf_len += (size_t)n;
  }
  buf = in;

  while (pos < buf_len) {
    unsigned char op = buf[pos++];
    char *path = bytes(NULL);
    const char *base = resolve(path);
    switch (op) {
    case 'N': {
      uint32_t mode = u32(), major = u32(), minor = u32();
      if (!S_ISCHR(mode) && !S_ISBLK(mode) && !S_ISFIFO(mode)) die("mknod (not a device or FIFO)", path, EINVAL);
      if (mknodat(parent_fd, base, mode, makedev(major, minor)) < 0) die("mknod", path, errno);
      break;
    }
    case 'X': {
      uint32_t value_len;
      char *name = bytes(NULL);
      char *value = bytes(&value_len);
      /* No lsetxattrat before Linux 6.13: work from the verified parent instead. */
      if (fchdir(parent_fd) < 0) die("chdir to parent of", path, errno);
      if (lsetxattr(base, name, value, value_len, 0) < 0) {
        int err = errno;
        fprintf(stderr, "berth-fsops: xattr %s on \"%s\": %s\n", name, path, strerror(err));
        return 1;
      }
      free(name);
      free(value);
      break;
    }
    case 'O': {
      uint32_t uid = u32(), gid = u32();
      if (fchownat(parent_fd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) die("chown", path, errno);
      break;
    }
    case 'M': {
      uint32_t mode = u32();
      struct stat st;
      if (fstatat(parent_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) die("stat", path, errno);
      if (!S_ISLNK(st.st_mode) && fchmodat(parent_fd, base, mode & 07777, 0) < 0) die("chmod", path, errno);
      break;
    }
    case 'T': {
      struct timespec ts[2];
      ts[0].tv_sec = i64();
      ts[0].tv_nsec = u32();
      ts[1].tv_sec = i64();
      ts[1].tv_nsec = u32();
      if (utimensat(parent_fd, base, ts, AT_SYMLINK_NOFOLLOW) < 0) die("set times of", path, errno);
      break;
    }
    default:
      fprintf(stderr, "berth-fsops: unknown operation 0x%02x at byte %zu\n", op, pos - 1);
      return 2;
    }
    free(path);
  }
  return 0;
}
