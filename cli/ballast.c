/*
 * ballast.c - the operators' CLI. It talks to ballastd over the plugin
 * socket, on admin endpoints (/Ballast.*) that dockerd never calls, so it
 * sees exactly what dockerd sees and never touches state itself.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "version.h"

#define DEFAULT_SOCKET "/run/docker/plugins/ballast.sock"
#define CALL_TIMEOUT_S 70L
#define RESPONSE_MAX (64L * 1024 * 1024)

struct buf {
	char *data;
	size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct buf *b = user;
	size_t n = size * nmemb;
	char *grown;

	if (b->len + n > RESPONSE_MAX)
		return 0;
	grown = realloc(b->data, b->len + n + 1);
	if (!grown)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/*
 * POST body to method on the daemon's socket. Returns the parsed answer (a
 * new reference) or NULL after printing why to stderr: the daemon is not
 * running, or it answered with an Err. Takes body's reference.
 */
static json_t *call_err(const char *sock, const char *method, json_t *body, char *why, size_t whylen);

static json_t *call(const char *sock, const char *method, json_t *body)
{
	char why[512];
	json_t *resp = call_err(sock, method, body, why, sizeof(why));

	if (!resp)
		fprintf(stderr, "ballast: %s\n", why);
	return resp;
}

/* call, with the reason for a NULL answer written to why instead. */
static json_t *call_err(const char *sock, const char *method, json_t *body, char *why, size_t whylen)
{
	char url[128], errbuf[CURL_ERROR_SIZE] = "";
	struct buf b = { NULL, 0 };
	struct curl_slist *hdrs = NULL;
	json_t *resp = NULL;
	json_error_t jerr;
	char *payload;
	CURL *c;
	CURLcode rc;

	payload = json_dumps(body, JSON_COMPACT);
	c = curl_easy_init();
	if (!payload || !c) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "http://ballast/%s", method);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, CALL_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		snprintf(why, whylen, "cannot reach ballastd at %s: %s (is ballastd running?)", sock,
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	resp = b.data ? json_loads(b.data, 0, &jerr) : NULL;
	if (!json_is_object(resp)) {
		snprintf(why, whylen, "ballastd at %s sent an answer that is not JSON", sock);
		json_decref(resp);
		resp = NULL;
		goto out;
	}
	if (json_string_length(json_object_get(resp, "Err")) > 0) {
		snprintf(why, whylen, "%s", json_string_value(json_object_get(resp, "Err")));
		json_decref(resp);
		resp = NULL;
	}
out:
	curl_slist_free_all(hdrs);
	if (c)
		curl_easy_cleanup(c);
	free(payload);
	free(b.data);
	json_decref(body);
	return resp;
}

static void human_size(json_t *bytes, char *out, size_t len)
{
	static const char units[] = "BKMGTP";
	double v;
	int u = 0;

	if (!json_is_integer(bytes)) {
		snprintf(out, len, "-");
		return;
	}
	v = (double)json_integer_value(bytes);
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, v == (long long)v ? "%.0f%c" : "%.1f%c", v, units[u]);
}

static int print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (!s)
		return 1;
	puts(s);
	free(s);
	return 0;
}

static int cmd_ls(const char *sock, int as_json)
{
	json_t *resp = call(sock, "Ballast.List", json_object());
	json_t *vols, *v;
	size_t i;
	int ret;

	if (!resp)
		return 1;
	vols = json_object_get(resp, "Volumes");
	if (as_json) {
		ret = print_json(vols);
		goto out;
	}
	printf("%-32s %-8s %8s %6s  %s\n", "NAME", "BACKEND", "SIZE", "MOUNTS", "CREATED");
	json_array_foreach (vols, i, v) {
		char size[32];

		human_size(json_object_get(v, "size_bytes"), size, sizeof(size));
		printf("%-32s %-8s %8s %6lld  %s\n", json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "backend")), size,
		       (long long)json_integer_value(json_object_get(v, "mount_count")),
		       json_string_value(json_object_get(v, "created_at")));
	}
	ret = 0;
