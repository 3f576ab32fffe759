/*
 * fuzz_http.c - libFuzzer target over ballastd's HTTP layer: the input's
 * raw bytes are everything a client sends on one connection (request
 * lines, headers, chunked or Content-Length bodies, several pipelined
 * requests), served by the daemon's own http.c (libmicrohttpd, one thread
 * per connection) and api code with the local backend, as fuzz_api.c sets
 * it up (catalog in a temp dir, helper /bin/false).
 *
 * The server is the real one: http_start() on a unix socket in the temp
 * dir, exactly as ballastd starts it. For each input the target connects,
 * writes the bytes, shuts its side down for writing (so that an unfinished
 * request ends in EOF, not in MHD's 300 s idle timeout) and reads the
 * answer until the server closes. Writing and reading interleave, so an
 * input larger than the socket buffer cannot deadlock against a server
 * that has stopped reading. An input ends only when libmicrohttpd has
 * cleaned the connection up (http_connections() is 0 again): with the
 * server still tearing a connection down, libFuzzer's leak check after an
 * input reported libmicrohttpd's connection struct as leaked about once in
 * 30,000 inputs; not once in 98,000 since.
 *
 * Failures: any sanitizer report; no progress (nothing written or read)
 * for IDLE_TIMEOUT_MS, i.e. a request that hangs, or a closed connection
 * not cleaned up within it; an answer that is not HTTP; a 200 answer (only
 * ballast's handler sends one) whose body is not a JSON object with a
 * one-line string Err and the announced length.
 *
 * State (the catalog, volumes made by Creates) carries over between inputs
 * and is thrown away, server included, every FUZZ_RESET_EVERY inputs
 * (default 64). FUZZ_HELPER as in fuzz_api.c; FUZZ_VERBOSE=1 keeps
 * ballastd's log on stderr and prints every answer on stdout.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "backend.h"
#include "catalog.h"
#include "config.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "timeutil.h"

/* Below libFuzzer's -timeout (20 s in run.sh) so that a hang is reported
 * as one, with the input; above helper_timeout (5 s). */
#define IDLE_TIMEOUT_MS 10000
/* How much of an answer is kept for the checks; the rest is read and
 * dropped (many pipelined requests give many answers). */
#define ANSWER_KEEP (64 * 1024)
#define SOCKET_NAME "ballastd.sock"

static struct {
	char *dir;     /* the temp dir holding state_dir and, if short enough, the socket */
	char *sockdir; /* a short temp dir for the socket when dir is too long, or NULL */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ballast_config cfg;
	struct catalog *cat;
	struct api *api;
	struct http_server *srv;
	unsigned long runs;
	unsigned long reset_every;
	int verbose;
} F;

