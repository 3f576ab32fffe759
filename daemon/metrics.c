/* metrics.c - Prometheus metrics (see metrics.h). */
#define LOG_TAG "metrics"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "backend.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "version.h"

static const char *const endpoints[] = {
	"Plugin.Activate",
	"VolumeDriver.Capabilities",
	"VolumeDriver.Create",
	"VolumeDriver.Remove",
	"VolumeDriver.Mount",
	"VolumeDriver.Unmount",
	"VolumeDriver.Path",
	"VolumeDriver.Get",
	"VolumeDriver.List",
	"Ballast.List",
	"Ballast.Inspect",
	"Ballast.Version",
	"Ballast.Check",
	"Ballast.Resize",
	"other",
};
#define N_ENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

/* Upper bounds in microseconds: 1 ms to dockerd's 2-minute limit. */
static const long buckets_us[] = { 1000,   2500,    5000,    10000,   25000,	50000,	  100000,   250000,
				   500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 120000000 };
#define N_BUCKETS (sizeof(buckets_us) / sizeof(buckets_us[0]))
#define MAX_BACKENDS 8

struct endpoint_stats {
	atomic_ulong ok, failed;
	atomic_ulong bucket[N_BUCKETS]; /* non-cumulative; summed on render */
	atomic_ulong count;
	atomic_ulong sum_us;
};

struct backend_stats {
	atomic_ulong errors, timeouts;
};

static struct endpoint_stats ep_stats[N_ENDPOINTS];
static struct backend_stats be_stats[MAX_BACKENDS];

static size_t endpoint_index(const char *name)
{
	for (size_t i = 0; i < N_ENDPOINTS - 1; i++)
		if (strcmp(endpoints[i], name) == 0)
			return i;
	return N_ENDPOINTS - 1;
}

/* Index of a compiled-in backend, or -1. */
static int backend_index(const char *name)
{
	const struct backend_ops *const *all = backend_all();

	for (int i = 0; all[i] && i < MAX_BACKENDS; i++)
		if (strcmp(all[i]->name, name) == 0)
			return i;
	return -1;
}

void metrics_request(const char *endpoint, int failed, long elapsed_us)
{
	struct endpoint_stats *s = &ep_stats[endpoint_index(endpoint)];
	size_t b = 0;

	atomic_fetch_add(failed ? &s->failed : &s->ok, 1);
	while (b < N_BUCKETS && elapsed_us > buckets_us[b])
		b++;
	if (b < N_BUCKETS)
		atomic_fetch_add(&s->bucket[b], 1);
	atomic_fetch_add(&s->count, 1);
	atomic_fetch_add(&s->sum_us, (unsigned long)(elapsed_us > 0 ? elapsed_us : 0));
}

void metrics_backend_error(const char *backend, int ret)
{
	int i = backend_index(backend);

	if (i < 0 || ret >= 0)
		return;
	atomic_fetch_add(&be_stats[i].errors, 1);
	if (ret == -ETIMEDOUT)
		atomic_fetch_add(&be_stats[i].timeouts, 1);
}

static void render_backend_counter(FILE *f, const char *name, const char *help, size_t field)
{
	const struct backend_ops *const *all = backend_all();

	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (int i = 0; all[i] && i < MAX_BACKENDS; i++) {
		atomic_ulong *v = (atomic_ulong *)((char *)&be_stats[i] + field);

		fprintf(f, "%s{backend=\"%s\"} %lu\n", name, all[i]->name, atomic_load(v));
	}
}

/* What each backend counts itself (backend_ops.counters). */
static void render_counters(FILE *f, const struct api *api, const struct backend_ops *const *all)
{
	struct be_counters c[MAX_BACKENDS] = { 0 };

	for (int i = 0; api && all[i] && i < MAX_BACKENDS; i++)
		api_backend_counters(api, all[i]->name, &c[i]);
	fprintf(f, "# HELP ballast_lease_renewals_total Renewals of holders' leases.\n"
		   "# TYPE ballast_lease_renewals_total counter\n");
	for (int i = 0; all[i] && i < MAX_BACKENDS; i++)
		fprintf(f, "ballast_lease_renewals_total{backend=\"%s\"} %lu\n", all[i]->name, c[i].lease_renewals);
	fprintf(f, "# HELP ballast_backend_stuck_calls Calls whose request gave up, still waiting on the cluster.\n"
		   "# TYPE ballast_backend_stuck_calls gauge\n");
	for (int i = 0; all[i] && i < MAX_BACKENDS; i++)
		fprintf(f, "ballast_backend_stuck_calls{backend=\"%s\"} %lu\n", all[i]->name, c[i].stuck_calls);
}

