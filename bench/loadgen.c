/* loadgen.c - load generator for ballastd's plugin socket.
 *
 * Speaks HTTP/1.1 with keep-alive over AF_UNIX (a minimal client of its own:
 * one persistent connection per thread, requests as dockerd sends them) and
 * prints one line of JSON with the figures.
 *
 *   loadgen --socket PATH --mode MODE [--conns C] [--count N | --duration S]
 *           [--volumes V] [--prefix P] [--method M] [--since NS] [--timeout S]
 *
 * Modes:
 *   get       VolumeDriver.Get of V existing volumes (created before the clock
 *             starts if missing), round robin; N = requests
 *   cycle     Create/Mount/Unmount/Remove of a fresh name (local backend,
 *             plain directory); N = cycles; latencies per cycle and per call
 *   create    create N volumes PREFIX-0 .. PREFIX-(N-1); N = volumes
 *   list      POST M (VolumeDriver.List by default) with {}; N = requests
 *   activate  poll Plugin.Activate every millisecond until it answers; prints
 *             the time since NS (CLOCK_REALTIME nanoseconds, e.g. `date
 *             +%s%N` taken just before the daemon was started), then that of
 *             the answer to one M (VolumeDriver.List) sent right after it
 *             (ballastd answers Activate while its catalog loads)
 *
 * C threads each hold one connection. With --count the work is shared out
 * (first come, first served); with --duration every thread runs until the
 * time is up. Any failed call (transport error, non-200, non-empty Err,
 * Mount without a Mountpoint) is counted; the exit status is 1 if any failed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define NAME_MAX_LEN 128

enum mode { M_GET, M_CYCLE, M_CREATE, M_LIST, M_ACTIVATE };
enum op { OP_CREATE, OP_MOUNT, OP_UNMOUNT, OP_REMOVE, OP_N };
static const char *const op_names[OP_N] = { "create", "mount", "unmount", "remove" };

static struct {
	const char *socket;
	enum mode mode;
	int conns;
	long count;
	double duration;
	long volumes;
	char prefix[64];
	const char *method;
	long long since_ns;
	double timeout;
} opt = {
	.conns = 1,
	.count = 0,
	.duration = 0,
	.volumes = 100,
	.method = "VolumeDriver.List",
	.timeout = 60,
};

/* A growing array of latencies in microseconds. */
struct lat {
	double *v;
	size_t n, cap;
};

static int lat_add(struct lat *l, double us)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		double *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = us;
	return 0;
}

static int lat_merge(struct lat *into, const struct lat *from)
{
	for (size_t i = 0; i < from->n; i++)
		if (lat_add(into, from->v[i]) < 0)
			return -1;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in milliseconds. */
static double pct_ms(const struct lat *l, double p)
{
	size_t k;

	if (!l->n)
		return 0;
	k = (size_t)(p / 100.0 * (double)l->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > l->n)
		k = l->n;
	return l->v[k - 1] / 1000.0;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ------------------------------------------------------------ HTTP client */

struct conn {
	int fd;
	char *buf; /* response bytes read so far */
	size_t len, cap;
	char *body; /* points into buf after a successful request */
	size_t body_len;
	int status;
	long reconnects;
};

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int buf_reserve(struct conn *c, size_t more)
{
	if (c->len + more + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 8192;
		char *b;

		while (c->len + more + 1 > cap)
			cap *= 2;
		b = realloc(c->buf, cap);
		if (!b)
			return -1;
		c->buf = b;
		c->cap = cap;
	}
	return 0;
}

/* Read more bytes into c->buf; 0 on EOF, -1 on error. */
static ssize_t fill(struct conn *c)
{
	ssize_t r;

	if (buf_reserve(c, 65536) < 0)
		return -1;
	do
		r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		c->len += (size_t)r;
		c->buf[c->len] = '\0';
	}
	return r;
}

static const char *header_value(const char *hdrs, const char *end, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = hdrs; p && p < end; p = strstr(p, "\r\n")) {
		if (p[0] == '\r')
			p += 2;
		if (p >= end)
			break;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
	}
	return NULL;
}