out:
	json_decref(resp);
	return ret;
}

static int cmd_inspect(const char *sock, const char *name, int as_json)
{
	json_t *resp = call(sock, "Ballast.Inspect", json_pack("{s:s}", "Name", name));
	json_t *v, *opts, *val;
	const char *key;
	char size[32];
	int ret = 0;

	if (!resp)
		return 1;
	v = json_object_get(resp, "Volume");
	if (as_json) {
		ret = print_json(v);
		goto out;
	}
	human_size(json_object_get(v, "size_bytes"), size, sizeof(size));
	printf("name:        %s\n", json_string_value(json_object_get(v, "name")));
	printf("backend:     %s\n", json_string_value(json_object_get(v, "backend")));
	printf("size:        %s\n", size);
	printf("created:     %s\n", json_string_value(json_object_get(v, "created_at")));
	printf("mountpoint:  %s\n", json_string_value(json_object_get(v, "mountpoint")));
	printf("mount count: %lld\n", (long long)json_integer_value(json_object_get(v, "mount_count")));
	opts = json_object_get(v, "options");
	printf("options:    %s\n", json_object_size(opts) ? "" : " (none)");
	json_object_foreach (opts, key, val)
		printf("  %s=%s\n", key, json_string_value(val));
out:
	json_decref(resp);
	return ret;
}

static int cmd_version(const char *sock)
{
	json_t *resp;

	printf("ballast %s\n", BALLAST_VERSION);
	resp = call(sock, "Ballast.Version", json_object());
	if (!resp)
		return 1;
	printf("ballastd %s (host %s)\n", json_string_value(json_object_get(resp, "Version")),
	       json_string_value(json_object_get(resp, "HostID")));
	json_decref(resp);
	return 0;
}

static int cmd_resize(const char *sock, const char *name, const char *size)
{
	json_t *resp = call(sock, "Ballast.Resize", json_pack("{s:s, s:s}", "Name", name, "Size", size));

	if (!resp)
		return 1;
	printf("resized %s to %s\n", name, size);
	json_decref(resp);
	return 0;
}

/* Who holds which exclusive volume, and until when. Exit 1 when some
 * volume's holder could not be read (its cluster unreachable). */
static int cmd_holders(const char *sock, int as_json)
{
	json_t *resp = call(sock, "Ballast.Holders", json_object());
	json_t *holders, *errs, *h;
	size_t i;
	int ret;

	if (!resp)
		return 1;
	holders = json_object_get(resp, "Holders");
	errs = json_object_get(resp, "Errors");
	if (as_json) {
		ret = print_json(resp);
		ret = ret ? ret : json_array_size(errs) ? 1 : 0;
		goto out;
	}
	printf("%-32s %-8s %-20s %-20s %-20s %s\n", "NAME", "BACKEND", "HOST", "SINCE", "LEASE UNTIL", "STATE");
	json_array_foreach (holders, i, h) {
		const char *host = json_string_value(json_object_get(h, "host"));
		const char *until = json_string_value(json_object_get(h, "expires"));

		printf("%-32s %-8s %-20s %-20s %-20s %s\n", json_string_value(json_object_get(h, "name")),
		       json_string_value(json_object_get(h, "backend")), host ? host : "-",
		       json_string_value(json_object_get(h, "since")) ?: "-", until ? until : "-",
		       !until					     ? "held"
		       : json_is_true(json_object_get(h, "expired")) ? "expired"
								     : "held");
	}
	json_array_foreach (errs, i, h)
		fprintf(stderr, "ballast: %s: %s\n", json_string_value(json_object_get(h, "name")),
			json_string_value(json_object_get(h, "error")));
	ret = json_array_size(errs) ? 1 : 0;
out:
	json_decref(resp);
	return ret;
}

static int cmd_release(const char *sock, const char *name, int force)
{
	json_t *resp = call(sock, "Ballast.Release", json_pack("{s:s, s:b}", "Name", name, "Force", force));

	if (!resp)
		return 1;
	printf("released %s%s\n", name, force ? " (its holder fenced)" : "");
	json_decref(resp);
	return 0;
}

