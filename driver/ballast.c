/*
 * ballast.c - the operators' CLI. It talks to ballastd over the plugin
 * socket, on admin endpoints (/Ballast.*) that dockerd never calls, so it
 * sees exactly what dockerd sees and never touches state itself.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static json_t *call(const char *sock, const char *method, json_t *body)
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
		fprintf(stderr, "ballast: out of memory\n");
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
		fprintf(stderr, "ballast: cannot reach ballastd at %s: %s (is ballastd running?)\n", sock,
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	resp = b.data ? json_loads(b.data, 0, &jerr) : NULL;
	if (!json_is_object(resp)) {
		fprintf(stderr, "ballast: ballastd at %s sent an answer that is not JSON\n", sock);
		json_decref(resp);
		resp = NULL;
		goto out;
	}
	if (json_string_length(json_object_get(resp, "Err")) > 0) {
		fprintf(stderr, "ballast: %s\n", json_string_value(json_object_get(resp, "Err")));
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
	json_array_foreach(vols, i, v) {
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
	json_object_foreach(opts, key, val)
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

static void usage(FILE *out)
{
	fprintf(out, "usage: ballast [--socket PATH] COMMAND\n"
		     "  ls [--json]             list volumes\n"
		     "  inspect NAME [--json]   show one volume\n"
		     "  version                 versions of ballast and the running ballastd\n"
		     "The socket defaults to $BALLAST_SOCKET, else " DEFAULT_SOCKET ".\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = getenv("BALLAST_SOCKET");
	const char *cmd;
	int as_json = 0, opt, ret;

	if (!sock || !*sock)
		sock = DEFAULT_SOCKET;
	while ((opt = getopt_long(argc, argv, "+s:jh", longopts, NULL)) != -1) {
		if (opt == 's')
			sock = optarg;
		else if (opt == 'j')
			as_json = 1;
		else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	/* Options may also follow the command (ballast inspect v1 --json):
	 * parse again from the command on, with getopt restarted (optind 0)
	 * so that it permutes instead of stopping at the first operand. */
	argv += optind;
	argc -= optind;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "s:jh", longopts, NULL)) != -1) {
		if (opt == 's')
			sock = optarg;
		else if (opt == 'j')
			as_json = 1;
		else {
			usage(stderr);
			return 2;
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(cmd, "ls") == 0 && optind == argc)
		ret = cmd_ls(sock, as_json);
	else if (strcmp(cmd, "inspect") == 0 && optind + 1 == argc)
		ret = cmd_inspect(sock, argv[optind], as_json);
	else if (strcmp(cmd, "version") == 0 && optind == argc)
		ret = cmd_version(sock);
	else {
		fprintf(stderr, "ballast: unknown command or wrong arguments: %s\n", cmd);
		usage(stderr);
		ret = 2;
	}
	curl_global_cleanup();
	return ret;
}
