/*
 * berth-monitor: the parent of one container's init (or of one exec'd process).
 * Contract: native/MONITOR.md.
 *
 * It holds the process's stdio (pipes, or the pty master it receives over a
 * unix socket), writes the json-file log, relays output and input to attach
 * clients and records the exit status, so that all of this survives the
 * daemon.  Like the stage it decides nothing: every path and limit comes from
 * the command line.  One thread, one poll() loop; SIGCHLD arrives through a
 * signalfd so that reaping happens in the loop, in order with the I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>

#define NORETURN __attribute__((noreturn))
#define PRINTF(a, b) __attribute__((format(printf, a, b)))

/* A partial line is logged as its own entry once this much has collected (as docker does). */
#define LINE_MAX_BYTES 16384
/* An attach client that falls this far behind holds the output back (as a docker attach does),
 * so that a client that reads, if slowly, loses nothing... */
#define CLIENT_MAX_BEHIND (1u << 20)
/* ...but one that takes nothing for this long is dropped: a stuck client cannot stall the
 * container (and its log) for longer. */
#define CLIENT_STALL_MS 5000
/* After the exit, output is not held back any more; a client this far behind is dropped. */
#define CLIENT_HARD_MAX (8u << 20)
/* Pending stdin above this: stop reading clients until the process has taken some. */
#define STDIN_MAX_PENDING (1u << 20)
/* The largest frame a client may send. */
#define FRAME_MAX (1u << 20)
/* How long output may still drain after the process has exited. */
#define DRAIN_MS 2000
/* How long the last frames may take to reach the clients at the end, at most. */
#define FAREWELL_MS 60000
#define READ_CHUNK 65536

enum { K_STDIN = 0, K_STDOUT = 1, K_STDERR = 2, K_EXIT = 3, K_CLOSE_STDIN = 4, K_RESIZE = 5 };

/* ---------- options ---------- */

static const char *dir;
static const char *log_path;
static unsigned long long log_max_size;
static unsigned long log_max_file = 1;
static bool opt_tty, opt_stdin, opt_stdin_once, opt_hold;
/* --command: what follows "--" is a whole command line (an external OCI runtime's `create` or
 * `exec --detach`), run with no sync fd. */
static bool opt_command;
static char **command_argv;
/* The stage's (or command's) exit status once it has been reaped; SETUP_PENDING before. */
#define SETUP_PENDING (-1000)
static int setup_status = SETUP_PENDING;
static const char *stage;
static int sync_fd = -1;

/* ---------- state ---------- */

struct buf {
	char *d;
	size_t off, len, cap; /* live bytes: d[off .. off+len) */
};

struct client {
	int fd;
	struct buf out;
	struct buf in;
	bool sent_stdin;
	long long stalled_since; /* ms (monotonic) since it is over CLIENT_MAX_BEHIND without progress; 0: not */
	struct client *next;
};

struct stream {
	const char *name;
	int fd;                /* read end, -1 once at EOF */
	size_t len;
	char line[LINE_MAX_BYTES];
};

static int sfd = -1;                       /* signalfd (SIGCHLD) */
static int attach_lfd = -1, console_lfd = -1, console_cfd = -1;
static char attach_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char console_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct stream out_streams[2] = { { .name = "stdout", .fd = -1 }, { .name = "stderr", .fd = -1 } };
static int master_fd = -1;                 /* --tty: the pty master (read and write) */
static bool master_ever;                   /* a master was received */
static int stdin_w = -1;                   /* the stdin pipe's write end (no --tty) */
static struct buf stdin_pending;
static bool stdin_close_wanted;
static struct client *stdin_once_client;   /* --stdin-once: the first client that sent stdin */
static struct client *clients;
static unsigned short want_rows, want_cols; /* a size asked for before the master arrived */
static int log_fd = -1;
static unsigned long long log_size;
static int stage_pid = -1, init_pid = -1;
static bool started, init_done, stage_failed;
static int exit_code;
static long long drain_deadline;           /* ms (monotonic) */
static int child_fds[3] = { -1, -1, -1 };  /* the stage's ends of the pipes */
static int devnull = -1;