char *metrics_render(struct catalog *cat, const struct api *api)
{
	const struct backend_ops *const *all = backend_all();
	long per_backend[MAX_BACKENDS] = { 0 }, snaps[MAX_BACKENDS] = { 0 };
	long mounts = 0;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	fprintf(f,
		"# HELP ballast_build_info The running ballastd.\n# TYPE ballast_build_info gauge\n"
		"ballast_build_info{version=\"%s\"} 1\n",
		BALLAST_VERSION);
	fprintf(f, "# HELP ballast_requests_total Requests answered, by endpoint and outcome.\n"
		   "# TYPE ballast_requests_total counter\n");
	for (size_t e = 0; e < N_ENDPOINTS; e++) {
		fprintf(f, "ballast_requests_total{endpoint=\"%s\",outcome=\"ok\"} %lu\n", endpoints[e],
			atomic_load(&ep_stats[e].ok));
		fprintf(f, "ballast_requests_total{endpoint=\"%s\",outcome=\"error\"} %lu\n", endpoints[e],
			atomic_load(&ep_stats[e].failed));
	}
	fprintf(f, "# HELP ballast_request_duration_seconds Time to answer a request, by endpoint.\n"
		   "# TYPE ballast_request_duration_seconds histogram\n");
	for (size_t e = 0; e < N_ENDPOINTS; e++) {
		unsigned long cum = 0;

		for (size_t b = 0; b < N_BUCKETS; b++) {
			cum += atomic_load(&ep_stats[e].bucket[b]);
			fprintf(f, "ballast_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %lu\n",
				endpoints[e], (double)buckets_us[b] / 1e6, cum);
		}
		fprintf(f, "ballast_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %lu\n", endpoints[e],
			atomic_load(&ep_stats[e].count));
		fprintf(f, "ballast_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n", endpoints[e],
			(double)atomic_load(&ep_stats[e].sum_us) / 1e6);
		fprintf(f, "ballast_request_duration_seconds_count{endpoint=\"%s\"} %lu\n", endpoints[e],
			atomic_load(&ep_stats[e].count));
	}
	if (cat) {
		json_t *list = catalog_list(cat), *v;
		size_t i;

		json_array_foreach (list, i, v) {
			int b = backend_index(json_string_value(json_object_get(v, "backend")) ?: "");

			if (b >= 0) {
				per_backend[b]++;
				snaps[b] += (long)json_array_size(json_object_get(v, "snapshots"));
			}
			mounts += (long)json_integer_value(json_object_get(v, "mount_count"));
		}
		json_decref(list);
	}
	fprintf(f, "# HELP ballast_volumes Volumes in the catalog, by backend.\n# TYPE ballast_volumes gauge\n");
	for (int i = 0; all[i] && i < MAX_BACKENDS; i++)
		fprintf(f, "ballast_volumes{backend=\"%s\"} %ld\n", all[i]->name, per_backend[i]);
	fprintf(f, "# HELP ballast_snapshots Snapshots of the catalog's volumes (as last recorded), by "
		   "backend.\n# TYPE ballast_snapshots gauge\n");
	for (int i = 0; all[i] && i < MAX_BACKENDS; i++)
		fprintf(f, "ballast_snapshots{backend=\"%s\"} %ld\n", all[i]->name, snaps[i]);
	fprintf(f,
		"# HELP ballast_active_mounts Mounts by containers on this host, all volumes.\n"
		"# TYPE ballast_active_mounts gauge\nballast_active_mounts %ld\n",
		mounts);
	render_backend_counter(f, "ballast_backend_errors_total", "Failed backend calls.",
			       offsetof(struct backend_stats, errors));
	render_backend_counter(f, "ballast_backend_timeouts_total", "Backend calls that timed out.",
			       offsetof(struct backend_stats, timeouts));
	render_counters(f, api, all);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

struct metrics_server {
	struct MHD_Daemon *mhd;
	struct catalog *cat;
	const struct api *api;
	char path[108]; /* unix socket we made, removed at stop */
};

static enum MHD_Result on_scrape(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct metrics_server *srv = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	unsigned status = MHD_HTTP_OK;
	char *body;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 || strcmp(url, "/metrics") != 0) {
		body = strdup("only GET /metrics is served\n");
		status = MHD_HTTP_NOT_FOUND;
	} else {
		body = metrics_render(srv->cat, srv->api);
	}
	if (!body)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Parse "127.0.0.1:9400" or "[::1]:9400". */
static int parse_addr(const char *spec, struct sockaddr_storage *ss, struct berr *err)
{
	char host[64];
	const char *colon;
	unsigned long port;
	char *end;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(close - spec - 1), spec + 1);
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	}
	port = strtoul(colon + 1, &end, 10);
	if (*end || port == 0 || port > 65535)
		goto bad;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		return 0;
	}
bad:
	return berr_set(err, -EINVAL, "[ballast] metrics = %s: use unix:/path.sock, ADDRESS:PORT or [IPv6]:PORT", spec);
}

int metrics_start(const struct ballast_config *cfg, struct catalog *cat, const struct api *api,
		  struct metrics_server **out, struct berr *err)
{
	const char *spec = config_get(cfg, "ballast", "metrics");
	struct metrics_server *srv;
	struct sockaddr_storage ss;
	int fd = -1, ret;

	*out = NULL;
	if (!spec)
		return 0;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return berr_set(err, -ENOMEM, "out of memory");
	srv->cat = cat;
	srv->api = api;
	if (strncmp(spec, "unix:", 5) == 0) {
		ret = unix_listen(spec + 5, &fd, err);
		if (ret < 0)
			goto out_free;
		snprintf(srv->path, sizeof(srv->path), "%s", spec + 5);
		srv->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
					    on_scrape, srv, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_END);
	} else {
		ret = parse_addr(spec, &ss, err);
		if (ret < 0)
			goto out_free;
		srv->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
						    (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
					    0, NULL, NULL, on_scrape, srv, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_END);
	}
	if (!srv->mhd) {
		ret = berr_set(err, -EADDRNOTAVAIL, "cannot serve metrics on %s", spec);
		if (fd >= 0)
			close(fd);
		goto out_free;
	}
	log_infox("serving metrics on %s", spec);
	*out = srv;
	return 0;
out_free:
	if (srv->path[0])
		unlink(srv->path);
	free(srv);
	return ret;
}

void metrics_stop(struct metrics_server *srv)
{
	if (!srv)
		return;
	MHD_stop_daemon(srv->mhd);
	if (srv->path[0])
		unlink(srv->path);
	free(srv);
}