/* ballast snapshot create|rm|rollback VOL SNAP */
static int cmd_snapshot_change(const char *sock, const char *what, const char *name, const char *snap)
{
	static const struct {
		const char *what, *method, *done;
	} verbs[] = {
		{ "create", "Ballast.Snapshot", "took snapshot" },
		{ "rm", "Ballast.SnapshotRemove", "removed snapshot" },
		{ "rollback", "Ballast.Rollback", "rolled back to snapshot" },
	};
	json_t *resp;

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(what, verbs[i].what) != 0)
			continue;
		resp = call(sock, verbs[i].method, json_pack("{s:s, s:s}", "Name", name, "Snapshot", snap));
		if (!resp)
			return 1;
		printf("%s: %s %s\n", name, verbs[i].done, snap);
		json_decref(resp);
		return 0;
	}
	fprintf(stderr, "ballast: unknown snapshot command: %s (create, ls, rm or rollback)\n", what);
	return 2;
}

/*
 * ballast snapshot rm VOL --all: every snapshot of VOL, so that the volume
 * can be removed. Nothing is removed when one has clones (named) or when
 * the list cannot be read whole.
 */
static int cmd_snapshot_rm_all(const char *sock, const char *name)
{
	json_t *resp = call(sock, "Ballast.Snapshots", json_pack("{s:s}", "Name", name));
	json_t *snaps, *s, *errs;
	int refused = 0, ret = 0;
	size_t i;

	if (!resp)
		return 1;
	snaps = json_object_get(resp, "Snapshots");
	errs = json_object_get(resp, "Errors");
	/* every reason to refuse is named before anything is removed */
	json_array_foreach (errs, i, s) {
		fprintf(stderr, "ballast: %s: %s; nothing removed\n", json_string_value(json_object_get(s, "name")),
			json_string_value(json_object_get(s, "error")));
		refused = 1;
	}
	json_array_foreach (snaps, i, s) {
		json_t *kids = json_object_get(s, "clones"), *k;
		size_t j;

		if (json_array_size(kids) == 0)
			continue;
		fprintf(stderr, "ballast: snapshot %s@%s has clones (", name,
			json_string_value(json_object_get(s, "name")));
		json_array_foreach (kids, j, k)
			fprintf(stderr, "%s%s", j ? ", " : "", json_string_value(k));
		fprintf(stderr, "); remove them first; nothing removed\n");
		refused = 1;
	}
	if (!refused && json_array_size(snaps) == 0)
		printf("%s: no snapshots\n", name);
	json_array_foreach (snaps, i, s) {
		if (refused || ret)
			break;
		ret = cmd_snapshot_change(sock, "rm", name, json_string_value(json_object_get(s, "name")));
	}
	json_decref(resp);
	return refused ? 1 : ret;
}

/* ballast snapshot ls [VOL] [--json]; exit 1 when some volume's snapshots
 * could not be read */
static int cmd_snapshot_ls(const char *sock, const char *name, int as_json)
{
	json_t *resp = call(sock, "Ballast.Snapshots", name ? json_pack("{s:s}", "Name", name) : json_object());
	json_t *snaps, *errs, *s;
	char size[16];
	size_t i;
	int ret;

	if (!resp)
		return 1;
	snaps = json_object_get(resp, "Snapshots");
	errs = json_object_get(resp, "Errors");
	if (as_json) {
		ret = print_json(snaps);
	} else {
		printf("%-32s %-32s %-8s %-25s %s\n", "VOLUME", "SNAPSHOT", "SIZE", "CREATED", "CLONES");
		json_array_foreach (snaps, i, s) {
			json_t *kids = json_object_get(s, "clones"), *k;
			size_t j;

			human_size(json_object_get(s, "size_bytes"), size, sizeof(size));
			printf("%-32s %-32s %-8s %-25s ", json_string_value(json_object_get(s, "volume")),
			       json_string_value(json_object_get(s, "name")), size,
			       json_string_value(json_object_get(s, "created_at")) ?: "-");
			json_array_foreach (kids, j, k)
				printf("%s%s", j ? "," : "", json_string_value(k));
			printf("%s\n", json_array_size(kids) ? "" : "-");
		}
		ret = 0;
	}
	json_array_foreach (errs, i, s)
		fprintf(stderr, "ballast: %s: %s\n", json_string_value(json_object_get(s, "name")),
			json_string_value(json_object_get(s, "error")));
	ret = ret ? ret : json_array_size(errs) ? 1 : 0;
	json_decref(resp);
	return ret;
}