/* ---------- small helpers ---------- */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start-up failures: one line on stdout for Node, then exit 1. */
static NORETURN PRINTF(2, 3) void startup_fail(int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char line[700];
	int n = err ? snprintf(line, sizeof line, "ERROR %s: %s\n", msg, strerror(err))
		    : snprintf(line, sizeof line, "ERROR %s\n", msg);
	for (char *p = line + 6; p < line + n - 1; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (write(1, line, (size_t)n) < 0) { /* nobody to tell */ }
	if (attach_path[0])
		unlink(attach_path);
	if (console_path[0])
		unlink(console_path);
	_exit(1);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Appends; false when out of memory. */
static bool buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->off > 0 && b->off + b->len + n > b->cap) {
		memmove(b->d, b->d + b->off, b->len);
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *d = realloc(b->d, cap);
		if (!d)
			return false;
		b->d = d;
		b->cap = cap;
	}
	memcpy(b->d + b->off + b->len, p, n);
	b->len += n;
	return true;
}

static void buf_drop(struct buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0) {
		b->off = 0;
		/* An idle monitor should not keep a burst's worth of memory. */
		if (b->cap > 65536) {
			free(b->d);
			b->d = NULL;
			b->cap = 0;
		}
	}
}

static void buf_free(struct buf *b)
{
	free(b->d);
	memset(b, 0, sizeof *b);
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* ---------- the json-file log ---------- */

/* Go's RFC3339Nano in UTC: fraction without trailing zeros, none at all for whole seconds. */
static size_t format_time(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	if (ts.tv_nsec > 0) {
		char frac[24];
		snprintf(frac, sizeof frac, "%09ld", ts.tv_nsec);
		int k = 9;
		while (k > 0 && frac[k - 1] == '0')
			k--;
		frac[k] = 0;
		n += (size_t)snprintf(out + n, cap - n, ".%s", frac);
	}
	n += (size_t)snprintf(out + n, cap - n, "Z");
	return n;
}

/* Length of a valid UTF-8 sequence at p (as Go's utf8.DecodeRune accepts it), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n, uint32_t *cp)
{
	unsigned char c = p[0];
	size_t len;
	uint32_t v, min;
	if (c >= 0xc2 && c <= 0xdf) { len = 2; v = c & 0x1f; min = 0x80; }
	else if (c >= 0xe0 && c <= 0xef) { len = 3; v = c & 0x0f; min = 0x800; }
	else if (c >= 0xf0 && c <= 0xf4) { len = 4; v = c & 0x07; min = 0x10000; }
	else return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* JSON string escaping as docker's json-file writer does it (Go's rules: <, >, & and
 * U+2028/U+2029 escaped, \n and \r short, other controls \u00XX, each invalid byte U+FFFD). */
static size_t json_escape(char *out, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *o = out;
	for (size_t i = 0; i < n;) {
		unsigned char b = s[i];
		if (b < 0x80) {
			if (b >= 0x20 && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&') {
				*o++ = (char)b;
			} else if (b == '\\' || b == '"') {
				*o++ = '\\';
				*o++ = (char)b;
			} else if (b == '\n') {
				*o++ = '\\';
				*o++ = 'n';
			} else if (b == '\r') {
				*o++ = '\\';
				*o++ = 'r';
			} else {
				memcpy(o, "\\u00", 4);
				o += 4;
				*o++ = hex[b >> 4];
				*o++ = hex[b & 15];
			}
			i++;
			continue;
		}
		uint32_t cp;
		size_t len = utf8_len(s + i, n - i, &cp);
		if (len == 0) {
			memcpy(o, "\\ufffd", 6);
			o += 6;
			i++;
		} else if (cp == 0x2028 || cp == 0x2029) {
			memcpy(o, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
			o += 6;
			i += len;
		} else {
			memcpy(o, s + i, len);
			o += len;
			i += len;
		}
	}
	return (size_t)(o - out);
}

static void log_open(void)
{
	log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (log_fd < 0)
		return;
	struct stat st;
	log_size = fstat(log_fd, &st) == 0 ? (unsigned long long)st.st_size : 0;
}

static void log_rotate(void)
{
	if (log_max_file <= 1) {
		if (ftruncate(log_fd, 0) == 0)
			log_size = 0;
		return;
	}
	char from[PATH_MAX], to[PATH_MAX];
	for (unsigned long i = log_max_file - 1; i >= 2; i--) {
		snprintf(from, sizeof from, "%s.%lu", log_path, i - 1);
		snprintf(to, sizeof to, "%s.%lu", log_path, i);
		rename(from, to); /* ENOENT: not that many yet */
	}
	snprintf(to, sizeof to, "%s.1", log_path);
	if (rename(log_path, to) < 0)
		return; /* keep appending to the current file rather than lose output */
	close_fd(&log_fd);
	log_open();
}

/* One entry: {"log":…,"stream":…,"time":…}\n */
static void log_entry(const char *stream, const char *data, size_t n)
{
	if (log_fd < 0 || n == 0)
		return;
	/* Escaping grows a byte to at most 6 characters. */
	static char entry[LINE_MAX_BYTES * 6 + 128];
	size_t k = 0;
	memcpy(entry, "{\"log\":\"", 8);
	k = 8;
	k += json_escape(entry + k, (const unsigned char *)data, n);
	k += (size_t)sprintf(entry + k, "\",\"stream\":\"%s\",\"time\":\"", stream);
	k += format_time(entry + k, 64);
	memcpy(entry + k, "\"}\n", 3);
	k += 3;
	if (log_max_size > 0 && log_size > 0 && log_size + k > log_max_size)
		log_rotate();
	if (log_fd < 0)
		return;
	if (write_all(log_fd, entry, k))
		log_size += k;
}

/* Splits output into lines (each kept with its \n); a partial line waits for more, up to 16 KiB. */
static void log_output(struct stream *s, const char *p, size_t n)
{
	if (log_fd < 0)
		return;
	while (n > 0) {
		size_t room = LINE_MAX_BYTES - s->len;
		size_t look = n < room ? n : room;
		const char *nl = memchr(p, '\n', look);
		size_t take = nl ? (size_t)(nl - p) + 1 : look;
		memcpy(s->line + s->len, p, take);
		s->len += take;
		p += take;
		n -= take;
		if (nl || s->len == LINE_MAX_BYTES) {
			log_entry(s->name, s->line, s->len);
			s->len = 0;
		}
	}
}

static void log_flush(struct stream *s)
{
	if (s->len > 0)
		log_entry(s->name, s->line, s->len);
	s->len = 0;
}

/* ---------- attach clients ---------- */

static void client_drop(struct client *c)
{
	struct client **pp = &clients;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	if (c == stdin_once_client) {
		stdin_once_client = NULL;
		/* --stdin-once: the client that fed stdin is gone, so is stdin (docker's StdinOnce). */
		if (opt_stdin_once && !opt_tty)
			stdin_close_wanted = true;
	}
	close(c->fd);
	buf_free(&c->out);
	buf_free(&c->in);
	free(c);
}

/* Writes what the client can take now; false if it must be dropped. */
static bool client_flush(struct client *c)
{
	while (c->out.len > 0) {
		ssize_t w = send(c->fd, c->out.d + c->out.off, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			return false;
		}
		buf_drop(&c->out, (size_t)w);
		/* Progress restarts the clock. */
		c->stalled_since = c->out.len > CLIENT_MAX_BEHIND ? now_ms() : 0;
	}
	return true;
}

static void broadcast(int kind, const char *p, size_t n)
{
	unsigned char hdr[5] = { (unsigned char)kind, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
				 (unsigned char)(n >> 8), (unsigned char)n };
	for (struct client *c = clients, *next; c; c = next) {
		next = c->next;
		if (c->out.len + n + 5 > CLIENT_HARD_MAX || !buf_add(&c->out, hdr, 5) || !buf_add(&c->out, p, n) ||
		    !client_flush(c)) {
			client_drop(c);
			continue;
		}
		if (c->out.len > CLIENT_MAX_BEHIND && !c->stalled_since)
			c->stalled_since = now_ms();
	}
}

/* Frame 6 (setup finished, with the stage's or command's status) for a client that connected late. */
static void send_setup(struct client *c)
{
	char text[16];
	int n = snprintf(text, sizeof text, "%d", setup_status);
	unsigned char hdr[5] = { 6, 0, 0, 0, (unsigned char)n };
	if (!buf_add(&c->out, hdr, 5) || !buf_add(&c->out, text, (size_t)n) || !client_flush(c))
		client_drop(c);
}

/* A client over the limit holds the output back (until the process has exited). */
static bool output_held(void)
{
	if (init_done)
		return false;
	for (struct client *c = clients; c; c = c->next)
		if (c->out.len > CLIENT_MAX_BEHIND)
			return true;
	return false;
}

/* Drops clients that took nothing for CLIENT_STALL_MS; returns ms until the next may be due (-1: none). */
static int drop_stalled(void)
{
	long long now = now_ms();
	int next = -1;
	for (struct client *c = clients, *n; c; c = n) {
		n = c->next;
		if (!c->stalled_since)
			continue;
		long long left = c->stalled_since + CLIENT_STALL_MS - now;
		if (left <= 0) {
			client_drop(c);
			continue;
		}
		if (next < 0 || left < next)
			next = (int)left;
	}
	return next;
}

static void stdin_close_now(void)
{
	buf_free(&stdin_pending);
	close_fd(&stdin_w);
	stdin_close_wanted = false;
}

/* Moves pending stdin to the process as far as it takes it. */
static void stdin_flush(void)
{
	int fd = opt_tty ? master_fd : stdin_w;
	while (fd >= 0 && stdin_pending.len > 0) {
		ssize_t w = write(fd, stdin_pending.d + stdin_pending.off, stdin_pending.len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			/* EPIPE: the process closed its stdin; EIO: the pty is gone. */
			buf_free(&stdin_pending);
			if (!opt_tty)
				stdin_close_now();
			break;
		}
		buf_drop(&stdin_pending, (size_t)w);
	}
	if (!opt_tty && stdin_close_wanted && stdin_pending.len == 0)
		stdin_close_now();
}

static void set_winsize(unsigned short rows, unsigned short cols)
{
	want_rows = rows;
	want_cols = cols;
	if (master_fd >= 0) {
		struct winsize ws = { .ws_row = rows, .ws_col = cols };
		ioctl(master_fd, TIOCSWINSZ, &ws);
	}
}

static void handle_frame(struct client *c, int kind, const char *p, size_t n)
{
	switch (kind) {
	case K_STDIN:
		if (!opt_stdin || n == 0)
			return;
		if (!c->sent_stdin) {
			c->sent_stdin = true;
			if (!stdin_once_client)
				stdin_once_client = c;
		}
		if ((opt_tty ? master_fd < 0 && master_ever : stdin_w < 0) || stdin_close_wanted)
			return; /* stdin is closed: nobody reads it any more */
		buf_add(&stdin_pending, p, n);
		stdin_flush();
		break;
	case K_CLOSE_STDIN:
		if (!opt_tty && stdin_w >= 0) {
			stdin_close_wanted = true;
			stdin_flush();
		}
		break;
	case K_RESIZE: {
		char tmp[32];
		unsigned rows, cols;
		if (n >= sizeof tmp)
			return;
		memcpy(tmp, p, n);
		tmp[n] = 0;
		if (sscanf(tmp, "%u %u", &rows, &cols) == 2 && rows <= 65535 && cols <= 65535 && opt_tty)
			set_winsize((unsigned short)rows, (unsigned short)cols);
		break;
	}
	default:
		break; /* unknown kinds are ignored, for clients newer than this monitor */
	}
}

/* Reads and handles what the client sent; false if it has gone (or must go). */
static bool client_read(struct client *c)
{
	char tmp[READ_CHUNK];
	ssize_t r = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
	if (r < 0)
		return errno == EINTR || errno == EAGAIN;
	if (r == 0)
		return false;
	if (!buf_add(&c->in, tmp, (size_t)r))
		return false;
	while (c->in.len >= 5) {
		const unsigned char *h = (const unsigned char *)c->in.d + c->in.off;
		uint32_t len = ((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 8) | h[4];
		if (len > FRAME_MAX)
			return false;
		if (c->in.len < 5 + (size_t)len)
			break;
		handle_frame(c, h[0], (const char *)h + 5, len);
		buf_drop(&c->in, 5 + (size_t)len);
	}
	return true;
}

static void start_stage(void);

/* Accepts one queued client; false when none is waiting. */
static bool accept_client(void)
{
	int fd = accept4(attach_lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return false;
	struct client *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return true;
	}
	c->fd = fd;
	c->next = clients;
	clients = c;
	if (setup_status != SETUP_PENDING)
		send_setup(c);
	/* --hold: the exec'd process's first output goes to this client too. */
	if (!started)
		start_stage();
	return true;
}

/* ---------- the console socket (--tty) ---------- */

static void receive_master(void)
{
	char name[128];
	char control[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { .iov_base = name, .iov_len = sizeof name };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
	ssize_t r = recvmsg(console_cfd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	for (struct cmsghdr *cm = r >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		int nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int fds[4];
		memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)(nfds < 4 ? nfds : 4));
		for (int i = 0; i < nfds && i < 4; i++) {
			if (master_fd < 0 && !master_ever) {
				master_fd = fds[i];
				master_ever = true;
				set_nonblock(master_fd);
				/* The stage clears ONLCR (runc's console, for the runtime CLI's own
				 * terminal handling); a container engine's tty translates "\n" to
				 * "\r\n", as docker's and podman's do. */
				struct termios tio;
				if (tcgetattr(master_fd, &tio) == 0) {
					tio.c_oflag |= ONLCR | OPOST;
					tcsetattr(master_fd, TCSANOW, &tio);
				}
				if (want_rows || want_cols)
					set_winsize(want_rows, want_cols);
			} else {
				close(fds[i]);
			}
		}
	}
	/* One master per container: the socket has done its job. */
	close_fd(&console_cfd);
	if (master_ever) {
		close_fd(&console_lfd);
		unlink(console_path);
		console_path[0] = 0;
	}
}

/* ---------- output ---------- */

static void output(int kind, struct stream *s, const char *p, size_t n)
{
	log_output(s, p, n);
	broadcast(kind, p, n);
}

/* One read from a pipe or the master; false at EOF/EIO (the fd is then closed). */
static bool read_output(int *fd, struct stream *s, int kind)
{
	char tmp[READ_CHUNK];
	ssize_t r = read(*fd, tmp, sizeof tmp);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (r <= 0) {
		close_fd(fd);
		log_flush(s);
		return false;
	}
	output(kind, s, tmp, (size_t)r);
	return true;
}

static bool output_open(void)
{
	return out_streams[0].fd >= 0 || out_streams[1].fd >= 0 || master_fd >= 0;
}

/* ---------- the process ---------- */

/* A child of ours other than the stage: the init, re-parented to us (we are its subreaper). */
static int find_child(void)
{
	char path[64];
	int self = getpid();
	snprintf(path, sizeof path, "/proc/self/task/%d/children", self);
	FILE *f = fopen(path, "re");
	if (f) {
		int pid = -1;
		if (fscanf(f, "%d", &pid) != 1)
			pid = -1;
		fclose(f);
		return pid;
	}
	/* Kernels without CONFIG_PROC_CHILDREN: look for a process whose parent is us. */
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	struct dirent *e;
	int found = -1;
	while (found < 0 && (e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char stat[512];
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, stat, sizeof stat - 1);
		close(fd);
		if (n <= 0)
			continue;
		stat[n] = 0;
		char *rp = strrchr(stat, ')');
		int ppid;
		char st;
		if (rp && sscanf(rp + 1, " %c %d", &st, &ppid) == 2 && ppid == self)
			found = (int)pid;
	}
	closedir(d);
	return found;
}

static void process_ended(int code)
{
	init_done = true;
	exit_code = code;
	drain_deadline = now_ms() + DRAIN_MS;
}

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* The stage has been reaped: from now on the process to wait for is the init, re-parented to us. */
static void stage_ended(int st)
{
	stage_pid = -1;
	/* A stage that failed (after the clone: writing the id maps) has killed its child: whatever
	 * that child's status, the container never ran. */
	stage_failed = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	setup_status = status_code(st);
	char text[16];
	int n = snprintf(text, sizeof text, "%d", setup_status);
	broadcast(6, text, (size_t)n);
	init_pid = find_child();
	/* No process left: setup failed (Node has the stage's ERROR line). */
	if (init_pid <= 0 && !init_done)
		process_ended(-1);
}

static void reap(void)
{
	for (;;) {
		int st;
		/* The stage first, and the init looked up before anything else is reaped. */
		if (stage_pid > 0 && waitpid(stage_pid, &st, WNOHANG) == stage_pid)
			stage_ended(st);
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p <= 0)
			return;
		if (p == stage_pid)
			stage_ended(st);
		else if (p == init_pid && !init_done)
			process_ended(stage_failed ? -1 : status_code(st));
		/* anything else: an orphan of the container, reaped and ignored */
	}
}

static void start_stage(void)
{
	started = true;
	pid_t pid = fork();
	if (pid < 0) {
		for (int i = 0; i < 3; i++)
			close_fd(&child_fds[i]);
		process_ended(-1);
		return;
	}
	if (pid == 0) {
		/* The container gets default signal handling, whatever we ignore or block. */
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		for (int i = 0; i < 3; i++) {
			int fd = child_fds[i] >= 0 ? child_fds[i] : devnull;
			if (dup2(fd, i) < 0)
				_exit(127);
		}
		/* 3 .. sync_fd-1 are the preserved fds, sync_fd the sync socket: no CLOEXEC on them. */
		for (int fd = 3; fd <= sync_fd; fd++) {
			int fl = fcntl(fd, F_GETFD);
			if (fl >= 0 && (fl & FD_CLOEXEC))
				fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
		}
		if (syscall(SYS_close_range, (unsigned)sync_fd + 1, ~0U, 0) < 0) {
			for (int fd = sync_fd + 1; fd < 65536; fd++)
				close(fd);
		}
		if (opt_command) {
			char *envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
			execve(command_argv[0], command_argv, envp);
			_exit(127);
		}
		char num[16];
		snprintf(num, sizeof num, "%d", sync_fd);
		char *argv[] = { (char *)stage, num, NULL };
		char *envp[] = { NULL };
		execve(stage, argv, envp);
		_exit(127);
	}
	stage_pid = pid;
	for (int i = 0; i < 3; i++)
		close_fd(&child_fds[i]);
	for (int fd = 3; fd <= sync_fd; fd++)
		close(fd);
}

/* ---------- the end ---------- */

static void write_exit_record(void)
{
	char tmp[PATH_MAX], final[PATH_MAX], line[64];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(tmp, sizeof tmp, "%s/exit.tmp", dir);
	snprintf(final, sizeof final, "%s/exit", dir);
	int n = snprintf(line, sizeof line, "%d %lld\n", exit_code, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	bool ok = write_all(fd, line, (size_t)n) && fsync(fd) == 0;
	close(fd);
	if (ok && rename(tmp, final) == 0) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	} else {
		unlink(tmp);
	}
}

static NORETURN void finish(void)
{
	/* What is still readable right now belongs to the process too. */
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 64 && out_streams[i].fd >= 0; k++) {
			struct pollfd p = { .fd = out_streams[i].fd, .events = POLLIN };
			if (poll(&p, 1, 0) <= 0 || !read_output(&out_streams[i].fd, &out_streams[i], K_STDOUT + i))
				break;
		}
	for (int k = 0; k < 64 && master_fd >= 0; k++) {
		struct pollfd p = { .fd = master_fd, .events = POLLIN };
		if (poll(&p, 1, 0) <= 0 || !read_output(&master_fd, &out_streams[0], K_STDOUT))
			break;
	}
	log_flush(&out_streams[0]);
	log_flush(&out_streams[1]);
	if (log_fd >= 0)
		fsync(log_fd);
	write_exit_record();

	/* Nobody new: a late client finds no socket and reads DIR/exit. */
	unlink(attach_path);
	close_fd(&attach_lfd);
	if (console_path[0])
		unlink(console_path);
	char code[16];
	int n = snprintf(code, sizeof code, "%d", exit_code);
	broadcast(K_EXIT, code, (size_t)n);
	/* Every client gets what it is owed, as long as it keeps taking it. */
	long long deadline = now_ms() + FAREWELL_MS;
	for (struct client *c = clients, *n; c; c = n) {
		n = c->next;
		c->stalled_since = now_ms();
		if (c->out.len == 0)
			client_drop(c);
	}
	while (clients && now_ms() < deadline) {
		struct pollfd pfd[1024];
		struct client *who[1024];
		int np = 0;
		for (struct client *c = clients; c && np < 1024; c = c->next) {
			who[np] = c;
			pfd[np++] = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
		}
		if (poll(pfd, (nfds_t)np, 200) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < np; k++) {
			struct client *c = who[k];
			if (!pfd[k].revents)
				continue;
			long long before = (long long)c->out.len;
			if (!client_flush(c) || c->out.len == 0) {
				client_drop(c);
				continue;
			}
			if ((long long)c->out.len < before)
				c->stalled_since = now_ms();
		}
		long long now = now_ms();
		for (struct client *c = clients, *n; c; c = n) {
			n = c->next;
			if (now - c->stalled_since > CLIENT_STALL_MS)
				client_drop(c);
		}
	}
	while (clients)
		client_drop(clients);
	_exit(0);
}

/* ---------- start-up ---------- */

static int listen_unix(const char *name, char *path_out, size_t cap)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof sa.sun_path)
		startup_fail(ENAMETOOLONG, "socket path %s/%s", dir, name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		startup_fail(errno, "socket");
	unlink(sa.sun_path); /* a previous run's */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc < 0)
		startup_fail(errno, "bind %s", sa.sun_path);
	snprintf(path_out, cap, "%s", sa.sun_path);
	if (listen(fd, 64) < 0)
		startup_fail(errno, "listen on %s", sa.sun_path);
	return fd;
}

