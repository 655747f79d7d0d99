/*
 * berth-stage: executes a plan compiled by src/runtime (contract: native/PLAN.md).
 *
 * The stage decides nothing.  Every path, flag, mode, mapping and ordering
 * comes from the plan; this file only knows how to perform each operation
 * safely: resolving paths inside the rootfs with openat2(), retrying remounts
 * with locked flags, relaying fds, and reporting failures as one line on the
 * sync fd.
 *
 * Process layout: stage 0 (the parent) runs the records before CLONE, clones
 * the container init, writes its id maps, reports PID and either exits or
 * stays to relay the exit status.  The child runs the remaining records and
 * finally execve()s the container process.  Both are single-threaded plain C.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <termios.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>

#define SEALED_ENV "_BERTH_STAGE_SEALED"
#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define MAX_PLAN (64u << 20)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#define NORETURN __attribute__((noreturn))
#define PRINTF(a, b) __attribute__((format(printf, a, b)))

struct arg { char *s; size_t len; };      /* s is NUL-terminated for convenience */
struct rec { unsigned op, argc; struct arg *a; };

enum {
	OP_SETNS = 1, OP_UNSHARE_TIME, OP_OOM_SCORE_ADJ, OP_CGROUP_JOIN, OP_FIFO,
	OP_CONSOLE_SOCKET, OP_ID_MAPS, OP_CLONE, OP_HOSTNAME, OP_DOMAINNAME,
	OP_ROOTFS, OP_MOUNT, OP_MKNOD, OP_SYMLINK, OP_MASK, OP_READONLY, OP_PIVOT,
	OP_WRITE_FILE, OP_SESSION_KEYRING, OP_RLIMIT, OP_CONSOLE, OP_CHDIR,
	OP_CAPS_BOUNDING, OP_USER, OP_CAPS, OP_NO_NEW_PRIVS, OP_SYNC, OP_RUN_HOOK,
	OP_EXEC_PREPARE, OP_WAIT_START, OP_EXEC, OP_SECCOMP, OP_CONSOLE_PROXY,
	OP_CGROUP_DEVICES, OP_SECCOMP_LISTENER, OP_SECCOMP_NOTIFY, /* 36 */
	OP_PERSONALITY, OP_MOUNT_SETATTR, /* 38 */
	OP_MAX = OP_MOUNT_SETATTR,
};

/* name, argc (negative: at least -argc), phase: 'p' before CLONE, 'c' after */
static const struct { const char *name; int argc; char phase; } ops[OP_MAX + 1] = {
	[OP_SETNS] = {"SETNS", 2, 'p'},             [OP_UNSHARE_TIME] = {"UNSHARE_TIME", 1, 'p'},
	[OP_OOM_SCORE_ADJ] = {"OOM_SCORE_ADJ", 1, 'p'}, [OP_CGROUP_JOIN] = {"CGROUP_JOIN", 1, 'p'},
	[OP_FIFO] = {"FIFO", 1, 'p'},               [OP_CONSOLE_SOCKET] = {"CONSOLE_SOCKET", 1, 'p'},
	[OP_ID_MAPS] = {"ID_MAPS", -3, 'p'},         [OP_CLONE] = {"CLONE", 2, 'p'},
	[OP_HOSTNAME] = {"HOSTNAME", 1, 'c'},       [OP_DOMAINNAME] = {"DOMAINNAME", 1, 'c'},
	[OP_ROOTFS] = {"ROOTFS", 1, 'c'},           [OP_MOUNT] = {"MOUNT", 7, 'c'},
	[OP_MKNOD] = {"MKNOD", 7, 'c'},             [OP_SYMLINK] = {"SYMLINK", 2, 'c'},
	[OP_MASK] = {"MASK", 1, 'c'},               [OP_READONLY] = {"READONLY", 1, 'c'},
	[OP_PIVOT] = {"PIVOT", 1, 'c'},             [OP_WRITE_FILE] = {"WRITE_FILE", 2, 'c'},
	[OP_SESSION_KEYRING] = {"SESSION_KEYRING", 1, 'c'}, [OP_RLIMIT] = {"RLIMIT", 3, 'c'},
	[OP_CONSOLE] = {"CONSOLE", 3, 'c'},         [OP_CHDIR] = {"CHDIR", 1, 'c'},
	[OP_CAPS_BOUNDING] = {"CAPS_BOUNDING", 1, 'c'}, [OP_USER] = {"USER", 4, 'c'},
	[OP_CAPS] = {"CAPS", 4, 'c'},               [OP_NO_NEW_PRIVS] = {"NO_NEW_PRIVS", 0, 'c'},
	[OP_SYNC] = {"SYNC", 1, 'c'},               [OP_RUN_HOOK] = {"RUN_HOOK", -4, 'c'},
	[OP_EXEC_PREPARE] = {"EXEC_PREPARE", -2, 'c'}, [OP_WAIT_START] = {"WAIT_START", 0, 'c'},
	[OP_EXEC] = {"EXEC", 1, 'c'},               [OP_SECCOMP] = {"SECCOMP", 2, 'c'},
	[OP_CONSOLE_PROXY] = {"CONSOLE_PROXY", 0, 'p'}, [OP_CGROUP_DEVICES] = {"CGROUP_DEVICES", 2, 'p'},
	[OP_SECCOMP_LISTENER] = {"SECCOMP_LISTENER", 1, 'p'}, [OP_SECCOMP_NOTIFY] = {"SECCOMP_NOTIFY", -3, 'c'},
	[OP_PERSONALITY] = {"PERSONALITY", 1, 'c'}, [OP_MOUNT_SETATTR] = {"MOUNT_SETATTR", 4, 'c'},
};

static int sync_fd = -1;     /* -1 once closed by WAIT_START: errors then go to stderr */
static int proc_fd = -1;     /* the host's /proc, opened before any SETNS */
static int root_fd = -1;     /* O_PATH fd every "(in root)" path is resolved against */
static const char *root_path;
static bool pivoted;
static int fifo_fd = -1, console_fd = -1;
static int listener_fd = -1;         /* SECCOMP_LISTENER: connected to the seccomp agent */
static pid_t host_pid;               /* the child's pid in the host's pid ns (from the parent) */
static int proxy_fd = -1;            /* CONSOLE_PROXY: our end of the child's console socket */
static volatile sig_atomic_t winch;  /* CONSOLE_PROXY: the terminal was resized */
static const struct arg *id_maps;   /* uid_map, gid_map, setgroups */
static bool id_maps_external;       /* ID_MAPS external=1: Node maps first (newuidmap/newgidmap) */
static char *exec_path, **exec_argv, **exec_envp;
static volatile pid_t fwd_pid;      /* stay mode: where forwarded signals go */
static struct arg sync_data;        /* from Node's latest SYNC answer: the state JSON for hooks */

/* ---------- messages and errors ---------- */

static void put(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		/* MSG_NOSIGNAL: a vanished Node must not kill us with SIGPIPE */
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* Format one line; control characters become spaces so a line stays a line. */
static size_t vline(char *buf, size_t size, const char *prefix, int err, const char *fmt, va_list ap)
{
	char body[3072];
	vsnprintf(body, sizeof body, fmt, ap);
	int r = snprintf(buf, size - 1, "%s%s%s%s", prefix, body, err ? ": " : "", err ? strerror(err) : "");
	size_t n = r < 0 ? 0 : (size_t)r >= size - 1 ? size - 2 : (size_t)r;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
	buf[n++] = '\n';
	return n;
}

PRINTF(1, 2) static void msg(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	size_t n = vline(buf, sizeof buf, "", 0, fmt, ap);
	va_end(ap);
	if (sync_fd >= 0)
		put(sync_fd, buf, n);
}

/* ERROR line on the sync fd (or "berth-stage: ..." on stderr once it is closed), then exit 1. */
NORETURN PRINTF(2, 3) static void fail(int err, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	size_t n = vline(buf, sizeof buf, sync_fd >= 0 ? "ERROR " : "berth-stage: ", err, fmt, ap);
	va_end(ap);
	put(sync_fd >= 0 ? sync_fd : 2, buf, n);
	_exit(1);
}
#define die(...) fail(errno, __VA_ARGS__)

/* ---------- plan arguments ---------- */

static unsigned long long num(const char *s, unsigned long long max, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno || v > max)
		fail(0, "invalid %s \"%s\" in plan", what, s);
	return v;
}