/* One line of doctor's report; counts failures. */
static void report(int *failed, int ok, const char *check, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report(int *failed, int ok, const char *check, const char *fmt, ...)
{
	va_list ap;

	printf("%-4s %s: ", ok ? "OK" : "FAIL", check);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok)
		(*failed)++;
}

/*
 * Check what can be checked from here and ask the daemon for the rest:
 * the config parses, the socket is there and not world-accessible, the
 * daemon answers, and each backend's own checks (cluster reachable within
 * its time bound, tools and mappers present).
 */
static int cmd_doctor(const char *sock, int sock_given, const char *config_path, int config_given)
{
	struct ballast_config cfg = CONFIG_INIT;
	struct berr err = BERR_INIT;
	json_t *resp, *checks, *c;
	char why[512];
	struct stat st;
	int failed = 0;
	size_t i;

	/* Only [ballast] matters here; ballastd checks the backends' sections. */
	cfg.skip_unknown = 1;
	if (config_load(&cfg, config_path, config_given, &err) == 0) {
		report(&failed, 1, "config", "%s", cfg.path ? cfg.path : "no file: all defaults");
		if (!sock_given && !getenv("BALLAST_SOCKET"))
			sock = config_get(&cfg, "ballast", "socket");
	} else {
		report(&failed, 0, "config", "%s", err.msg);
	}
	if (stat(sock, &st) < 0)
		report(&failed, 0, "socket", "%s: %s", sock, strerror(errno));
	else if (!S_ISSOCK(st.st_mode))
		report(&failed, 0, "socket", "%s is not a socket", sock);
	else if (st.st_mode & 0007)
		report(&failed, 0, "socket", "%s is world-accessible (mode %03o)", sock, st.st_mode & 0777);
	else
		report(&failed, 1, "socket", "%s (mode %03o)", sock, st.st_mode & 0777);
	resp = call_err(sock, "Ballast.Version", json_object(), why, sizeof(why));
	if (!resp) {
		report(&failed, 0, "daemon", "%s", why);
		goto out;
	}
	report(&failed, 1, "daemon", "ballastd %s on host %s", json_string_value(json_object_get(resp, "Version")),
	       json_string_value(json_object_get(resp, "HostID")));
	json_decref(resp);
	resp = call_err(sock, "Ballast.Check", json_object(), why, sizeof(why));
	if (!resp) {
		report(&failed, 0, "backends", "%s", why);
		goto out;
	}
	checks = json_object_get(resp, "Checks");
	json_array_foreach (checks, i, c)
		report(&failed, json_is_true(json_object_get(c, "ok")), json_string_value(json_object_get(c, "check")),
		       "%s", json_string_value(json_object_get(c, "detail")));
	json_decref(resp);
out:
	config_free(&cfg);
	return failed ? 1 : 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: ballast [--socket PATH] COMMAND\n"
		     "  ls [--json]             list volumes\n"
		     "  inspect NAME [--json]   show one volume\n"
		     "  version                 versions of ballast and the running ballastd\n"
		     "  resize NAME SIZE        grow a volume and its file system (online if mounted)\n"
		     "  holders [--json]        who holds which exclusive volume, and until when\n"
		     "  release NAME [--force]  break another host's expired hold (--force: even a\n"
		     "                          fresh one), fencing that host first\n"
		     "  snapshot create VOL SNAP    take a snapshot (the file system frozen for it)\n"
		     "  snapshot ls [VOL] [--json]  list snapshots\n"
		     "  snapshot rm VOL SNAP        remove a snapshot\n"
		     "  snapshot rm VOL --all       remove every snapshot of VOL (none has clones)\n"
		     "  snapshot rollback VOL SNAP  make VOL what it was at SNAP (VOL mounted nowhere)\n"
		     "  doctor [--config FILE]  check config, socket, daemon and backends\n"
		     "The socket defaults to $BALLAST_SOCKET, else " DEFAULT_SOCKET ".\n");
}