/* One request/response exchange on an open connection. 0 on success (any
 * HTTP status), -1 on a transport or protocol error (errno-ish text in err). */
static int exchange(struct conn *c, const char *path, const char *body, char *err, size_t errlen)
{
	char head[512];
	size_t blen = strlen(body), need;
	char *eoh;
	const char *cl, *connhdr;
	int n, close_after = 0;

	n = snprintf(head, sizeof(head),
		     "POST /%s HTTP/1.1\r\nHost: plugin\r\n"
		     "Accept: application/vnd.docker.plugins.v1.2+json\r\n"
		     "Content-Length: %zu\r\n\r\n",
		     path, blen);
	if (n < 0 || (size_t)n >= sizeof(head)) {
		snprintf(err, errlen, "request head too long");
		return -1;
	}
	if (write_all(c->fd, head, (size_t)n) < 0 || write_all(c->fd, body, blen) < 0) {
		snprintf(err, errlen, "send: %s", strerror(errno));
		return -1;
	}
	c->len = 0;
	for (;;) {
		ssize_t r;

		if (c->len && (eoh = strstr(c->buf, "\r\n\r\n")))
			break;
		r = fill(c);
		if (r <= 0) {
			snprintf(err, errlen, "%s before the response head",
				 r == 0 ? "connection closed" : strerror(errno));
			return -1;
		}
	}
	if (sscanf(c->buf, "HTTP/1.%*d %d", &c->status) != 1) {
		snprintf(err, errlen, "bad status line");
		return -1;
	}
	cl = header_value(c->buf, eoh, "Content-Length");
	if (!cl) {
		snprintf(err, errlen, "response without Content-Length");
		return -1;
	}
	connhdr = header_value(c->buf, eoh, "Connection");
	if (connhdr && strncasecmp(connhdr, "close", 5) == 0)
		close_after = 1;
	need = (size_t)(eoh + 4 - c->buf) + strtoull(cl, NULL, 10);
	while (c->len < need) {
		ssize_t r = fill(c);

		if (r <= 0) {
			snprintf(err, errlen, "%s in the response body",
				 r == 0 ? "connection closed" : strerror(errno));
			return -1;
		}
		eoh = strstr(c->buf, "\r\n\r\n");
	}
	c->body = eoh + 4;
	c->body_len = need - (size_t)(eoh + 4 - c->buf);
	c->body[c->body_len] = '\0';
	if (close_after) {
		close(c->fd);
		c->fd = -1;
	}
	return 0;
}

/* POST /path with body; reconnects once if the kept-alive connection had
 * been closed by the server. 0 on success, -1 with err set. */
static int call(struct conn *c, const char *path, const char *body, char *err, size_t errlen)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int fresh = 0;

		if (c->fd < 0) {
			c->fd = unix_connect(opt.socket);
			if (c->fd < 0) {
				snprintf(err, errlen, "connect %s: %s", opt.socket, strerror(errno));
				return -1;
			}
			fresh = 1;
		}
		if (exchange(c, path, body, err, errlen) == 0)
			return 0;
		close(c->fd);
		c->fd = -1;
		if (fresh)
			return -1;
		c->reconnects++;
	}
	return -1;
}

/* The value of the last "Err" member of the body: 1 if non-empty. */
static int has_err(const struct conn *c, char *err, size_t errlen)
{
	const char *key = "\"Err\":\"";
	size_t kl = strlen(key);

	for (size_t i = c->body_len >= kl ? c->body_len - kl + 1 : 0; i-- > 0;) {
		if (memcmp(c->body + i, key, kl) == 0) {
			const char *v = c->body + i + kl;

			if (*v == '"')
				return 0;
			snprintf(err, errlen, "Err: %.*s", (int)strcspn(v, "\""), v);
			return 1;
		}
	}
	return 0;
}