static bool flag(const char *s, const char *what)
{
	return num(s, 1, what) == 1;
}

static void write_all_or_die(int fd, const struct arg *a, const char *what)
{
	ssize_t n = write(fd, a->s, a->len);
	if (n < 0)
		die("write %s", what);
	if ((size_t)n != a->len)
		fail(EIO, "write %s (short write)", what);
}

static void write_file(int dirfd, const char *path, const struct arg *a, const char *shown)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", shown);
	write_all_or_die(fd, a, shown);
	close(fd);
}

/* ---------- start-up: sealed memfd and plan ---------- */

/*
 * CVE-2019-5736: a container process must never be able to open our binary
 * for writing through /proc/<pid>/exe.  Run from a sealed, anonymous copy.
 */
static void ensure_sealed(char **argv)
{
	const char *v = getenv(SEALED_ENV);
	if (v && strcmp(v, "1") == 0) {
		unsetenv(SEALED_ENV);
		/* The variable only prevents a loop; trust the seals, not the environment. */
		int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
		int seals = fd < 0 ? -1 : fcntl(fd, F_GET_SEALS);
		if (seals < 0 || (seals & SEALS) != SEALS)
			fail(0, "berth-stage is not running from a sealed memfd");
		close(fd);
		return;
	}
	int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (exe < 0)
		die("open /proc/self/exe");
	struct stat st;
	if (fstat(exe, &st) < 0)
		die("stat /proc/self/exe");
	int mfd = memfd_create("berth-stage", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		die("memfd_create");
	for (off_t done = 0; done < st.st_size;) {
		ssize_t n = sendfile(mfd, exe, NULL, (size_t)(st.st_size - done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail(n < 0 ? errno : EIO, "copy /proc/self/exe to memfd");
		done += n;
	}
	if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0)
		die("seal memfd");
	close(exe);
	if (setenv(SEALED_ENV, "1", 1) < 0)
		die("setenv");
	extern char **environ;
	fexecve(mfd, argv, environ);
	die("re-exec from sealed memfd");
}

static void read_full(int fd, void *buf, size_t len)
{
	for (char *p = buf; len > 0;) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail(n < 0 ? errno : 0, "read plan%s", n == 0 ? ": unexpected end of file" : "");
		p += n;
		len -= (size_t)n;
	}
}

static uint32_t le(const unsigned char *p, int bytes)
{
	uint32_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static struct rec *read_plan(size_t *count)
{
	unsigned char hdr[4];
	read_full(sync_fd, hdr, 4);
	size_t size = le(hdr, 4);
	if (size > MAX_PLAN)
		fail(0, "plan too large (%zu bytes)", size);
	unsigned char *p = malloc(size ? size : 1);
	if (!p)
		die("malloc");
	read_full(sync_fd, p, size);

	struct rec *recs = NULL;
	size_t n = 0, off = 0;
	while (off < size) {
		if (size - off < 4)
			fail(0, "malformed plan: truncated record at byte %zu", off);
		struct rec r = {le(p + off, 2), le(p + off + 2, 2), NULL};
		off += 4;
		if (!(r.a = calloc(r.argc + 1, sizeof *r.a)))
			die("malloc");
		for (unsigned i = 0; i < r.argc; i++) {
			if (size - off < 4 || size - off - 4 < le(p + off, 4))
				fail(0, "malformed plan: truncated argument at byte %zu", off);
			size_t len = le(p + off, 4);
			off += 4;
			if (!(r.a[i].s = malloc(len + 1)))
				die("malloc");
			memcpy(r.a[i].s, p + off, len);
			r.a[i].s[len] = 0;
			r.a[i].len = len;
			off += len;
		}
		if (!(recs = realloc(recs, (n + 1) * sizeof *recs)))
			die("malloc");
		recs[n++] = r;
	}
	free(p);
	*count = n;
	return recs;
}

/* ---------- path resolution inside the rootfs ---------- */

/* Symlinks are followed but confined to the root; /proc magic links are refused. */
static int in_root(const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd, tries = 0;
	if (root_fd < 0) {
		errno = EBADF;
		return -1;
	}
	/* EAGAIN: a concurrent rename raced the lookup; just try again */
	do
		fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
	while (fd < 0 && errno == EAGAIN && ++tries < 64);
	return fd;
}

static void need_root(const char *op, const char *path)
{
	if (root_fd < 0)
		fail(0, "%s %s: no ROOTFS before this operation", op, path);
}

/* "/a//b/" -> parent "/a", base "b"; the parent of "b" or "/b" is "/"; base of "/" is "". */
static void split_path(const char *path, char **parent, char **base)
{
	size_t n = strlen(path), b, p;
	while (n > 1 && path[n - 1] == '/')
		n--;
	for (b = n; b > 0 && path[b - 1] != '/'; b--)
		;
	for (p = b; p > 1 && path[p - 1] == '/'; p--)
		;
	*base = strndup(path + b, n - b);
	*parent = p ? strndup(path, p) : strdup("/");
	if (!*base || !*parent)
		die("malloc");
}

static void close_keep_errno(int fd)
{
	int e = errno;
	if (fd >= 0)
		close(fd);
	errno = e;
}

/*
 * O_PATH fd of directory `path` in root, creating missing components (0755)
 * one by one: each mkdirat() happens in a parent that openat2() resolved, so
 * a symlink anywhere on the way can never make us create outside the root.
 */
static int mkdir_in_root(const char *path)
{
	int fd = in_root(path, O_PATH | O_DIRECTORY);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	char *parent, *base;
	split_path(path, &parent, &base);
	int pfd = *base ? mkdir_in_root(parent) : (errno = ENOENT, -1), r = -1;
	if (pfd >= 0) {
		mode_t old = umask(0);
		r = mkdirat(pfd, base, 0755);
		umask(old);
		if (r < 0 && errno == EEXIST)   /* raced, or a dangling symlink: the re-resolve decides */
			r = 0;
	}
	close_keep_errno(pfd);
	free(parent);
	free(base);
	return r < 0 ? -1 : in_root(path, O_PATH | O_DIRECTORY);
}

/* Same for a file (created empty, 0644); O_EXCL|O_NOFOLLOW so a dangling symlink is never followed. */
static int file_in_root(const char *path)
{
	int fd = in_root(path, O_PATH);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	char *parent, *base;
	split_path(path, &parent, &base);
	int pfd = *base ? mkdir_in_root(parent) : (errno = ENOENT, -1), r = -1;
	if (pfd >= 0) {
		mode_t old = umask(0);
		r = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0644);
		umask(old);
		if (r >= 0)
			close(r);
		else if (errno == EEXIST)
			r = 0;
	}
	close_keep_errno(pfd);
	free(parent);
	free(base);
	return r < 0 ? -1 : in_root(path, O_PATH);
}

/* Parent directory of `path` (created if missing) as an O_PATH fd, and the last component. */
static int parent_in_root(const char *path, char **base)
{
	char *parent;
	split_path(path, &parent, base);
	int pfd = mkdir_in_root(parent);
	free(parent);
	if (pfd >= 0 && !**base) {   /* the path is the root itself */
		close(pfd);
		errno = EEXIST;
		return -1;
	}
	return pfd;
}

/* ---------- mounting onto resolved fds ---------- */

/* "/proc/self/fd/<fd>", but only if /proc really is a procfs (after PIVOT it is the container's) */
static const char *fd_path(int fd, char buf[32])
{
	struct statfs sfs;
	if (statfs("/proc/self/fd", &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)
		return NULL;
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}

/*
 * mount(2) onto what O_PATH fd `fd` refers to.  With src_fd >= 0 the source
 * is an fd as well (a bind of something resolved in root).  Without a usable
 * /proc, a directory target can still be reached as "." after fchdir().
 */
static int mount_fd(const char *src, int src_fd, int fd, const char *type, unsigned long flags, const char *data)
{
	char tb[32], sb[32];
	const char *target = fd_path(fd, tb);
	if (target)
		return mount(src_fd >= 0 ? fd_path(src_fd, sb) : src, target, type, flags, data);

	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode) || (src_fd >= 0 && src_fd != fd)) {
		errno = ENOENT;
		return -1;
	}
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC), r = -1;
	if (cwd < 0)
		return -1;
	if (fchdir(fd) == 0)
		r = mount(src_fd >= 0 ? "." : src, ".", type, flags, data);
	int e = errno;
	if (fchdir(cwd) < 0 && r == 0)
		e = errno, r = -1;
	close(cwd);
	errno = e;
	return r;
}