static void die(const char *what, const char *detail, const char *resp, size_t resp_len)
{
	fprintf(stdout, "fuzz_http: INVARIANT BROKEN: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	if (resp)
		fprintf(stdout, "fuzz_http: answer: %.*s\n", (int)(resp_len < 2000 ? resp_len : 2000), resp);
	fflush(stdout);
	abort();
}

/* --- the daemon: catalog, api and HTTP server in a temp dir ------------- */

static void env_stop(void)
{
	/* The server first: it waits for the requests under way, which use
	 * the api. */
	http_stop(F.srv);
	F.srv = NULL;
	api_free(F.api);
	F.api = NULL;
	catalog_close(F.cat);
	F.cat = NULL;
	config_free(&F.cfg);
	if (F.sockdir) {
		rm_rf(F.sockdir);
		free(F.sockdir);
		F.sockdir = NULL;
	}
	if (F.dir) {
		rm_rf(F.dir);
		free(F.dir);
		F.dir = NULL;
	}
}

/* The socket goes into the temp dir unless that path would not fit in a
 * sockaddr_un; then into a temp dir of its own under /tmp. */
static void pick_socket_path(void)
{
	const char *dir = F.dir;

	if (strlen(F.dir) + sizeof("/" SOCKET_NAME) > sizeof(F.sock)) {
		F.sockdir = strdup("/tmp/ballast-fuzz-XXXXXX");
		if (!F.sockdir || !mkdtemp(F.sockdir))
			die("cannot make a temp dir for the socket", strerror(errno), NULL, 0);
		dir = F.sockdir;
	}
	snprintf(F.sock, sizeof(F.sock), "%s/%s", dir, SOCKET_NAME);
}

static void env_start(void)
{
	struct berr err = BERR_INIT;
	const char *base = getenv("TMPDIR");
	char state[PATH_MAX];

	if (asprintf(&F.dir, "%s/ballast-fuzz-XXXXXX", base && *base ? base : "/tmp") < 0 || !mkdtemp(F.dir))
		die("cannot make a temp dir", strerror(errno), NULL, 0);
	snprintf(state, sizeof(state), "%s/state", F.dir);
	memset(&F.cfg, 0, sizeof(F.cfg));
	if (backend_config_keys(&F.cfg) < 0 || config_set(&F.cfg, "ballast", "state_dir", state, NULL) < 0 ||
	    config_set(&F.cfg, "ballast", "helper", getenv("FUZZ_HELPER") ? getenv("FUZZ_HELPER") : "/bin/false",
		       NULL) < 0 ||
	    config_set(&F.cfg, "ballast", "helper_timeout", "5", NULL) < 0 ||
	    config_set(&F.cfg, "ballast", "host_id", "fuzzhost", NULL) < 0 || config_finish(&F.cfg) < 0)
		die("config", NULL, NULL, 0);
	if (mkdir_p(state, 0700) < 0)
		die("cannot make the state dir", state, NULL, 0);
	if (catalog_open(state, &F.cat, &err) < 0)
		die("catalog_open", err.msg, NULL, 0);
	if (api_new(&F.cfg, F.cat, &F.api, &err) < 0)
		die("api_new", err.msg, NULL, 0);
	api_recover(F.api);
	pick_socket_path();
	if (http_start(F.api, F.sock, &F.srv, &err) < 0)
		die("http_start", err.msg, NULL, 0);
}

static void env_reset(void)
{
	env_stop();
	env_start();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *s;

	(void)argc;
	(void)argv;
	F.reset_every = 64;
	if ((s = getenv("FUZZ_RESET_EVERY")) && atol(s) > 0)
		F.reset_every = (unsigned long)atol(s);
	/* As ballastd does: a peer that hangs up is an error return, not a
	 * signal. */
	signal(SIGPIPE, SIG_IGN);
	/* Log lines formatted at debug level but dropped: see fuzz_api.c. */
	log_threshold = LOG_LVL_DEBUG;
	F.verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (!F.verbose) {
		FILE *null = fopen("/dev/null", "w");

		if (null)
			stderr = null;
	}
	env_start();
	atexit(env_stop);
	return 0;
}

/* --- one connection ------------------------------------------------------ */

static int connect_daemon(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket", strerror(errno), NULL, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot connect to ballastd", strerror(errno), NULL, 0);
	return fd;
}

struct answer {
	char buf[ANSWER_KEEP + 1]; /* NUL-terminated for the checks */
	size_t len;		   /* bytes kept */
	size_t total;		   /* bytes read */
};

/* Read what is there; 1 at EOF (or a reset: the server hung up). */
static int read_some(int fd, struct answer *a)
{
	char scratch[4096];

	for (;;) {
		size_t room = ANSWER_KEEP - a->len;
		char *to = room ? a->buf + a->len : scratch;
		ssize_t n = recv(fd, to, room ? room : sizeof(scratch), 0);

		if (n > 0) {
			if (room)
				a->len += (size_t)n;
			a->total += (size_t)n;
			continue;
		}
		if (n == 0 || errno == ECONNRESET)
			return 1;
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		die("recv", strerror(errno), a->buf, a->len);
	}
}

/*
 * Send data and shut down our side, reading the answer meanwhile, until
 * the server closes. Dies when neither side moves for IDLE_TIMEOUT_MS.
 */
static void converse(int fd, const uint8_t *data, size_t size, struct answer *a)
{
	size_t sent = 0;
	int shut = 0;
	long idle_since = monotonic_ms();

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (shut ? 0 : POLLOUT) };
		long left = idle_since + IDLE_TIMEOUT_MS - monotonic_ms();
		size_t before = a->total;
		int r;

		if (left <= 0)
			die("no progress: the request hangs", NULL, a->buf, a->len);
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR)
			die("poll", strerror(errno), NULL, 0);
		if (r <= 0)
			continue;
		if (!shut && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = size > sent ? send(fd, data + sent, size - sent, MSG_NOSIGNAL) : 0;

			if (n > 0) {
				sent += (size_t)n;
				idle_since = monotonic_ms();
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				sent = size; /* the server stopped listening: fine */
			}
			if (sent == size) {
				shutdown(fd, SHUT_WR);
				shut = 1;
			}
		}
		if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
			if (read_some(fd, a))
				break;
			if (a->total != before)
				idle_since = monotonic_ms();
		}
	}
	a->buf[a->len] = '\0';
}

