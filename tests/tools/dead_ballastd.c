/* tests/tools/dead_ballastd.c - a ballastd that never answers, for
 * tests/dead_daemon.sh (issue 15: a dead daemon must fail every group).
 *
 * It takes ballastd's command line. The options that only print or check
 * (--version, --help, --list-config-keys, --list-options, --check-config,
 * and any flag it does not know) are handed to the real binary,
 * ballastd.real next to this one, so that a group's set-up checks still
 * pass. To serve, it first runs the real binary's --check-config on the
 * same command line (a config the real daemon refuses is refused the same
 * way), then binds the socket the config names ([ballast] socket = of
 * --config FILE, $BALLAST_CONFIG or /etc/ballast/ballast.conf; --socket
 * overrides; or the socket systemd passes through LISTEN_FDS) and accepts
 * every connection, in one of two modes:
 *
 *   mute           answers nothing: every connection is read and held
 *                  open until the client gives up
 *   activate-only  answers POST /Plugin.Activate as ballastd does
 *                  ({"Implements":["VolumeDriver"],"Err":""}) and holds
 *                  every other request open, unanswered
 *
 * The mode is DEAD_MODE as compiled (cc -DDEAD_MODE='"mute"'), or
 * $BALLAST_DEAD_MODE. SIGTERM and SIGINT remove the socket and exit 0, as
 * ballastd does. Each start is logged, one line, to dead-starts.log next
 * to the binary (best effort), so that the demo can count them.
 *
 * Build: cc -O2 -std=gnu11 -Wall -Wextra -DDEAD_MODE='"mute"' \
 *            -o ballastd dead_ballastd.c
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef DEAD_MODE
#define DEAD_MODE "mute"
#endif
#define DEFAULT_CONFIG "/etc/ballast/ballast.conf"
#define DEFAULT_SOCKET "/run/docker/plugins/ballast.sock"
#define MAX_CONNS 16384
#define HDR_MAX 65536

static const char ACTIVATE_BODY[] = "{\"Implements\":[\"VolumeDriver\"],\"Err\":\"\"}";

struct conn {
	int fd;
	int held;	   /* an unanswered request: read and discard from now on */
	size_t len;	   /* bytes in buf */
	size_t skip;	   /* body bytes of an answered request still to discard */
	char buf[HDR_MAX]; /* the request being read (activate-only) */
};

static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static int sock_ours;
static int activate_only;
static char self_dir[PATH_MAX];

static void on_term(int sig)
{
	(void)sig;
	if (sock_ours)
		unlink(sock_path);
	_exit(0);
}

static void die(const char *what)
{
	fprintf(stderr, "ballastd (dead stand-in): %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The directory of this binary (through any symlink it was run by). */
static void find_self_dir(void)
{
	ssize_t n = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
	char *slash;

	if (n <= 0) {
		strcpy(self_dir, ".");
		return;
	}
	self_dir[n] = '\0';
	slash = strrchr(self_dir, '/');
	if (slash && slash != self_dir)
		*slash = '\0';
}

static void real_path(char *out, size_t size)
{
	snprintf(out, size, "%s/ballastd.real", self_dir);
}

static void log_start(int argc, char **argv, const char *what)
{
	char path[PATH_MAX + 32], line[8192];
	size_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/dead-starts.log", self_dir);
	n = (size_t)snprintf(line, sizeof(line), "%ld %d %s %s:", (long)time(NULL), (int)getpid(),
			     activate_only ? "activate-only" : "mute", what);
	for (int i = 1; i < argc && n < sizeof(line) - 2; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " %s", argv[i]);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, line, n) < 0) {
			/* best effort */
		}
		close(fd);
	}
}

/* Hand the whole command line to the real ballastd. */
static void delegate(int argc, char **argv) __attribute__((noreturn));
static void delegate(int argc, char **argv)
{
	char real[PATH_MAX + 32];

	real_path(real, sizeof(real));
	log_start(argc, argv, "delegated");
	argv[0] = real;
	execv(real, argv);
	fprintf(stderr, "ballastd (dead stand-in): cannot run %s: %s\n", real, strerror(errno));
	exit(2);
}

/* The real ballastd's --check-config on this command line: its status,
 * 0 when there is no real binary (inside a plugin's rootfs). */
static int real_check(int argc, char **argv)
{
	char real[PATH_MAX + 32];
	char **args;
	int st = 0, devnull;
	pid_t pid;

	real_path(real, sizeof(real));
	if (access(real, X_OK) != 0)
		return 0;
	args = calloc((size_t)argc + 2, sizeof(*args));
	if (!args)
		die("calloc");
	args[0] = real;
	for (int i = 1; i < argc; i++)
		args[i] = argv[i];
	args[argc] = "--check-config";
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDNAMES");
		devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 1); /* "FILE: OK" is not what ballastd prints */
		execv(real, args);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	free(args);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 1;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* [ballast] socket = of FILE into sock_path; a missing file is no error
 * unless required. */
static void read_socket_key(const char *file, int required)
{
	char line[4096], *l, *eq;
	int in_ballast = 0;
	FILE *f = fopen(file, "r");

	if (!f) {
		if (required)
			die(file);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		l = trim(line);
		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			in_ballast = strcmp(l, "[ballast]") == 0;
			continue;
		}
		eq = strchr(l, '=');
		if (!in_ballast || !eq)
			continue;
		*eq = '\0';
		if (strcmp(trim(l), "socket") == 0)
			snprintf(sock_path, sizeof(sock_path), "%s", trim(eq + 1));
	}
	fclose(f);
}

/* The command line: the socket to serve, or delegate() for everything
 * that is not serving. */