/*
 * In a user namespace the kernel refuses a remount that would clear a flag
 * locked on the mount (nosuid, nodev, noexec, rdonly, atime).  Keep them.
 * The atime mode is locked as a whole, so it is replaced rather than OR-ed.
 */
static unsigned long with_locked(const struct statvfs *sv, unsigned long flags)
{
	static const struct { unsigned long st, ms; } keep[] = {
		{ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV}, {ST_NOEXEC, MS_NOEXEC}, {ST_RDONLY, MS_RDONLY},
	};
	for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
		if (sv->f_flag & keep[i].st)
			flags |= keep[i].ms;
	if (sv->f_flag & (ST_NOATIME | ST_RELATIME | ST_NODIRATIME))
		flags &= ~(unsigned long)(MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME);
	if (sv->f_flag & ST_NOATIME)
		flags |= MS_NOATIME;
	else if (sv->f_flag & ST_RELATIME)
		flags |= MS_RELATIME;
	if (sv->f_flag & ST_NODIRATIME)
		flags |= MS_NODIRATIME;
	return flags;
}

static int mount_fd_retry(const char *src, int src_fd, int fd, const char *type, unsigned long flags, const char *data)
{
	struct statvfs sv;
	int r = mount_fd(src, src_fd, fd, type, flags, data);
	if (r < 0 && errno == EPERM && (flags & MS_REMOUNT)) {
		if (fstatvfs(fd, &sv) == 0)
			return mount_fd(src, src_fd, fd, type, with_locked(&sv, flags), data);
		errno = EPERM;
	}
	return r;
}

static const char *or_null(const struct arg *a)
{
	return a->len ? a->s : NULL;
}

static void op_mount(const struct arg *a)
{
	const char *src = or_null(&a[0]), *target = a[1].s, *type = or_null(&a[2]), *data = or_null(&a[4]);
	const char *kind = a[5].s, *what = src ? src : type ? type : "none";
	unsigned long flags = num(a[3].s, ULONG_MAX, "mount flags");
	struct statvfs sv;

	if (!flag(a[6].s, "mount in_root")) {
		int r = mount(src, target, type, flags, data);
		if (r < 0 && errno == EPERM && (flags & MS_REMOUNT)) {
			if (statvfs(target, &sv) == 0)
				r = mount(src, target, type, with_locked(&sv, flags), data);
			else
				errno = EPERM;
		}
		if (r < 0)
			die("mount %s on %s", what, target);
		/*
		 * The root fd must see what is mounted on the rootfs path now (e.g.
		 * the rootfs bound onto itself), whichever order the plan used.
		 */
		if (root_path && !pivoted) {
			int fd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				die("open rootfs %s", root_path);
			close(root_fd);
			root_fd = fd;
		}
		return;
	}

	need_root("mount", target);
	int fd;
	if (strcmp(kind, "realdir") == 0) {
		/* procfs/sysfs: on an ordinary directory, never through a symlink (a /proc that
		 * points elsewhere would dodge maskedPaths and readonlyPaths, CVE-2019-19921) */
		struct open_how how = {.flags = O_PATH | O_CLOEXEC,
		                       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
		int probe = (int)syscall(SYS_openat2, root_fd, target, &how, sizeof how);
		if (probe < 0 && errno == ELOOP)
			fail(0, "mount %s on %s: the destination must be an ordinary directory, not a symlink or a path through one", what, target);
		if (probe >= 0)
			close(probe);
		fd = mkdir_in_root(target);
	} else if (strcmp(kind, "dir") == 0)
		fd = mkdir_in_root(target);
	else if (strcmp(kind, "file") == 0)
		fd = file_in_root(target);
	else if (strcmp(kind, "none") == 0)
		fd = in_root(target, O_PATH);
	else
		fail(0, "invalid mount target_kind \"%s\" in plan", kind);
	if (fd < 0 || mount_fd_retry(src, -1, fd, type, flags, data) < 0)
		die("mount %s on %s", what, target);
	close(fd);
}

static void op_mknod(const struct arg *a)
{
	const char *path = a[0].s, *t = a[1].s;
	mode_t type = strcmp(t, "c") == 0 || strcmp(t, "u") == 0 ? S_IFCHR
		    : strcmp(t, "b") == 0 ? S_IFBLK : strcmp(t, "p") == 0 ? S_IFIFO : 0;
	if (!type)
		fail(0, "invalid device type \"%s\" in plan", t);
	unsigned maj = (unsigned)num(a[2].s, UINT_MAX, "major"), min = (unsigned)num(a[3].s, UINT_MAX, "minor");
	mode_t mode = (mode_t)num(a[4].s, 07777, "mode");
	uid_t uid = (uid_t)num(a[5].s, UINT32_MAX - 1, "uid");
	gid_t gid = (gid_t)num(a[6].s, UINT32_MAX - 1, "gid");
	char *base;

	need_root("mknod", path);
	int pfd = parent_in_root(path, &base);
	if (pfd < 0)
		die("mknod %s", path);
	struct stat st;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) && unlinkat(pfd, base, 0) < 0)
		die("remove %s", path);
	mode_t old = umask(0);
	int r = mknodat(pfd, base, type | mode, makedev(maj, min));
	umask(old);
	if (r < 0)
		die("mknod %s", path);
	if (fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		die("chown %s", path);
	if (fchmodat(pfd, base, mode, 0) < 0)   /* umask and mknod may drop setuid etc. */
		die("chmod %s", path);
	close(pfd);
	free(base);
}

static void op_symlink(const struct arg *a)
{
	const char *path = a[1].s;
	char *base;
	need_root("symlink", path);
	int pfd = parent_in_root(path, &base);
	if (pfd < 0 || (symlinkat(a[0].s, pfd, base) < 0 && errno != EEXIST))
		die("symlink %s", path);
	close(pfd);
	free(base);
}

static void op_mask(const char *path)
{
	struct stat st;
	need_root("mask", path);
	int fd = in_root(path, O_PATH);
	if (fd < 0 && errno == ENOENT)
		return;
	if (fd < 0 || fstat(fd, &st) < 0)
		die("mask %s", path);
	if (S_ISDIR(st.st_mode)) {
		if (mount_fd("tmpfs", -1, fd, "tmpfs", MS_RDONLY, NULL) < 0)
			die("mask %s", path);
	} else {
		/* Only the real null device may be bound over it (cf. CVE-2025-31133). */
		int null = in_root("/dev/null", O_PATH);
		if (null < 0 || fstat(null, &st) < 0)
			die("mask %s: open /dev/null", path);
		if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
			fail(0, "mask %s: /dev/null is not the null device", path);
		if (mount_fd(NULL, null, fd, NULL, MS_BIND, NULL) < 0)
			die("mask %s", path);
		close(null);
	}
	close(fd);
}

static void op_readonly(const char *path)
{
	need_root("readonly", path);
	int fd = in_root(path, O_PATH);
	if (fd < 0 && errno == ENOENT)
		return;
	if (fd < 0 || mount_fd(NULL, fd, fd, NULL, MS_BIND | MS_REC, NULL) < 0)
		die("bind %s", path);
	/* fd still refers to what lies below the new bind mount: look it up again */
	close(fd);
	fd = in_root(path, O_PATH);
	/*
	 * Keep nosuid/nodev/noexec of the bind (as runc does): a read-only
	 * remount must never make setuid binaries or devices usable again.
	 */
	struct statvfs sv;
	unsigned long keep = 0;
	if (fd >= 0 && fstatvfs(fd, &sv) == 0)
		keep = (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
		       (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
	if (fd < 0 || mount_fd_retry(NULL, -1, fd, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0)
		die("remount %s read-only", path);
	close(fd);
}

/* mount_setattr(2) on the mount at `path` (in root), and with `recursive` on every mount below it */
static void op_mount_setattr(const struct arg *a)
{
	const char *path = a[0].s;
	struct mount_attr attr = {
		.attr_set = num(a[1].s, UINT64_MAX, "mount attr_set"),
		.attr_clr = num(a[2].s, UINT64_MAX, "mount attr_clr"),
	};
	unsigned flags = AT_EMPTY_PATH | (flag(a[3].s, "mount_setattr recursive") ? AT_RECURSIVE : 0);
	need_root("mount_setattr", path);
	int fd = in_root(path, O_PATH);
	if (fd < 0 || syscall(SYS_mount_setattr, fd, "", flags, &attr, sizeof attr) < 0)
		die("mount_setattr %s", path);
	close(fd);
}

/* A decoded mountinfo field (\040 etc. are octal escapes); the result is malloc'ed. */
static char *mountinfo_unescape(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		die("malloc");
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			*o++ = (char)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 | (s[i + 3] - '0'));
			i += 3;
		} else
			*o++ = s[i];
	}
	*o = 0;
	return out;
}