struct cli_opts {
	const char *sock;
	const char *config_path;
	int sock_given, config_given, as_json, force, all;
};

/* Parse options with getopt_long's optstring; -1 to go on, else the exit
 * status (after --help or a bad option). */
static int take_opts(int argc, char **argv, const char *optstring, struct cli_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "force", no_argument, NULL, 'f' },
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->sock = optarg;
			o->sock_given = 1;
			break;
		case 'c':
			o->config_path = optarg;
			o->config_given = 1;
			break;
		case 'j':
			o->as_json = 1;
			break;
		case 'f':
			o->force = 1;
			break;
		case 'a':
			o->all = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct cli_opts o = { .sock = getenv("BALLAST_SOCKET"), .config_path = CONFIG_DEFAULT_PATH };
	const char *cmd;
	int ret;

	if (!o.sock || !*o.sock)
		o.sock = DEFAULT_SOCKET;
	/* Up to the command ("+": stop at the first operand)... */
	ret = take_opts(argc, argv, "+s:jc:h", &o);
	if (ret >= 0)
		return ret;
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	/* ...then after it (ballast inspect v1 --json): parse again from the
	 * command on, with getopt restarted (optind 0) so that it permutes
	 * instead of stopping at the first operand. */
	argv += optind;
	argc -= optind;
	optind = 0;
	ret = take_opts(argc, argv, "s:jc:h", &o);
	if (ret >= 0)
		return ret;
	if (o.all && !(strcmp(cmd, "snapshot") == 0 && optind < argc && strcmp(argv[optind], "rm") == 0)) {
		fprintf(stderr, "ballast: --all goes with snapshot rm only\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(cmd, "ls") == 0 && optind == argc)
		ret = cmd_ls(o.sock, o.as_json);
	else if (strcmp(cmd, "inspect") == 0 && optind + 1 == argc)
		ret = cmd_inspect(o.sock, argv[optind], o.as_json);
	else if (strcmp(cmd, "version") == 0 && optind == argc)
		ret = cmd_version(o.sock);
	else if (strcmp(cmd, "resize") == 0 && optind + 2 == argc)
		ret = cmd_resize(o.sock, argv[optind], argv[optind + 1]);
	else if (strcmp(cmd, "holders") == 0 && optind == argc)
		ret = cmd_holders(o.sock, o.as_json);
	else if (strcmp(cmd, "release") == 0 && optind + 1 == argc)
		ret = cmd_release(o.sock, argv[optind], o.force);
	else if (strcmp(cmd, "snapshot") == 0 && optind + 1 <= argc && strcmp(argv[optind], "ls") == 0 &&
		 optind + 2 >= argc)
		ret = cmd_snapshot_ls(o.sock, optind + 2 == argc ? argv[optind + 1] : NULL, o.as_json);
	else if (strcmp(cmd, "snapshot") == 0 && o.all && optind + 2 == argc && strcmp(argv[optind], "rm") == 0)
		ret = cmd_snapshot_rm_all(o.sock, argv[optind + 1]);
	else if (strcmp(cmd, "snapshot") == 0 && !o.all && optind + 3 == argc)
		ret = cmd_snapshot_change(o.sock, argv[optind], argv[optind + 1], argv[optind + 2]);
	else if (strcmp(cmd, "doctor") == 0 && optind == argc)
		ret = cmd_doctor(o.sock, o.sock_given, o.config_path, o.config_given);
	else {
		fprintf(stderr, "ballast: unknown command or wrong arguments: %s\n", cmd);
		usage(stderr);
		ret = 2;
	}
	curl_global_cleanup();
	return ret;
}
