/* seccomp notify agent for the tests: listens on argv[1]; for every connection writes the JSON
 * it received to argv[2]/conn-<n>.json, then answers the notifications on the fd it got:
 * mkdir/mkdirat fail with ENOTUNIQ, rmdir/unlinkat "succeed" without doing anything, anything
 * else continues. Each answered call is logged to argv[2]/conn-<n>.log as "<pid> <nr>". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static void serve(int nfd, const char *log)
{
	for (;;) {
		struct pollfd p = {nfd, POLLIN, 0};
		if (poll(&p, 1, -1) < 0)
			continue;
		if (!(p.revents & POLLIN))
			_exit(0);
		struct seccomp_notif req;
		struct seccomp_notif_resp resp;
		memset(&req, 0, sizeof req);
		if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
			continue;
		memset(&resp, 0, sizeof resp);
		resp.id = req.id;
		switch (req.data.nr) {
		case SYS_mkdir: case SYS_mkdirat: resp.error = -ENOTUNIQ; break;
		case SYS_rmdir: case SYS_unlinkat: resp.val = 0; break;
		default: resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; break;
		}
		FILE *f = fopen(log, "a");
		if (f) {
			fprintf(f, "%u %d\n", req.pid, req.data.nr);
			fclose(f);
		}
		ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	signal(SIGCHLD, SIG_IGN);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 8) < 0) {
		perror("listen");
		return 1;
	}
	for (int n = 1;; n++) {
		int c = accept(ls, NULL, NULL);
		if (c < 0) {
			n--;
			continue;
		}
		static char buf[1 << 16];
		union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
		struct iovec iov = {buf, sizeof buf - 1};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
		ssize_t len = recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
		int nfd = -1;
		struct cmsghdr *cm = len > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&nfd, CMSG_DATA(cm), sizeof nfd);
		/* the rest of a long JSON, until the runtime closes the connection */
		size_t total = len > 0 ? (size_t)len : 0;
		for (ssize_t m; total < sizeof buf - 1 && (m = read(c, buf + total, sizeof buf - 1 - total)) > 0;)
			total += (size_t)m;
		close(c);
		char path[4096], log[4096];
		snprintf(path, sizeof path, "%s/conn-%d.json.tmp", argv[2], n);
		snprintf(log, sizeof log, "%s/conn-%d.log", argv[2], n);
		FILE *f = fopen(path, "w");
		if (f) {
			fprintf(f, "{\"fd\":%s,\"json\":%.*s}", nfd >= 0 ? "true" : "false", (int)total, total ? buf : "null");
			fclose(f);
			char final[4096];
			snprintf(final, sizeof final, "%s/conn-%d.json", argv[2], n);
			rename(path, final);
		}
		if (nfd < 0)
			continue;
		if (fork() == 0) {
			close(ls);
			serve(nfd, log);
		}
		close(nfd);
	}
}