/*
 * --no-pivot: the host's tree stays in the mount namespace below the moved rootfs, and a full
 * (root "/") procfs or sysfs mount anywhere in it lets the kernel allow a fresh, unmasked procfs
 * or sysfs mount (mount_too_revealing) inside the container.  Detach every such mount outside the
 * rootfs first, or cover it with a tmpfs where that is refused (as runc does).
 */
static void hide_host_proc_sys(void)
{
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open /proc/self/mountinfo");
	size_t len = 0, cap = 0;
	char *buf = NULL;
	for (;;) {
		if (len + 4096 > cap && !(buf = realloc(buf, cap = cap ? cap * 2 : 65536)))
			die("malloc");
		ssize_t got = read(fd, buf + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			die("read /proc/self/mountinfo");
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	buf[len] = 0;
	size_t rlen = strlen(root_path);
	while (rlen > 1 && root_path[rlen - 1] == '/')
		rlen--;
	/* each line: id parent maj:min root mountpoint options [optional…] - fstype source superopts */
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *f[5], *p = line;
		int nf = 0;
		while (nf < 5 && p && *p) {
			f[nf++] = p;
			p = strchr(p, ' ');
			if (p)
				*p++ = 0;
		}
		char *sep = p ? strstr(p, " - ") : NULL;   /* fields are escaped: no stray " - " */
		if (nf < 5 || !sep)
			continue;
		char *fstype = sep + 3, *end = strchr(fstype, ' ');
		if (end)
			*end = 0;
		if (strcmp(f[3], "/") != 0 || (strcmp(fstype, "proc") != 0 && strcmp(fstype, "sysfs") != 0))
			continue;
		char *target = mountinfo_unescape(f[4], strlen(f[4]));
		if (strncmp(target, root_path, rlen) == 0 && (target[rlen] == '/' || target[rlen] == 0)) {
			free(target);
			continue;
		}
		/* never let the unmount propagate to the host */
		if (mount(NULL, target, NULL, MS_SLAVE | MS_REC, NULL) < 0) {
			if (errno == ENOENT) {   /* a parent was detached already */
				free(target);
				continue;
			}
			die("make %s rslave", target);
		}
		if (umount2(target, MNT_DETACH) < 0) {
			if (errno != EINVAL && errno != EPERM)
				die("unmount %s", target);
			if (mount("tmpfs", target, "tmpfs", 0, NULL) < 0)
				die("cover %s with a tmpfs", target);
		}
		free(target);
	}
	free(buf);
}

/* mode 0: pivot_root; 1: move the rootfs onto / and chroot (--no-pivot; full procfs and sysfs
 * mounts of the host are hidden first); 2: chroot only (no mount namespace: the rootfs stays
 * where it is in the host's tree) */
static void op_pivot(unsigned mode)
{
	bool no_pivot = mode == 1;
	need_root("pivot", "/");
	if (fchdir(root_fd) < 0)
		die("chdir to rootfs");
	if (mode == 2) {
		if (chroot(".") < 0)
			die("chroot");
	} else if (!no_pivot) {
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			die("pivot_root");
		/*
		 * The old root is now stacked on ".".  Make it a slave first so that
		 * detaching it cannot propagate unmounts to the host when the rootfs
		 * propagation is shared (runc does the same).
		 */
		if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			die("make old root rslave");
		if (umount2(".", MNT_DETACH) < 0)
			die("unmount old root");
	} else {
		hide_host_proc_sys();
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
			die("move rootfs to /");
		if (chroot(".") < 0)
			die("chroot");
	}
	if (chdir("/") < 0)
		die("chdir /");
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("open /");
	close(root_fd);
	root_fd = fd;
	pivoted = true;
}

/* ---------- terminal ---------- */

static void send_fd(int sock, int fd, const void *data, size_t len, const char *what)
{
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct iovec iov = {(void *)data, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	memset(&u, 0, sizeof u);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die("send %s", what);
	if ((size_t)n < len)   /* a stream may take a long payload in parts; the fd went with the first */
		put(sock, (const char *)data + n, len - (size_t)n);
}

static void op_console(const struct arg *a)
{
	unsigned short rows = (unsigned short)num(a[0].s, USHRT_MAX, "rows");
	unsigned short cols = (unsigned short)num(a[1].s, USHRT_MAX, "cols");
	char name[32];
	int pts;

	if (console_fd < 0)
		fail(0, "console: no CONSOLE_SOCKET in plan");
	need_root("open", "/dev/ptmx");
	int m = in_root("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (m < 0)
		die("open /dev/ptmx");
	if (unlockpt(m) < 0)
		die("unlockpt /dev/ptmx");
	/* TIOCGPTPEER opens the peer through the master: no /dev/pts path lookup to race */
	int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		die("open pty peer");
	if (ioctl(m, TIOCGPTN, &pts) < 0)
		die("get pty number");
	if (rows || cols) {
		struct winsize ws = {.ws_row = rows, .ws_col = cols};
		if (ioctl(m, TIOCSWINSZ, &ws) < 0)
			die("set console size");
	}
	/* no "\n" → "\r\n" on output, as runc and crun set their consoles up */
	struct termios tio;
	if (tcgetattr(s, &tio) == 0) {
		tio.c_oflag &= ~(tcflag_t)ONLCR;
		tcsetattr(s, TCSANOW, &tio);
	}
	snprintf(name, sizeof name, "/dev/pts/%d", pts);
	if (a[2].len) {
		/* the console device the plan names (runc: /dev/console) is this pty */
		need_root("mount console", a[2].s);
		int t = file_in_root(a[2].s);
		if (t < 0)
			die("create %s", a[2].s);
		if (mount_fd(NULL, s, t, NULL, MS_BIND, NULL) < 0)
			die("bind %s onto %s", name, a[2].s);
		close(t);
	}
	send_fd(console_fd, m, name, strlen(name), "console fd");
	close(m);
	close(console_fd);
	console_fd = -1;
	if (setsid() < 0)
		die("setsid");
	if (ioctl(s, TIOCSCTTY, 0) < 0)
		die("set controlling terminal %s", name);
	for (int i = 0; i < 3; i++)
		if (dup2(s, i) < 0)
			die("dup2 console onto %d", i);
	if (s > 2)
		close(s);
}

/* ---------- credentials ---------- */

/* A non-root user must be able to reopen its own stdio (/dev/stdout, /proc/self/fd/N, the pty):
 * hand the inodes of fds 0-2 to the user, as runc does. The group stays (a devpts mount may prefer
 * another one), /dev/null is left alone, and inodes the user namespace cannot map are skipped. */
static void give_stdio_to(uid_t uid)
{
	for (int fd = 0; fd <= 2; fd++) {
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_uid == uid)
			continue;
		if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
			continue;
		if (fchown(fd, uid, (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
			die("fchown of stdio fd %d to uid %u", fd, uid);
	}
}

static void op_user(const struct arg *a)
{
	uid_t uid = (uid_t)num(a[0].s, UINT32_MAX - 1, "uid");
	gid_t gid = (gid_t)num(a[1].s, UINT32_MAX - 1, "gid");
	mode_t mask = (mode_t)num(a[2].s, 0777, "umask");
	const char *groups = a[3].s;

	/* keep the permitted set across setresuid(); CAPS sets the final sets */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		die("prctl keepcaps");
	if (strcmp(groups, "-") != 0) {  /* "-": setgroups is denied in this user ns */
		size_t n = *groups ? 1 : 0;
		for (const char *p = groups; *p; p++)
			n += *p == ',';
		gid_t *list = calloc(n + 1, sizeof *list);
		char *copy = strdup(groups), *save = NULL;
		if (!list || !copy)
			die("malloc");
		n = 0;
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
			list[n++] = (gid_t)num(t, UINT32_MAX - 1, "gid");
		if (setgroups(n, list) < 0)
			die("setgroups %s", groups);
		free(list);
		free(copy);
	}
	give_stdio_to(uid);
	if (setresgid(gid, gid, gid) < 0)
		die("setresgid %u", gid);
	if (setresuid(uid, uid, uid) < 0)
		die("setresuid %u", uid);
	umask(mask);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		die("prctl keepcaps");
}

static void op_caps(const struct arg *a)
{
	uint64_t e = num(a[0].s, UINT64_MAX, "capabilities"), p = num(a[1].s, UINT64_MAX, "capabilities");
	uint64_t i = num(a[2].s, UINT64_MAX, "capabilities"), amb = num(a[3].s, UINT64_MAX, "capabilities");
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2] = {
		{(uint32_t)e, (uint32_t)p, (uint32_t)i},
		{(uint32_t)(e >> 32), (uint32_t)(p >> 32), (uint32_t)(i >> 32)},
	};
	if (syscall(SYS_capset, &h, d) < 0)
		die("capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		die("clear ambient capabilities");
	for (unsigned c = 0; c < 64; c++)
		if ((amb >> c & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			die("raise ambient capability %u", c);
}

/* ---------- processes ---------- */

/* Every fd >= from becomes close-on-exec. */
static void cloexec_from(unsigned from)
{
	if (syscall(SYS_close_range, from, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	struct rlimit rl;   /* pre-5.11 kernels */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur > (1u << 20))
		rl.rlim_cur = 1u << 20;
	for (unsigned fd = from; fd < rl.rlim_cur; fd++) {
		int f = fcntl((int)fd, F_GETFD);
		if (f >= 0 && !(f & FD_CLOEXEC))
			fcntl((int)fd, F_SETFD, f | FD_CLOEXEC);
	}
}

static char **string_list(const struct arg *a, size_t n)
{
	char **v = calloc(n + 1, sizeof *v);
	if (!v)
		die("malloc");
	for (size_t i = 0; i < n; i++)
		v[i] = a[i].s;
	return v;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Keep the last bytes of the hook's stderr for the error message. */
static void keep_tail(char *tail, size_t *tlen, size_t cap, const char *buf, size_t n)
{
	if (n >= cap) {
		memcpy(tail, buf + n - cap, cap);
		*tlen = cap;
		return;
	}
	if (*tlen + n > cap) {
		memmove(tail, tail + (*tlen + n - cap), cap - n);
		*tlen = cap - n;
	}
	memcpy(tail + *tlen, buf, n);
	*tlen += n;
}

static void op_run_hook(const struct rec *r)
{
	const struct arg *a = r->a;
	unsigned long long timeout = num(a[0].s, 1ULL << 31, "hook timeout");
	/* an empty stdin means the state JSON Node sent at the latest SYNC */
	const struct arg *in = a[1].len ? &a[1] : &sync_data;
	const char *path = a[2].s;
	size_t argc = num(a[3].s, r->argc - 4, "hook argc");
	char **argv = string_list(a + 4, argc), **envp = string_list(a + 4 + argc, r->argc - 4 - argc);
	int inp[2], errp[2];

	if (pipe2(inp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		die("hook %s: pipe", path);
	pid_t pid = fork();
	if (pid < 0)
		die("hook %s: fork", path);
	if (pid == 0) {
		/* stdout goes to our stderr; stderr through a pipe we copy to our stderr */
		if (dup2(inp[0], 0) < 0 || dup2(2, 1) < 0 || dup2(errp[1], 2) < 0)
			_exit(127);
		cloexec_from(3);   /* the sync fd and preserved fds are not the hook's */
		execve(path, argv, envp);
		dprintf(2, "berth-stage: exec hook %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(inp[0]);
	close(errp[1]);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		die("hook %s: pidfd_open", path);
	fcntl(inp[1], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	/* a hook that exits without reading stdin must give us EPIPE, not SIGPIPE */
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
	sigaction(SIGPIPE, &ign, &old_pipe);

	int wfd = inp[1], efd = errp[0];
	size_t off = 0, tlen = 0;
	char tail[1024], buf[4096];
	long long deadline = timeout ? now_ms() + (long long)timeout * 1000 : 0;
	if (in->len == 0)
		close(wfd), wfd = -1;
	for (bool exited = false; !exited;) {
		struct pollfd p[3] = {{pidfd, POLLIN, 0}, {wfd, POLLOUT, 0}, {efd, POLLIN, 0}};
		long long left = deadline ? deadline - now_ms() : -1;
		int n = left == 0 || left < -1 ? 0 : poll(p, 3, left > INT_MAX ? INT_MAX : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("hook %s: poll", path);
		if (n == 0 && deadline && now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail(0, "hook %s timed out after %llus", path, timeout);
		}
		exited = p[0].revents != 0;
		if (p[1].revents) {
			ssize_t w = write(wfd, in->s + off, in->len - off);
			if (w > 0)
				off += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == in->len)
				close(wfd), wfd = -1;
		}
		/* after exit drain what is buffered; a daemonized grandchild may hold the pipe open */
		while (efd >= 0 && (p[2].revents || exited)) {
			ssize_t rd = read(efd, buf, sizeof buf);
			if (rd > 0) {
				put(2, buf, (size_t)rd);
				keep_tail(tail, &tlen, sizeof tail, buf, (size_t)rd);
			}
			if (rd == 0 || (rd < 0 && errno != EINTR && errno != EAGAIN))
				close(efd), efd = -1;
			if (rd <= 0 || !exited)
				break;
		}
	}
	sigaction(SIGPIPE, &old_pipe, NULL);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("hook %s: waitpid", path);
	close(pidfd);
	if (wfd >= 0)
		close(wfd);
	if (efd >= 0)
		close(efd);
	free(argv);
	free(envp);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	while (tlen > 0 && isspace((unsigned char)tail[tlen - 1]))
		tlen--;
	if (WIFSIGNALED(st))
		fail(0, "hook %s killed by signal %d%s%.*s", path, WTERMSIG(st), tlen ? ": " : "", (int)tlen, tail);
	fail(0, "hook %s exited with status %d%s%.*s", path, WEXITSTATUS(st), tlen ? ": " : "", (int)tlen, tail);
}

static void op_exec_prepare(const struct rec *r)
{
	const char *path = r->a[0].len ? r->a[0].s : DEFAULT_PATH;
	size_t argc = num(r->a[1].s, r->argc - 2, "exec argc");
	if (argc == 0)
		fail(0, "exec: no command");
	exec_argv = string_list(r->a + 2, argc);
	exec_envp = string_list(r->a + 2 + argc, r->argc - 2 - argc);
	const char *name = exec_argv[0];
	if (strchr(name, '/')) {
		/* report a missing or non-executable program at create, as runc does, not after start */
		struct stat st;
		if (stat(name, &st) < 0)
			die("exec: \"%s\"", name);
		if (!S_ISREG(st.st_mode) || faccessat(AT_FDCWD, name, X_OK, AT_EACCESS) < 0)
			fail(S_ISDIR(st.st_mode) ? EISDIR : EACCES, "exec: \"%s\"", name);
		exec_path = exec_argv[0];
		return;
	}
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int len = (int)(end - p);
		char *cand;
		struct stat st;
		/* an empty element means the current directory, as in Go's LookPath */
		if (asprintf(&cand, "%.*s/%s", len ? len : 1, len ? p : ".", name) < 0)
			die("malloc");
		if (faccessat(AT_FDCWD, cand, X_OK, AT_EACCESS) == 0 && stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			exec_path = cand;
			return;
		}
		free(cand);
		if (!*end)
			break;
		p = end;
	}
	fail(0, "exec: \"%s\": executable file not found in $PATH", name);
}

static void op_wait_start(void)
{
	if (fifo_fd < 0)
		fail(0, "wait start: no FIFO in plan");
	msg("READY");
	close(sync_fd);
	sync_fd = -1;
	for (;;) {
		struct pollfd p = {fifo_fd, POLLIN, 0};
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll start fifo");
		}
		char c;
		ssize_t n = read(fifo_fd, &c, 1);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n == 1 && c == '1')
			return;
		_exit(0);   /* deleted before start: EOF, hang-up without data, or not '1' */
	}
}

static NORETURN void op_exec(const char *preserve)
{
	unsigned pc = (unsigned)num(preserve, INT_MAX - 3, "preserve_count");
	if (!exec_path)
		fail(0, "exec: EXEC without EXEC_PREPARE in plan");
	cloexec_from(3 + pc);
	if (fifo_fd >= 0)
		close(fifo_fd);
	execve(exec_path, exec_argv, exec_envp);
	dprintf(2, "berth-stage: exec %s: %s\n", exec_path, strerror(errno));
	_exit(127);
}

/* ---------- stage 0: clone and (maybe) stay ---------- */

static const int fwd_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

static void forward(int sig)
{
	int e = errno;
	if (sig == SIGWINCH && proxy_fd >= 0)
		winch = 1;   /* the relay copies the new size onto the pty, which signals the container */
	else
		kill(fwd_pid, sig);
	errno = e;
}

static int recv_fd(int sock)
{
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	char name[64];
	struct iovec iov = {name, sizeof name};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	return fd;
}

static void copy_winsize(int from, int to)
{
	struct winsize ws;
	if (ioctl(from, TIOCGWINSZ, &ws) == 0 && (ws.ws_row || ws.ws_col))
		ioctl(to, TIOCSWINSZ, &ws);
}

/* Relays our stdin to the pty master and the master to our stdout until the init exits
 * (`run` in the foreground with process.terminal and no --console-socket). */
static int relay_console(pid_t pid)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		die("pidfd_open %d", (int)pid);
	int master = -1, in = 0;
	struct termios saved;
	bool raw = isatty(0) && tcgetattr(0, &saved) == 0;
	char buf[8192];
	bool exited = false;
	while (!exited) {
		if (winch && master >= 0) {
			winch = 0;
			copy_winsize(0, master);
		}
		struct pollfd p[3] = {{pidfd, POLLIN, 0}, {master >= 0 ? master : proxy_fd, POLLIN, 0}, {master >= 0 ? in : -1, POLLIN, 0}};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll console");
		}
		exited = p[0].revents != 0;
		if (master < 0 && p[1].revents) {
			if ((master = recv_fd(proxy_fd)) < 0)
				die("receive the console from the container");
			close(proxy_fd);
			proxy_fd = -2;   /* still "proxy mode" for SIGWINCH, but nothing to poll */
			if (raw) {
				struct termios t = saved;
				cfmakeraw(&t);
				tcsetattr(0, TCSANOW, &t);
			}
			copy_winsize(0, master);
			continue;
		}
		if (master >= 0 && (p[1].revents || exited)) {
			/* after exit: drain what the container wrote last */
			int fl = fcntl(master, F_GETFL);
			if (exited)
				fcntl(master, F_SETFL, fl | O_NONBLOCK);
			for (;;) {
				ssize_t n = read(master, buf, sizeof buf);
				if (n > 0) {
					put(1, buf, (size_t)n);
					if (!exited)
						break;
					continue;
				}
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0 && !exited && (n == 0 || errno == EIO))
					p[1].events = 0;   /* every slave closed */
				break;
			}
		}
		if (master >= 0 && in >= 0 && p[2].revents && !exited) {
			ssize_t n = read(in, buf, sizeof buf);
			if (n > 0)
				put(master, buf, (size_t)n);
			else if (n == 0 || errno != EINTR)
				in = -1;   /* our stdin ended: stop reading it, keep the output flowing */
		}
	}
	if (raw)
		tcsetattr(0, TCSANOW, &saved);
	close(pidfd);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid %d", (int)pid);
	return st;
}

static void write_map(pid_t pid, const char *name, const struct arg *a)
{
	char path[64], shown[64];
	if (a->len == 0)
		return;
	snprintf(path, sizeof path, "%d/%s", (int)pid, name);
	snprintf(shown, sizeof shown, "/proc/%d/%s", (int)pid, name);
	int fd = openat(proc_fd, path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, a->s, a->len);   /* one write, as the kernel requires */
	if (n != (ssize_t)a->len) {
		int e = n < 0 ? errno : EIO;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail(e, "%s %s", fd < 0 ? "open" : "write", shown);
	}
	close(fd);
}

/* Returns in the child; the parent never returns. */
static void op_clone(const struct arg *a)
{
	unsigned long flags = num(a[0].s, ULONG_MAX, "clone flags");
	bool stay = flag(a[1].s, "clone stay");
	int rel[2];
	sigset_t fwd, old;

	/* the low byte is the exit signal (CLONE_NEWTIME, 0x80, would land there too) */
	if (flags & CSIGNAL)
		fail(0, "invalid clone flags \"%s\" in plan", a[0].s);
	if (pipe2(rel, O_CLOEXEC) < 0)
		die("pipe");
	/* blocked until the parent's handlers are in place; the child restores its mask */
	sigemptyset(&fwd);
	for (size_t i = 0; i < sizeof fwd_signals / sizeof *fwd_signals; i++)
		sigaddset(&fwd, fwd_signals[i]);
	sigprocmask(SIG_BLOCK, &fwd, &old);

	/*
	 * The id maps are written from outside (by us, or by Node's newuidmap/newgidmap), and an
	 * unprivileged writer can only open /proc/<child>/{uid_map,gid_map,setgroups} when the child
	 * is dumpable (else they belong to root). So the child is dumpable until it is released;
	 * it sits blocked on the release pipe all that time.
	 */
	if (id_maps && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		die("prctl PR_SET_DUMPABLE");
	/* raw clone: CLONE_NEWUSER together with the other CLONE_NEW* makes the new user ns own them */
	pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid < 0)
		die("clone");
	if (id_maps && pid > 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		kill(pid, SIGKILL);
		die("prctl PR_SET_DUMPABLE");
	}
	if (pid == 0) {
		close(rel[1]);
		if (proxy_fd >= 0)
			close(proxy_fd);
		proxy_fd = -1;
		close(proc_fd);   /* the host's /proc has no business in the container */
		proc_fd = -1;
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* 'G' and our host pid (SECCOMP_NOTIFY reports it); one write of a pipe: all or nothing */
		char rb[1 + sizeof(pid_t)];
		ssize_t n;
		do
			n = read(rel[0], rb, sizeof rb);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof rb || rb[0] != 'G')
			_exit(1);   /* the parent failed and said so */
		memcpy(&host_pid, rb + 1, sizeof host_pid);
		close(rel[0]);
		if (id_maps) {
			if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
				die("prctl PR_SET_DUMPABLE");
			if (setresgid(0, 0, 0) < 0)
				die("setresgid 0");
			if (setresuid(0, 0, 0) < 0)
				die("setresuid 0");
		}
		return;
	}

	close(rel[0]);
	if (id_maps_external) {
		/* Node runs newuidmap/newgidmap against the child, then answers one byte: G = go on */
		char c = 0;
		ssize_t n;
		msg("MAPS %d", (int)pid);
		do
			n = read(sync_fd, &c, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1 || c != 'G') {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			_exit(1);   /* Node failed and reports why */
		}
	}
	if (id_maps) {
		write_map(pid, "setgroups", &id_maps[2]);
		write_map(pid, "uid_map", &id_maps[0]);
		write_map(pid, "gid_map", &id_maps[1]);
	}
	/* PID is always the first line Node sees from this container: release the child only now */
	msg("PID %d", (int)pid);
	char rb[1 + sizeof(pid_t)] = {'G'};
	memcpy(rb + 1, &pid, sizeof pid);
	if (write(rel[1], rb, sizeof rb) != (ssize_t)sizeof rb)
		die("release child");
	close(rel[1]);
	if (!stay)
		_exit(0);

	if (fifo_fd >= 0)
		close(fifo_fd);
	if (console_fd >= 0)
		close(console_fd);
	if (listener_fd >= 0)
		close(listener_fd);
	fwd_pid = pid;
	struct sigaction sa = {.sa_handler = forward, .sa_flags = SA_RESTART};
	for (size_t i = 0; i < sizeof fwd_signals / sizeof *fwd_signals; i++)
		sigaction(fwd_signals[i], &sa, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	int st;
	if (proxy_fd >= 0)
		st = relay_console(pid);
	else
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				die("waitpid %d", (int)pid);
	msg("EXIT %d", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	_exit(0);
}

/* ---------- the parent-only opcodes ---------- */

static int ns_flag(const char *type)
{
	static const struct { const char *name; int flag; } t[] = {
		{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"pid", CLONE_NEWPID}, {"net", CLONE_NEWNET},
		{"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++)
		if (strcmp(type, t[i].name) == 0)
			return t[i].flag;
	fail(0, "invalid namespace type \"%s\" in plan", type);
}

static void op_unshare_time(const struct arg *offsets)
{
	if (unshare(CLONE_NEWTIME) < 0)
		die("unshare time namespace");
	if (!offsets->len)
		return;
	int fd = openat(proc_fd, "self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("open /proc/self/timens_offsets");
	/* the kernel takes one clock per write */
	for (char *p = offsets->s, *end = p + offsets->len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		struct arg line = {p, nl ? (size_t)(nl - p + 1) : (size_t)(end - p)};
		write_all_or_die(fd, &line, "/proc/self/timens_offsets");
		p += line.len;
	}
	close(fd);
}

static void op_fifo(const char *path)
{
	mode_t old = umask(0);
	int r = mkfifo(path, 0600);
	umask(old);
	if (r < 0)
		die("mkfifo %s", path);
	/* non-blocking: there is no writer yet; WAIT_START polls for one */
	if ((fifo_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		die("open %s", path);
}

/* CONSOLE_SOCKET, SECCOMP_LISTENER: a SOCK_STREAM unix socket connected to a host path */
static int connect_unix(const char *path, const char *what)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;
	if (strlen(path) >= sizeof sa.sun_path)
		fail(ENAMETOOLONG, "connect %s %s", what, path);
	strcpy(sa.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect %s %s", what, path);
	return fd;
}

/* SECCOMP_NOTIFY: load the filter (the plan's flags include SECCOMP_FILTER_FLAG_NEW_LISTENER),
 * then send the notify fd to the agent with the containerProcessState JSON: the plan's parts
 * joined with our host pid. Both fds are closed: the agent holds the only listener now. */
static void op_seccomp_notify(const struct rec *r)
{
	const struct arg *a = r->a;
	unsigned flags = (unsigned)num(a[0].s, UINT_MAX, "seccomp flags");
	size_t len = a[1].len, total = 0;
	if (len == 0 || len % sizeof(struct sock_filter) || len / sizeof(struct sock_filter) > USHRT_MAX)
		fail(0, "seccomp: invalid filter length %zu in plan", len);
	if (listener_fd < 0)
		fail(0, "seccomp notify: no SECCOMP_LISTENER in plan");
	char pid[24];
	int pidlen = snprintf(pid, sizeof pid, "%d", (int)host_pid);
	for (unsigned i = 2; i < r->argc; i++)
		total += a[i].len + (size_t)pidlen;
	char *json = malloc(total + 1), *p = json;
	if (!json)
		die("seccomp notify: malloc");
	for (unsigned i = 2; i < r->argc; i++) {
		if (i > 2) {
			memcpy(p, pid, (size_t)pidlen);
			p += pidlen;
		}
		memcpy(p, a[i].s, a[i].len);
		p += a[i].len;
	}
	struct sock_fprog prog = {(unsigned short)(len / sizeof(struct sock_filter)), (struct sock_filter *)a[1].s};
	int nfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (nfd < 0)
		die("seccomp");
	send_fd(listener_fd, nfd, json, (size_t)(p - json), "seccomp notify fd to the listener");
	close(nfd);
	close(listener_fd);
	listener_fd = -1;
	free(json);
}

/* ---------- CGROUP_DEVICES: the cgroup v2 device program (begin) ---------- */
#include <linux/bpf.h>

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* Loads the BPF_PROG_TYPE_CGROUP_DEVICE program (struct bpf_insn bytes) and attaches it to the
 * cgroup dir; programs attached there before are detached afterwards, so a second call replaces. */
static void op_cgroup_devices(const struct arg *a)
{
	const char *dir = a[0].s;
	size_t len = a[1].len;
	union bpf_attr attr;
	static char log[1 << 16];
	if (len == 0 || len % sizeof(struct bpf_insn) || len / sizeof(struct bpf_insn) > 4096)
		fail(0, "cgroup devices: invalid program length %zu in plan", len);
	memset(&attr, 0, sizeof attr);
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uintptr_t)a[1].s;
	attr.insn_cnt = (uint32_t)(len / sizeof(struct bpf_insn));
	attr.license = (uintptr_t)"Apache-2.0";
	int prog = sys_bpf(BPF_PROG_LOAD, &attr);
	if (prog < 0) {
		/* again with the verifier's log (not the first time: a too small log fails a good program) */
		int err = errno;
		attr.log_buf = (uintptr_t)log;
		attr.log_size = sizeof log;
		attr.log_level = 1;
		if (sys_bpf(BPF_PROG_LOAD, &attr) < 0)
			err = errno;
		size_t n = strnlen(log, sizeof log);
		fail(err, "load the device eBPF program for %s%s%s", dir, n ? ": verifier: " : "",
		     n > 1500 ? log + n - 1500 : log);
	}
	int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		die("open cgroup %s", dir);

	/* what is attached now: the count first, then the ids */
	uint32_t cnt = 0, flags = BPF_F_ALLOW_MULTI, *ids = NULL;
	for (int pass = 0; pass < 2; pass++) {
		memset(&attr, 0, sizeof attr);
		attr.query.target_fd = (uint32_t)cg;
		attr.query.attach_type = BPF_CGROUP_DEVICE;
		attr.query.prog_cnt = cnt;
		attr.query.prog_ids = (uintptr_t)ids;
		if (sys_bpf(BPF_PROG_QUERY, &attr) < 0)
			die("query the device programs of cgroup %s", dir);
		if (pass == 0 && (cnt = attr.query.prog_cnt) == 0)
			break;
		if (pass == 0 && !(ids = calloc(cnt, sizeof *ids)))
			die("malloc");
		cnt = attr.query.prog_cnt < cnt ? attr.query.prog_cnt : cnt;
	}
	/* A cgroup in single-program mode (attached by someone else without BPF_F_ALLOW_MULTI) only
	 * takes a replacement with its own flags; in multi mode we add ours, then remove the others. */
	if (cnt && !(attr.query.attach_flags & BPF_F_ALLOW_MULTI))
		flags = attr.query.attach_flags;
	memset(&attr, 0, sizeof attr);
	attr.target_fd = (uint32_t)cg;
	attr.attach_bpf_fd = (uint32_t)prog;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = flags;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
		die("attach the device eBPF program to cgroup %s", dir);
	for (uint32_t i = 0; i < cnt && (flags & BPF_F_ALLOW_MULTI); i++) {
		memset(&attr, 0, sizeof attr);
		attr.prog_id = ids[i];
		int old = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (old < 0 && errno == ENOENT)
			continue; /* detached meanwhile */
		if (old < 0)
			die("get the old device program %u of cgroup %s", ids[i], dir);
		memset(&attr, 0, sizeof attr);
		attr.target_fd = (uint32_t)cg;
		attr.attach_bpf_fd = (uint32_t)old;
		attr.attach_type = BPF_CGROUP_DEVICE;
		if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
			die("detach the old device program %u from cgroup %s", ids[i], dir);
		close(old);
	}
	free(ids);
	close(cg);
	close(prog); /* the attachment holds the program */
}
/* ---------- CGROUP_DEVICES (end) ---------- */

/* ---------- main ---------- */

/* Only file contents, hook stdin and BPF code may contain NULs; elsewhere one would cut a string short. */
static bool binary_arg(unsigned op, unsigned i)
{
	return i == 1 && (op == OP_WRITE_FILE || op == OP_RUN_HOOK || op == OP_SECCOMP || op == OP_CGROUP_DEVICES ||
			  op == OP_SECCOMP_NOTIFY);
}

static void run(const struct rec *recs, size_t n)
{
	bool child = false;
	for (size_t i = 0; i < n; i++) {
		const struct rec *r = &recs[i];
		const struct arg *a = r->a;
		if (r->op < 1 || r->op > OP_MAX)
			fail(0, "unknown plan opcode %u", r->op);
		int want = ops[r->op].argc;
		if (want >= 0 ? r->argc != (unsigned)want : r->argc < (unsigned)-want)
			fail(0, "malformed plan: %s takes %s%d arguments, got %u", ops[r->op].name,
			     want < 0 ? "at least " : "", want < 0 ? -want : want, r->argc);
		for (unsigned j = 0; j < r->argc; j++)
			if (memchr(a[j].s, 0, a[j].len) && !binary_arg(r->op, j))
				fail(0, "malformed plan: argument %u of %s contains a NUL byte", j, ops[r->op].name);
		if ((ops[r->op].phase == 'c') != child)
			fail(0, "malformed plan: %s is only valid %s CLONE", ops[r->op].name,
			     child ? "before" : "after");

		switch (r->op) {
		case OP_SETNS: {
			int type = ns_flag(a[0].s), fd = open(a[1].s, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				die("open %s", a[1].s);
			if (setns(fd, type) < 0)
				die("setns %s %s", a[0].s, a[1].s);
			close(fd);
			break;
		}
		case OP_UNSHARE_TIME:
			op_unshare_time(&a[0]);
			break;
		case OP_OOM_SCORE_ADJ:
			write_file(proc_fd, "self/oom_score_adj", &a[0], "/proc/self/oom_score_adj");
			break;
		case OP_CGROUP_JOIN:
			write_file(AT_FDCWD, a[0].s, &(struct arg){"0", 1}, a[0].s);
			break;
		case OP_FIFO:
			op_fifo(a[0].s);
			break;
		case OP_CONSOLE_SOCKET:
			console_fd = connect_unix(a[0].s, "console socket");
			break;
		case OP_SECCOMP_LISTENER:
			listener_fd = connect_unix(a[0].s, "seccomp listener");
			break;
		case OP_SECCOMP_NOTIFY:
			op_seccomp_notify(r);
			break;
		case OP_CGROUP_DEVICES:
			op_cgroup_devices(a);
			break;
		case OP_CONSOLE_PROXY: {
			int sv[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
				die("socketpair for the console");
			console_fd = sv[0];
			proxy_fd = sv[1];
			break;
		}
		case OP_ID_MAPS:
			if (r->argc > 4)
				fail(0, "malformed plan: ID_MAPS takes 3 or 4 arguments, got %u", r->argc);
			id_maps = a;
			id_maps_external = r->argc == 4 && flag(a[3].s, "id maps external");
			break;
		case OP_CLONE:
			op_clone(a);
			child = true;
			break;
		case OP_HOSTNAME:
			if (sethostname(a[0].s, a[0].len) < 0)
				die("sethostname %s", a[0].s);
			break;
		case OP_DOMAINNAME:
			if (setdomainname(a[0].s, a[0].len) < 0)
				die("setdomainname %s", a[0].s);
			break;
		case OP_ROOTFS:
			if (root_fd >= 0)
				close(root_fd);
			if ((root_fd = open(a[0].s, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
				die("open rootfs %s", a[0].s);
			root_path = a[0].s;
			break;
		case OP_MOUNT:
			op_mount(a);
			break;
		case OP_MKNOD:
			op_mknod(a);
			break;
		case OP_SYMLINK:
			op_symlink(a);
			break;
		case OP_MASK:
			op_mask(a[0].s);
			break;
		case OP_READONLY:
			op_readonly(a[0].s);
			break;
		case OP_PIVOT:
			op_pivot((unsigned)num(a[0].s, 2, "pivot mode"));
			break;
		case OP_WRITE_FILE: {
			need_root("write", a[0].s);
			int fd = in_root(a[0].s, O_WRONLY | O_NOCTTY);
			if (fd < 0)
				die("open %s", a[0].s);
			write_all_or_die(fd, &a[1], a[0].s);
			close(fd);
			break;
		}
		case OP_SESSION_KEYRING:
			/* unavailable keyrings are not fatal (runc ignores these too) */
			if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, or_null(&a[0])) < 0 &&
			    errno != ENOSYS && errno != EACCES && errno != EPERM)
				die("join session keyring %s", a[0].s);
			break;
		case OP_RLIMIT: {
			int res = (int)num(a[0].s, INT_MAX, "rlimit resource");
			struct rlimit rl = {num(a[1].s, UINT64_MAX, "rlimit"), num(a[2].s, UINT64_MAX, "rlimit")};
			if (prlimit(0, res, &rl, NULL) < 0)
				die("set rlimit %d to %s/%s", res, a[1].s, a[2].s);
			break;
		}
		case OP_CONSOLE:
			op_console(a);
			break;
		case OP_CHDIR:
			if (chdir(a[0].s) < 0)
				die("chdir to cwd %s", a[0].s);
			break;
		case OP_CAPS_BOUNDING: {
			uint64_t keep = num(a[0].s, UINT64_MAX, "capability mask");
			for (int c = 0; c < 64; c++)
				if (!(keep >> c & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
					die("drop bounding capability %d", c);
			break;
		}
		case OP_USER:
			op_user(a);
			break;
		case OP_CAPS:
			op_caps(a);
			break;
		case OP_NO_NEW_PRIVS:
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
				die("prctl no_new_privs");
			break;
		case OP_SYNC: {
			char c;
			ssize_t got;
			if (sync_fd < 0)
				fail(0, "sync %s: the sync fd is closed", a[0].s);
			msg("SYNC %s", a[0].s);
			do
				got = read(sync_fd, &c, 1);
			while (got < 0 && errno == EINTR);
			if (got != 1 || c != 'G')
				_exit(1);
			unsigned char len[4];
			read_full(sync_fd, len, 4);
			free(sync_data.s);
			sync_data.len = le(len, 4);
			if (!(sync_data.s = malloc(sync_data.len + 1)))
				die("sync %s: malloc", a[0].s);
			read_full(sync_fd, sync_data.s, sync_data.len);
			sync_data.s[sync_data.len] = 0;
			break;
		}
		case OP_RUN_HOOK:
			op_run_hook(r);
			break;
		case OP_EXEC_PREPARE:
			op_exec_prepare(r);
			break;
		case OP_WAIT_START:
			op_wait_start();
			break;
		case OP_EXEC:
			op_exec(a[0].s);
		case OP_PERSONALITY:
			if (syscall(SYS_personality, (unsigned long)num(a[0].s, UINT32_MAX - 1, "personality")) < 0)
				die("personality %s", a[0].s);
			break;
		case OP_MOUNT_SETATTR:
			op_mount_setattr(a);
			break;
		case OP_SECCOMP: {
			unsigned flags = (unsigned)num(a[0].s, UINT_MAX, "seccomp flags");
			size_t len = a[1].len;
			if (len == 0 || len % sizeof(struct sock_filter) || len / sizeof(struct sock_filter) > USHRT_MAX)
				fail(0, "seccomp: invalid filter length %zu in plan", len);
			struct sock_fprog prog = {(unsigned short)(len / sizeof(struct sock_filter)), (struct sock_filter *)a[1].s};
			if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0)
				die("seccomp");
			break;
		}
		}
	}
}

int main(int argc, char **argv)
{
	char *end;
	if (argc != 2 || !isdigit((unsigned char)argv[1][0]) ||
	    (sync_fd = (int)strtol(argv[1], &end, 10)) < 3 || *end) {
		fprintf(stderr, "usage: berth-stage <sync-fd>\n");
		return 2;
	}
	if (fcntl(sync_fd, F_GETFD) < 0) {
		fprintf(stderr, "berth-stage: sync fd %d: %s\n", sync_fd, strerror(errno));
		return 1;
	}
	/* fds the caller leaked to us (its shell's pipes, …) must not be held open while the
	 * container waits for start, let alone reach it: keep only stdio, preserved fds and sync */
	if (syscall(SYS_close_range, (unsigned)sync_fd + 1, ~0U, 0) < 0)
		for (int fd = sync_fd + 1; fd < 1024; fd++)
			close(fd);
	ensure_sealed(argv);
	/* Not dumpable until execve (which resets it): once in the container's namespaces, no
	 * container process may ptrace us or open our /proc/<pid>/fd (runc does the same) */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die("prctl non-dumpable");
	/* before any SETNS: the id maps are written through the host's /proc */
	if ((proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		die("open /proc");
	size_t n;
	struct rec *recs = read_plan(&n);
	run(recs, n);
	/* no EXEC: the child (or a plan without CLONE) is done */
	_exit(0);
}
