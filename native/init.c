/*
 * berth-init: the init that `--init` puts in front of a container's process (bind-mounted at
 * /sbin/docker-init, docker's path).
 *
 *   berth-init [--] PROG [ARGS...]
 *
 * A process that runs as pid 1 of a pid namespace gets no default signal actions (SIGTERM from
 * `docker stop` does nothing unless it installs a handler) and inherits every orphan, which
 * stays a zombie unless something waits for it. Most programs are not written for that, so this
 * runs PROG as its child and does both jobs for it:
 *   - every catchable signal it receives is sent on to the child, except the ones the kernel
 *     raises for a fault in this process itself (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
 *     SIGSYS, SIGABRT) and SIGCHLD;
 *   - it waits for every child that exits (the container's orphans included), and when PROG
 *     exits it exits too: with PROG's status, or 128+N when PROG was killed by signal N.
 * Not pid 1 (e.g. --pid host), it asks to be a child subreaper so orphans still come to it.
 * The child gets its own process group and, on a terminal, becomes the foreground group, so
 * ^C from the terminal reaches it once (not once from the tty and once through us).
 * Exit status 127 or 126 when PROG cannot be run (not found / not executable), as a shell.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int synchronous(int sig) {
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP ||
	       sig == SIGSYS || sig == SIGABRT;
}

static void ignore_handler(int sig) { (void)sig; }

int main(int argc, char **argv) {
	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
	if (first >= argc) {
		fprintf(stderr, "usage: berth-init [--] PROG [ARGS...]\n");
		return 2;
	}

	/* The set we wait on: all signals but the uncatchable and the synchronous ones. A handler,
	 * not SIG_DFL, so the kernel never drops them for pid 1 even while they are unblocked. */
	sigset_t wanted, original;
	sigemptyset(&wanted);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ignore_handler;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < SIGRTMAX; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP || synchronous(sig)) continue;
		if (sig >= 32 && sig < SIGRTMIN) continue; /* reserved by libc for its threads */
		sigaddset(&wanted, sig);
	}
	if (sigprocmask(SIG_BLOCK, &wanted, &original) != 0) {
		perror("berth-init: sigprocmask");
		return 1;
	}
	struct sigaction saved[65];
	for (int sig = 1; sig < SIGRTMAX && sig < 65; sig++) {
		if (sigismember(&wanted, sig) == 1) sigaction(sig, &sa, &saved[sig]);
	}

	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
		perror("berth-init: PR_SET_CHILD_SUBREAPER");
	}

	pid_t child = fork();
	if (child < 0) {
		perror("berth-init: fork");
		return 1;
	}
	if (child == 0) {
		for (int sig = 1; sig < SIGRTMAX && sig < 65; sig++) {
			if (sigismember(&wanted, sig) == 1) sigaction(sig, &saved[sig], NULL);
		}
		setpgid(0, 0);
		if (isatty(STDIN_FILENO)) {
			/* tcsetpgrp from a background group raises SIGTTOU, which is still blocked here. */
			tcsetpgrp(STDIN_FILENO, getpgrp());
		}
		sigprocmask(SIG_SETMASK, &original, NULL);
		execvp(argv[first], argv + first);
		int err = errno;
		fprintf(stderr, "berth-init: exec %s failed: %s\n", argv[first], strerror(err));
		_exit(err == ENOENT ? 127 : 126);
	}

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&wanted, &info);
		if (sig < 0) {
			if (errno == EINTR) continue;
			perror("berth-init: sigwaitinfo");
			return 1;
		}
		if (sig != SIGCHLD) {
			if (kill(child, sig) != 0 && errno != ESRCH) perror("berth-init: kill");
			continue;
		}
		/* Several exits can share one SIGCHLD: reap until none is left. */
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0) break;
			if (pid != child) continue;
			if (WIFEXITED(status)) return WEXITSTATUS(status);
			if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
		}
	}
}