/* A call that must succeed: transport, HTTP 200 and an empty Err. */
static int call_ok(struct conn *c, const char *path, const char *body, char *err, size_t errlen)
{
	if (call(c, path, body, err, errlen) < 0)
		return -1;
	if (c->status != 200) {
		snprintf(err, errlen, "HTTP %d: %.200s", c->status, c->body);
		return -1;
	}
	if (has_err(c, err, errlen))
		return -1;
	return 0;
}

/* ------------------------------------------------------------ workers */

struct worker {
	pthread_t tid;
	int idx;
	struct conn c;
	struct lat lat; /* per request, or per cycle */
	struct lat op[OP_N];
	long done, errors;
	char first_err[400];
};

static atomic_long next_item;
static atomic_int stop_flag;
static double t_end_us;

/* The next unit of work, or -1 when there is none left. */
static long take(void)
{
	if (opt.count > 0) {
		long i = atomic_fetch_add(&next_item, 1);

		return i < opt.count ? i : -1;
	}
	if (atomic_load(&stop_flag))
		return -1;
	if (now_us() >= t_end_us) {
		atomic_store(&stop_flag, 1);
		return -1;
	}
	return atomic_fetch_add(&next_item, 1);
}

static void note_error(struct worker *w, const char *what, const char *err)
{
	w->errors++;
	if (!w->first_err[0])
		snprintf(w->first_err, sizeof(w->first_err), "%.100s: %.255s", what, err);
}

static int one_cycle(struct worker *w, long seq)
{
	char name[NAME_MAX_LEN], body[512], id[80], err[256];
	double t0 = now_us(), t;
	static const char *const paths[OP_N] = { "VolumeDriver.Create", "VolumeDriver.Mount", "VolumeDriver.Unmount",
						 "VolumeDriver.Remove" };

	snprintf(name, sizeof(name), "%s-c%d-%ld", opt.prefix, w->idx, seq);
	snprintf(id, sizeof(id), "%016x%016lx%032x", (unsigned)w->idx, (unsigned long)seq, 0u);
	for (int o = 0; o < OP_N; o++) {
		if (o == OP_CREATE)
			snprintf(body, sizeof(body), "{\"Name\":\"%s\",\"Opts\":{}}\n", name);
		else if (o == OP_MOUNT || o == OP_UNMOUNT)
			snprintf(body, sizeof(body), "{\"Name\":\"%s\",\"ID\":\"%s\"}\n", name, id);
		else
			snprintf(body, sizeof(body), "{\"Name\":\"%s\"}\n", name);
		t = now_us();
		if (call_ok(&w->c, paths[o], body, err, sizeof(err)) < 0) {
			note_error(w, paths[o], err);
			return -1;
		}
		if (o == OP_MOUNT && !strstr(w->c.body, "\"Mountpoint\":\"/")) {
			note_error(w, paths[o], "no Mountpoint in the answer");
			return -1;
		}
		lat_add(&w->op[o], now_us() - t);
	}
	lat_add(&w->lat, now_us() - t0);
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char body[256], err[256];
	long i;

	while ((i = take()) >= 0) {
		double t0;

		switch (opt.mode) {
		case M_CYCLE:
			if (one_cycle(w, i) == 0)
				w->done++;
			continue;
		case M_GET:
			snprintf(body, sizeof(body), "{\"Name\":\"%s-g%ld\"}\n", opt.prefix, i % opt.volumes);
			break;
		case M_CREATE:
			snprintf(body, sizeof(body), "{\"Name\":\"%s-%ld\",\"Opts\":{}}\n", opt.prefix, i);
			break;
		case M_LIST:
		default:
			snprintf(body, sizeof(body), "{}\n");
			break;
		}
		t0 = now_us();
		if (call_ok(&w->c,
			    opt.mode == M_GET	   ? "VolumeDriver.Get"
			    : opt.mode == M_CREATE ? "VolumeDriver.Create"
						   : opt.method,
			    body, err, sizeof(err)) < 0) {
			note_error(w, opt.mode == M_GET ? "Get" : opt.mode == M_CREATE ? "Create" : opt.method, err);
			continue;
		}
		lat_add(&w->lat, now_us() - t0);
		w->done++;
	}
	return NULL;
}