/* --- the checks ---------------------------------------------------------- */

/* The value of header name in the header block [head, end), or NULL. */
static const char *header_value(const char *head, const char *end, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = head; l && l < end; l = strstr(l, "\r\n"), l = l ? l + 2 : NULL)
		if ((size_t)(end - l) > n && strncasecmp(l, name, n) == 0 && l[n] == ':')
			return l + n + 1 + strspn(l + n + 1, " \t");
	return NULL;
}

/* A 200 comes only from ballast's handler: a JSON object, Err a one-line
 * string, exactly Content-Length bytes of it. */
static void check_ok_body(const struct answer *a, const char *head, const char *end)
{
	const char *type = header_value(head, end, "Content-Type");
	const char *clen = header_value(head, end, "Content-Length");
	const char *body = end + 4;
	size_t have = (size_t)(a->buf + a->len - body), want;
	json_error_t jerr;
	json_t *j, *err;

	if (!type || strncmp(type, "application/json\r\n", 18) != 0)
		die("a 200 answer is not application/json", NULL, a->buf, a->len);
	if (!clen)
		die("a 200 answer has no Content-Length", NULL, a->buf, a->len);
	want = strtoul(clen, NULL, 10);
	if (a->len == ANSWER_KEEP && have < want)
		return; /* cut off by us */
	if (have < want)
		die("a 200 answer is shorter than its Content-Length", NULL, a->buf, a->len);
	j = json_loadb(body, want, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j))
		die("a 200 answer is not a JSON object", jerr.text, a->buf, a->len);
	err = json_object_get(j, "Err");
	if (!json_is_string(err))
		die("Err is missing or not a string", NULL, a->buf, a->len);
	if (strcspn(json_string_value(err), "\r\n") != json_string_length(err))
		die("Err is not one line", NULL, a->buf, a->len);
	json_decref(j);
}

/*
 * An answer is nothing (the request was cut off) or HTTP: interim 1xx
 * answers, then a final one, checked further when it is a 200. Interim
 * answers alone are fine: libmicrohttpd 0.9.75, after a 100 Continue for
 * an empty body followed by more bytes, calls the handler with
 * *upload_size 0 before the request is complete, refuses the response
 * queued then and closes (the handler ran with the empty body, which
 * changes nothing).
 */
static void check_answer(const struct answer *a)
{
	const char *p = a->buf;

	if (!a->len)
		return;
	while (p < a->buf + a->len) {
		const char *end = strstr(p, "\r\n\r\n");
		unsigned status;

		if (strncmp(p, "HTTP/1.1 ", 9) != 0 && strncmp(p, "HTTP/1.0 ", 9) != 0)
			die("the answer is not HTTP", NULL, a->buf, a->len);
		if (!end) {
			if (a->len == ANSWER_KEEP)
				return;
			die("the answer's header is incomplete", NULL, a->buf, a->len);
		}
		if (sscanf(p + 9, "%3u", &status) != 1 || status < 100 || status > 599 || p[12] != ' ')
			die("bad status line", NULL, a->buf, a->len);
		if (status >= 200) {
			if (status == 200)
				check_ok_body(a, p, end);
			return;
		}
		p = end + 4;
	}
}

/*
 * Wait until libmicrohttpd has cleaned the connection up (its thread
 * joined), so that each input ends with the server at rest: libFuzzer's
 * leak check after an input sees no connection half torn down, and no
 * input overlaps the next.
 */
static void wait_server_idle(void)
{
	long deadline = monotonic_ms() + IDLE_TIMEOUT_MS;
	const struct timespec pause = { .tv_nsec = 20 * 1000 };

	while (http_connections(F.srv) > 0) {
		if (monotonic_ms() > deadline)
			die("libmicrohttpd never cleaned a closed connection up", NULL, NULL, 0);
		nanosleep(&pause, NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct answer a;
	int fd;

	if (F.runs && F.runs % F.reset_every == 0)
		env_reset();
	F.runs++;
	a.len = 0;
	a.total = 0;
	fd = connect_daemon();
	converse(fd, data, size, &a);
	close(fd);
	wait_server_idle();
	if (F.verbose)
		printf("fuzz_http: %zu bytes in, %zu out:\n%s\n", size, a.total, a.buf);
	check_answer(&a);
	return 0;
}