static void read_flags(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "host-id", required_argument, NULL, 'H' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "list-config-keys", no_argument, NULL, 'K' },
		{ "list-options", no_argument, NULL, 'O' },
		{ "check-config", no_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = getenv("BALLAST_CONFIG"), *sock = NULL;
	int opt, required;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "c:s:d:l:H:Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'd':
		case 'l':
		case 'H':
			break;
		default: /* prints, checks, or a flag the real one refuses */
			delegate(argc, argv);
		}
	}
	if (optind < argc)
		delegate(argc, argv);
	required = config && *config;
	if (!required)
		config = DEFAULT_CONFIG;
	snprintf(sock_path, sizeof(sock_path), "%s", DEFAULT_SOCKET);
	read_socket_key(config, required);
	if (sock)
		snprintf(sock_path, sizeof(sock_path), "%s", sock);
}

static void mkdir_parent(const char *path)
{
	char dir[sizeof(sock_path)];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0755);
		*p = '/';
	}
}

static int listen_on_path(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, probe;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	mkdir_parent(sock_path);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		fprintf(stderr, "ballastd (dead stand-in): socket %s is in use by a running daemon\n", sock_path);
		exit(1);
	}
	if (probe >= 0)
		close(probe);
	unlink(sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(sock_path);
	umask(old);
	sock_ours = 1;
	if (chmod(sock_path, 0660) < 0 || listen(fd, 128) < 0)
		die(sock_path);
	return fd;
}

/* The socket systemd passed (LISTEN_FDS=1 for this pid), or -1. */
static int passed_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");

	if (!pid || !n || atol(pid) != (long)getpid() || atoi(n) < 1)
		return -1;
	return 3;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Content-Length of the headers in c->buf (0 when absent). */
static size_t content_length(const char *hdrs)
{
	const char *p = hdrs;

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			return (size_t)strtoul(p + 15, NULL, 10);
	}
	return 0;
}

/* activate-only: answer each complete Activate request in c->buf; the
 * first other request turns the connection held. */
static void serve_activate(struct conn *c)
{
	char resp[512];
	char *end, *hdrs;
	size_t hlen, body;
	int n;

	while (!c->held) {
		if (c->skip > 0) {
			size_t k = c->skip < c->len ? c->skip : c->len;

			memmove(c->buf, c->buf + k, c->len - k);
			c->len -= k;
			c->skip -= k;
			if (c->skip > 0)
				return;
		}
		c->buf[c->len] = '\0';
		end = strstr(c->buf, "\r\n\r\n");
		if (!end) {
			if (c->len >= HDR_MAX - 1)
				c->held = 1;
			return;
		}
		hdrs = c->buf;
		hlen = (size_t)(end - c->buf) + 4;
		if (strncmp(hdrs, "POST /Plugin.Activate ", 22) != 0) {
			c->held = 1; /* never answered */
			return;
		}
		*end = '\0';
		body = content_length(hdrs);
		n = snprintf(resp, sizeof(resp),
			     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     sizeof(ACTIVATE_BODY) - 1, ACTIVATE_BODY);
		send_all(c->fd, resp, (size_t)n);
		memmove(c->buf, c->buf + hlen, c->len - hlen);
		c->len -= hlen;
		c->skip = body;
	}
}

/* Read what the client sent; 0 when it closed the connection. */
static int on_readable(struct conn *c)
{
	char sink[65536];
	ssize_t r;

	if (!activate_only || c->held) {
		r = read(c->fd, sink, sizeof(sink));
		return !(r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN));
	}
	r = read(c->fd, c->buf + c->len, HDR_MAX - 1 - c->len);
	if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
		return 0;
	if (r > 0) {
		c->len += (size_t)r;
		serve_activate(c);
	}
	return 1;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void serve(int lfd)
{
	static struct pollfd pfd[MAX_CONNS + 1];
	static struct conn *conns[MAX_CONNS];
	int n = 0, fd;

	for (;;) {
		pfd[0].fd = n < MAX_CONNS ? lfd : -1;
		pfd[0].events = POLLIN;
		for (int i = 0; i < n; i++) {
			pfd[i + 1].fd = conns[i]->fd;
			pfd[i + 1].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int i = n - 1; i >= 0; i--) {
			if (!pfd[i + 1].revents || on_readable(conns[i]))
				continue;
			close(conns[i]->fd);
			free(conns[i]);
			conns[i] = conns[--n];
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(100000);
			continue;
		}
		conns[n] = calloc(1, sizeof(struct conn));
		if (!conns[n]) {
			close(fd);
			continue;
		}
		conns[n++]->fd = fd;
	}
}

int main(int argc, char **argv)
{
	const char *mode = getenv("BALLAST_DEAD_MODE");
	struct sigaction sa = { .sa_handler = on_term };
	int lfd, st;

	if (!mode || !*mode)
		mode = DEAD_MODE;
	if (strcmp(mode, "activate-only") == 0)
		activate_only = 1;
	else if (strcmp(mode, "mute") != 0) {
		fprintf(stderr, "ballastd (dead stand-in): unknown mode \"%s\": mute or activate-only\n", mode);
		return 2;
	}
	find_self_dir();
	read_flags(argc, argv);
	st = real_check(argc, argv);
	if (st != 0) {
		log_start(argc, argv, "refused by --check-config");
		return st;
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	raise_fd_limit();
	lfd = passed_socket();
	if (lfd >= 0) {
		fprintf(stderr, "ballastd (dead stand-in, %s): serving the socket passed by systemd; answering %s\n",
			mode, activate_only ? "Plugin.Activate only" : "nothing");
	} else {
		lfd = listen_on_path();
		fprintf(stderr, "ballastd (dead stand-in, %s): serving %s; answering %s\n", mode, sock_path,
			activate_only ? "Plugin.Activate only" : "nothing");
	}
	log_start(argc, argv, "serving");
	serve(lfd);
	return 0;
}