/* Get mode: make sure the volumes exist (not timed). */
static int setup_get(void)
{
	struct conn c = { .fd = -1 };
	char body[256], err[256];

	for (long i = 0; i < opt.volumes; i++) {
		snprintf(body, sizeof(body), "{\"Name\":\"%s-g%ld\",\"Opts\":{}}\n", opt.prefix, i);
		if (call_ok(&c, "VolumeDriver.Create", body, err, sizeof(err)) < 0) {
			fprintf(stderr, "loadgen: creating %s-g%ld: %s\n", opt.prefix, i, err);
			return -1;
		}
	}
	if (c.fd >= 0)
		close(c.fd);
	free(c.buf);
	return 0;
}

static int run_activate(void)
{
	double deadline = now_us() + opt.timeout * 1e6;
	struct timespec ts;
	long long now_ns;
	long attempts = 0;
	char err[256];

	for (;;) {
		struct conn c = { .fd = -1 };
		int ok;

		attempts++;
		ok = call_ok(&c, "Plugin.Activate", "", err, sizeof(err)) == 0 &&
		     strstr(c.body, "VolumeDriver") != NULL;
		if (c.fd >= 0)
			close(c.fd);
		free(c.buf);
		if (ok)
			break;
		if (now_us() > deadline) {
			fprintf(stderr, "loadgen: no answer to Plugin.Activate in %.0f s: %s\n", opt.timeout, err);
			return 1;
		}
		usleep(1000);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	{
		struct conn c = { .fd = -1 };
		struct timespec te;
		long long then_ns;
		int ok = call_ok(&c, opt.method, "{}", err, sizeof(err)) == 0;

		if (c.fd >= 0)
			close(c.fd);
		free(c.buf);
		if (!ok) {
			fprintf(stderr, "loadgen: %s after Activate: %s\n", opt.method, err);
			return 1;
		}
		clock_gettime(CLOCK_REALTIME, &te);
		then_ns = (long long)te.tv_sec * 1000000000LL + te.tv_nsec;
		printf("{\"mode\":\"activate\",\"attempts\":%ld,\"ms\":%.3f,\"method\":\"%s\",\"first_ms\":%.3f}\n",
		       attempts, opt.since_ns ? (double)(now_ns - opt.since_ns) / 1e6 : 0.0, opt.method,
		       opt.since_ns ? (double)(then_ns - opt.since_ns) / 1e6 : 0.0);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: loadgen --socket PATH --mode get|cycle|create|list|activate [--conns C]\n"
		   "               [--count N | --duration SECONDS] [--volumes V] [--prefix P]\n"
		   "               [--method Endpoint] [--since NS] [--timeout SECONDS]\n");
}

static void print_lat(const char *key, struct lat *l)
{
	qsort(l->v, l->n, sizeof(double), cmp_double);
	printf("\"%s\":{\"n\":%zu,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f}", key, l->n, pct_ms(l, 50),
	       pct_ms(l, 99), pct_ms(l, 100));
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },   { "mode", required_argument, NULL, 'm' },
		{ "conns", required_argument, NULL, 'c' },    { "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' }, { "volumes", required_argument, NULL, 'v' },
		{ "prefix", required_argument, NULL, 'p' },   { "method", required_argument, NULL, 'M' },
		{ "since", required_argument, NULL, 'S' },    { "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },	      { NULL, 0, NULL, 0 },
	};
	const char *mode = NULL;
	struct worker *ws;
	struct lat all = { 0 }, ops[OP_N] = { { 0 } };
	long done = 0, errors = 0, reconnects = 0;
	double t0, secs;
	int ch;

	snprintf(opt.prefix, sizeof(opt.prefix), "lg%ld", (long)getpid());
	while ((ch = getopt_long(argc, argv, "s:m:c:n:d:v:p:M:S:t:h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			opt.socket = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'c':
			opt.conns = atoi(optarg);
			break;
		case 'n':
			opt.count = atol(optarg);
			break;
		case 'd':
			opt.duration = atof(optarg);
			break;
		case 'v':
			opt.volumes = atol(optarg);
			break;
		case 'p':
			snprintf(opt.prefix, sizeof(opt.prefix), "%s", optarg);
			break;
		case 'M':
			opt.method = optarg;
			break;
		case 'S':
			opt.since_ns = atoll(optarg);
			break;
		case 't':
			opt.timeout = atof(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!opt.socket || !mode) {
		usage(stderr);
		return 2;
	}
	if (strcmp(mode, "get") == 0)
		opt.mode = M_GET;
	else if (strcmp(mode, "cycle") == 0)
		opt.mode = M_CYCLE;
	else if (strcmp(mode, "create") == 0)
		opt.mode = M_CREATE;
	else if (strcmp(mode, "list") == 0)
		opt.mode = M_LIST;
	else if (strcmp(mode, "activate") == 0)
		opt.mode = M_ACTIVATE;
	else {
		usage(stderr);
		return 2;
	}
	if (opt.mode == M_ACTIVATE)
		return run_activate();
	if (opt.conns < 1 || opt.conns > MAX_CONNS || opt.volumes < 1 || (opt.count <= 0 && opt.duration <= 0)) {
		fprintf(stderr, "loadgen: need 1..%d connections, volumes >= 1, and --count or --duration\n",
			MAX_CONNS);
		return 2;
	}
	if (opt.mode == M_CREATE && opt.count <= 0) {
		fprintf(stderr, "loadgen: create needs --count\n");
		return 2;
	}
	if (opt.mode == M_GET && setup_get() < 0)
		return 1;

	ws = calloc((size_t)opt.conns, sizeof(*ws));
	if (!ws)
		return 1;
	/* Connect everyone before the clock starts. */
	for (int i = 0; i < opt.conns; i++) {
		ws[i].idx = i;
		ws[i].c.fd = unix_connect(opt.socket);
		if (ws[i].c.fd < 0) {
			fprintf(stderr, "loadgen: connect %s: %s\n", opt.socket, strerror(errno));
			return 1;
		}
	}
	t0 = now_us();
	t_end_us = t0 + opt.duration * 1e6;
	for (int i = 0; i < opt.conns; i++)
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
			fprintf(stderr, "loadgen: pthread_create failed\n");
			return 1;
		}
	for (int i = 0; i < opt.conns; i++)
		pthread_join(ws[i].tid, NULL);
	secs = (now_us() - t0) / 1e6;

	for (int i = 0; i < opt.conns; i++) {
		struct worker *w = &ws[i];

		done += w->done;
		errors += w->errors;
		reconnects += w->c.reconnects;
		if (lat_merge(&all, &w->lat) < 0)
			return 1;
		for (int o = 0; o < OP_N; o++)
			if (lat_merge(&ops[o], &w->op[o]) < 0)
				return 1;
		if (w->first_err[0] && errors == w->errors)
			fprintf(stderr, "loadgen: first error: %s\n", w->first_err);
		if (w->c.fd >= 0)
			close(w->c.fd);
	}
	printf("{\"mode\":\"%s\",\"conns\":%d,\"seconds\":%.3f,\"done\":%ld,\"errors\":%ld,"
	       "\"reconnects\":%ld,",
	       mode, opt.conns, secs, done, errors, reconnects);
	if (opt.mode == M_CYCLE) {
		printf("\"cycles_per_s\":%.1f,\"req_per_s\":%.1f,", (double)done / secs, 4.0 * (double)done / secs);
		print_lat("cycle", &all);
		printf(",\"ops\":{");
		for (int o = 0; o < OP_N; o++) {
			if (o)
				printf(",");
			print_lat(op_names[o], &ops[o]);
		}
		printf("}");
	} else {
		printf("\"req_per_s\":%.1f,", (double)done / secs);
		print_lat("request", &all);
	}
	printf(",\"p50_ms\":%.4f,\"p99_ms\":%.4f}\n", pct_ms(&all, 50), pct_ms(&all, 99));
	return errors ? 1 : 0;
}