static void make_pipe(int *ours, int *theirs, bool ours_reads)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		startup_fail(errno, "pipe");
	*ours = ours_reads ? p[0] : p[1];
	*theirs = ours_reads ? p[1] : p[0];
	set_nonblock(*ours);
}

static NORETURN void usage(void)
{
	startup_fail(0, "usage: berth-monitor --dir DIR [--log PATH [--log-max-size BYTES] [--log-max-file N]] "
			"[--tty] [--stdin] [--stdin-once] [--hold] -- STAGE SYNCFD | --command -- /PATH ARGS...");
}

static unsigned long long number(const char *s, const char *what)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		startup_fail(0, "invalid %s \"%s\"", what, s ? s : "");
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		startup_fail(0, "invalid %s \"%s\"", what, s);
	return v;
}

static void parse_args(int argc, char **argv)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(a, "--log") && i + 1 < argc) {
			log_path = argv[++i];
		} else if (!strcmp(a, "--log-max-size") && i + 1 < argc) {
			log_max_size = number(argv[++i], "--log-max-size");
		} else if (!strcmp(a, "--log-max-file") && i + 1 < argc) {
			log_max_file = (unsigned long)number(argv[++i], "--log-max-file");
			if (log_max_file < 1 || log_max_file > 1000)
				startup_fail(0, "invalid --log-max-file \"%s\": must be between 1 and 1000", argv[i]);
		} else if (!strcmp(a, "--tty")) {
			opt_tty = true;
		} else if (!strcmp(a, "--stdin")) {
			opt_stdin = true;
		} else if (!strcmp(a, "--stdin-once")) {
			opt_stdin_once = true;
		} else if (!strcmp(a, "--hold")) {
			opt_hold = true;
		} else if (!strcmp(a, "--command")) {
			opt_command = true;
		} else {
			usage();
		}
	}
	if (opt_command) {
		if (!dir || argc - i < 1 || argv[i][0] != '/')
			usage();
		command_argv = &argv[i];
		stage = argv[i];
		sync_fd = 2; /* no sync fd: nothing from 3 on passes through */
		return;
	}
	if (!dir || argc - i != 2)
		usage();
	stage = argv[i];
	unsigned long long fd = number(argv[i + 1], "sync fd");
	if (fd < 3 || fd > 1024)
		startup_fail(0, "invalid sync fd \"%s\"", argv[i + 1]);
	sync_fd = (int)fd;
	if (fcntl(sync_fd, F_GETFD) < 0)
		startup_fail(errno, "sync fd %d", sync_fd);
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	/* Fds 0 … sync_fd must all be open before we open anything of our own: fds 3 … sync_fd-1 are
	 * closed in us after the fork, and none of ours may sit among them. */
	for (int fd = 0; fd < sync_fd; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0 && nul != fd) {
			dup2(nul, fd);
			close(nul);
		}
	}

	/* The daemon stops a container by signalling its init, never us; and a client that goes
	 * away mid-write must not kill the monitor. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		startup_fail(errno, "signalfd");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		startup_fail(errno, "become the child subreaper");

	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		startup_fail(errno, "open /dev/null");

	char exit_path[PATH_MAX];
	snprintf(exit_path, sizeof exit_path, "%s/exit", dir);
	unlink(exit_path); /* a previous run's record */

	attach_lfd = listen_unix("attach.sock", attach_path, sizeof attach_path);
	if (opt_tty) {
		console_lfd = listen_unix("console.sock", console_path, sizeof console_path);
	} else {
		make_pipe(&out_streams[0].fd, &child_fds[1], true);
		make_pipe(&out_streams[1].fd, &child_fds[2], true);
		if (opt_stdin)
			make_pipe(&stdin_w, &child_fds[0], false);
	}
	if (log_path) {
		log_open();
		if (log_fd < 0)
			startup_fail(errno, "open log file %s", log_path);
	}
	/* Nothing holds a directory busy (the daemon may remove the one we were started in). */
	if (chdir("/") < 0) { /* harmless */ }

	char ready[64];
	int n = snprintf(ready, sizeof ready, "READY %d\n", (int)getpid());
	if (!write_all(1, ready, (size_t)n))
		startup_fail(errno, "write READY");
	/* Node stops reading; a later write there must not fail or block. */
	dup2(devnull, 1);

	if (!opt_hold)
		start_stage();

	for (;;) {
		if (init_done && (!output_open() || now_ms() >= drain_deadline))
			finish();

		struct pollfd pfd[16 + 1024];
		struct client *who[16 + 1024];
		int np = 0;
		int i_sig = np; pfd[np++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		int i_att = np; pfd[np++] = (struct pollfd){ .fd = attach_lfd, .events = POLLIN };
		int i_cl = np; pfd[np++] = (struct pollfd){ .fd = console_lfd, .events = console_cfd < 0 ? POLLIN : 0 };
		int i_cc = np; pfd[np++] = (struct pollfd){ .fd = console_cfd, .events = POLLIN };
		/* Held back: the process blocks on a full pipe (or pty) until the slow client catches up. */
		bool held = output_held();
		int i_o0 = np; pfd[np++] = (struct pollfd){ .fd = held ? -1 : out_streams[0].fd, .events = POLLIN };
		int i_o1 = np; pfd[np++] = (struct pollfd){ .fd = held ? -1 : out_streams[1].fd, .events = POLLIN };
		int i_m = np; pfd[np++] = (struct pollfd){ .fd = held && !(opt_tty && stdin_pending.len) ? -1 : master_fd,
			.events = (short)((held ? 0 : POLLIN) | (opt_tty && stdin_pending.len ? POLLOUT : 0)) };
		int i_in = np; pfd[np++] = (struct pollfd){ .fd = !opt_tty && stdin_pending.len ? stdin_w : -1, .events = POLLOUT };
		/* --hold: without a client to start for, Node hanging up means nobody will come. */
		int i_sync = np; pfd[np++] = (struct pollfd){ .fd = !started ? sync_fd : -1, .events = 0 };
		int first_client = np;
		bool read_clients = stdin_pending.len < STDIN_MAX_PENDING;
		for (struct client *c = clients; c && np < (int)(sizeof pfd / sizeof pfd[0]); c = c->next) {
			who[np] = c;
			pfd[np++] = (struct pollfd){ .fd = c->fd, .events = (short)((read_clients ? POLLIN : 0) | (c->out.len ? POLLOUT : 0)) };
		}
		int timeout = drop_stalled();
		if (init_done) {
			long long left = drain_deadline - now_ms();
			if (left < 0)
				left = 0;
			if (timeout < 0 || left < timeout)
				timeout = (int)left;
		}
		int r = poll(pfd, (nfds_t)np, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			process_ended(-1); /* cannot happen; do not spin */
			finish();
		}

		/* Clients first, every one queued (the daemon and an attach client may both have
		 * connected before the start): one that connected before output was produced must
		 * get that output. */
		if (pfd[i_att].revents & POLLIN)
			while (accept_client()) {
			}
		for (int k = first_client; k < np; k++) {
			struct client *c = who[k];
			short ev = pfd[k].revents;
			if (!ev)
				continue;
			bool keep = true;
			if (ev & POLLOUT)
				keep = client_flush(c);
			if (keep && (ev & (POLLIN | POLLHUP | POLLERR)))
				keep = client_read(c);
			if (!keep)
				client_drop(c); /* `who` holds no other reference to it */
		}
		if (pfd[i_sig].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0) { /* drain */ }
			reap();
		}
		if (pfd[i_cl].revents & POLLIN)
			console_cfd = accept4(console_lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (pfd[i_cc].revents & (POLLIN | POLLHUP | POLLERR))
			receive_master();
		if (pfd[i_o0].revents & (POLLIN | POLLHUP | POLLERR))
			read_output(&out_streams[0].fd, &out_streams[0], K_STDOUT);
		if (pfd[i_o1].revents & (POLLIN | POLLHUP | POLLERR))
			read_output(&out_streams[1].fd, &out_streams[1], K_STDERR);
		if (pfd[i_m].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (!read_output(&master_fd, &out_streams[0], K_STDOUT))
				buf_free(&stdin_pending);
		}
		if ((pfd[i_m].revents & POLLOUT) || (pfd[i_in].revents & (POLLOUT | POLLERR | POLLHUP)))
			stdin_flush();
		if (!started && (pfd[i_sync].revents & (POLLHUP | POLLERR))) {
			started = true;
			for (int i = 0; i < 3; i++)
				close_fd(&child_fds[i]);
			close_fd(&out_streams[0].fd);
			close_fd(&out_streams[1].fd);
			process_ended(-1);
		}
		if (stdin_close_wanted && !opt_tty)
			stdin_flush();
	}
}
