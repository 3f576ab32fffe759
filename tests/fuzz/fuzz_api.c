/*
 * fuzz_api.c - libFuzzer target over ballastd's whole request path after
 * HTTP: endpoint and body in, JSON answer out (api_handle), with the
 * catalog in a temp dir and the local backend (plain directories; the
 * helper is /bin/false, so sized volumes fail fast and cleanly).
 *
 * Input format: the first line picks the endpoint, the rest is the body.
 *   - a line equal to one of the paths in endpoints[] picks that path;
 *   - a line starting with '?' sends the rest of the line verbatim as the
 *     path (unknown endpoints with arbitrary bytes);
 *   - any other line picks endpoints[sum of its bytes % count], so that
 *     mutations of the first line still reach real endpoints.
 * A body larger than API_MAX_BODY is passed as http.c does: dropped, with
 * too_large set.
 *
 * After every input the answer must be HTTP 200 and a JSON object whose
 * Err is a string of one line, and every Mountpoint in it must be "" or an
 * absolute path inside the temp dir without "..". Anything else aborts.
 *
 * State carries over between inputs (so that sequences such as Create,
 * Mount, Unmount, Remove are explored) and is thrown away every
 * FUZZ_RESET_EVERY inputs (default 64): the api, the catalog and the
 * whole temp dir are rebuilt from nothing.
 *
 * Environment:
 *   FUZZ_HISTORY=FILE   append every input (4-byte little-endian length,
 *                       then the bytes) to FILE, truncated at each reset:
 *                       after a crash it holds the inputs since the last
 *                       reset, which reproduce it in order.
 *   FUZZ_SPLIT_HISTORY=FILE:DIR  split such a file into DIR/000001 ... and
 *                       exit; `fuzz_api DIR/0*` replays them in order in
 *                       one process (libFuzzer runs file arguments in
 *                       order, without resets in between).
 *   FUZZ_RESET_EVERY=N  inputs between resets.
 *   FUZZ_HELPER=PATH    the helper instead of /bin/false; /bin/true makes
 *                       sized Creates and Mounts "succeed" without mounting
 *                       anything, which reaches the sized-volume paths.
 *   FUZZ_VERBOSE=1      keep ballastd's log on stderr (normally it goes to
 *                       /dev/null at debug level, so that every log format
 *                       is still exercised).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "backend.h"
#include "catalog.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"

static const char *const endpoints[] = {
	"/Plugin.Activate",
	"/VolumeDriver.Capabilities",
	"/VolumeDriver.Create",
	"/VolumeDriver.Remove",
	"/VolumeDriver.Mount",
	"/VolumeDriver.Unmount",
	"/VolumeDriver.Path",
	"/VolumeDriver.Get",
	"/VolumeDriver.List",
	"/Ballast.List",
	"/Ballast.Inspect",
	"/Ballast.Version",
	/* unknown ones */
	"/",
	"",
	"/VolumeDriver.create",
	"/VolumeDriver.Create/",
	"/VolumeDriver.Create?x=1",
	"/../VolumeDriver.Get",
	"/Plugin.Deactivate",
	"/VolumeDriver.Capabilities\x01",
};
#define N_ENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

static struct {
	char *dir; /* the temp dir holding state_dir */
	char state[PATH_MAX];
	size_t state_len;
	struct ballast_config cfg;
	struct catalog *cat;
	struct api *api;
	unsigned long runs;
	unsigned long reset_every;
	int history_fd;
} F = { .history_fd = -1 };

static void die(const char *what, const char *detail, const char *resp)
{
	fprintf(stdout, "fuzz_api: INVARIANT BROKEN: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	if (resp)
		fprintf(stdout, "fuzz_api: answer: %.2000s\n", resp);
	fflush(stdout);
	abort();
}

static void env_stop(void)
{
	api_free(F.api);
	F.api = NULL;
	catalog_close(F.cat);
	F.cat = NULL;
	config_free(&F.cfg);
	if (F.dir) {
		rm_rf(F.dir);
		free(F.dir);
		F.dir = NULL;
	}
}

static void env_start(void)
{
	struct berr err = BERR_INIT;
	const char *base = getenv("TMPDIR");

	if (asprintf(&F.dir, "%s/ballast-fuzz-XXXXXX", base && *base ? base : "/tmp") < 0 || !mkdtemp(F.dir))
		die("cannot make a temp dir", strerror(errno), NULL);
	snprintf(F.state, sizeof(F.state), "%s/state", F.dir);
	F.state_len = strlen(F.state);
	memset(&F.cfg, 0, sizeof(F.cfg));
	if (backend_config_keys(&F.cfg) < 0 || config_set(&F.cfg, "ballast", "state_dir", F.state, NULL) < 0 ||
	    config_set(&F.cfg, "ballast", "helper", getenv("FUZZ_HELPER") ? getenv("FUZZ_HELPER") : "/bin/false",
		       NULL) < 0 ||
	    config_set(&F.cfg, "ballast", "helper_timeout", "5", NULL) < 0 ||
	    config_set(&F.cfg, "ballast", "host_id", "fuzzhost", NULL) < 0 || config_finish(&F.cfg) < 0)
		die("config", NULL, NULL);
	if (mkdir_p(F.state, 0700) < 0)
		die("cannot make the state dir", F.state, NULL);
	if (catalog_open(F.state, &F.cat, &err) < 0)
		die("catalog_open", err.msg, NULL);
	if (api_new(&F.cfg, F.cat, &F.api, &err) < 0)
		die("api_new", err.msg, NULL);
	api_recover(F.api);
	if (F.history_fd >= 0 && ftruncate(F.history_fd, 0) < 0)
		die("cannot truncate the history file", strerror(errno), NULL);
}

static void env_reset(void)
{
	env_stop();
	env_start();
}

static void env_atexit(void)
{
	env_stop();
	if (F.history_fd >= 0)
		close(F.history_fd);
}

/* FUZZ_SPLIT_HISTORY=FILE:DIR: write each recorded input to DIR/%06d. */
static int split_history(const char *spec)
{
	char *copy = strdup(spec), *colon = copy ? strrchr(copy, ':') : NULL;
	unsigned char hdr[4];
	FILE *in;
	int n = 0;

	if (!colon) {
		fprintf(stderr, "FUZZ_SPLIT_HISTORY must be FILE:DIR\n");
		return 2;
	}
	*colon = '\0';
	in = fopen(copy, "rb");
	if (!in || mkdir_p(colon + 1, 0755) < 0) {
		fprintf(stderr, "cannot open %s or make %s\n", copy, colon + 1);
		return 2;
	}
	while (fread(hdr, 1, 4, in) == 4) {
		size_t len = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (size_t)hdr[3] << 24;
		char *buf = malloc(len ? len : 1), path[PATH_MAX];
		FILE *out;

		if (!buf || fread(buf, 1, len, in) != len) {
			free(buf);
			break;
		}
		snprintf(path, sizeof(path), "%s/%06d", colon + 1, ++n);
		out = fopen(path, "wb");
		if (!out || fwrite(buf, 1, len, out) != len) {
			fprintf(stderr, "cannot write %s\n", path);
			return 2;
		}
		fclose(out);
		free(buf);
	}
	fclose(in);
	printf("%d inputs written to %s\n", n, colon + 1);
	free(copy);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *s;

	(void)argc;
	(void)argv;
	if ((s = getenv("FUZZ_SPLIT_HISTORY")))
		exit(split_history(s));
	F.reset_every = 64;
	if ((s = getenv("FUZZ_RESET_EVERY")) && atol(s) > 0)
		F.reset_every = (unsigned long)atol(s);
	if ((s = getenv("FUZZ_HISTORY")) && *s) {
		F.history_fd = open(s, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644);
		if (F.history_fd < 0)
			die("cannot open FUZZ_HISTORY", s, NULL);
	}
	/*
	 * Every log line is formatted (debug level) but goes nowhere: the
	 * daemon logs through the stdio stream `stderr`, while libFuzzer
	 * and the sanitizers report on their own copy of it or on fd 2.
	 */
	log_threshold = LOG_LVL_DEBUG;
	if (!getenv("FUZZ_VERBOSE")) {
		FILE *null = fopen("/dev/null", "w");

		if (null)
			stderr = null;
	}
	env_start();
	atexit(env_atexit);
	return 0;
}

static void record(const uint8_t *data, size_t size)
{
	unsigned char hdr[4] = { (unsigned char)size, (unsigned char)(size >> 8), (unsigned char)(size >> 16),
				 (unsigned char)(size >> 24) };
	if (F.history_fd < 0)
		return;
	/* Two writes on an O_APPEND fd; a torn record only loses the last
	 * input, which libFuzzer saves itself. */
	if (write(F.history_fd, hdr, 4) != 4 || write(F.history_fd, data, size) != (ssize_t)size)
		die("cannot write the history file", strerror(errno), NULL);
}

/* A Mountpoint must be "" or an absolute path inside our state dir with
 * no ".." component. */
static void check_mountpoint(json_t *mp, const char *resp)
{
	const char *s;

	if (!mp)
		return;
	if (!json_is_string(mp))
		die("Mountpoint is not a string", NULL, resp);
	s = json_string_value(mp);
	if (!*s)
		return;
	if (strncmp(s, F.state, F.state_len) != 0 || s[F.state_len] != '/')
		die("Mountpoint outside the state dir", s, resp);
	if (strstr(s, "/../") || strstr(s, "/./") || strstr(s, "//") ||
	    (strlen(s) >= 3 && strcmp(s + strlen(s) - 3, "/..") == 0))
		die("Mountpoint is not a clean path", s, resp);
	if (strlen(s) != json_string_length(mp))
		die("Mountpoint holds a NUL byte", s, resp);
}

static void check_answer(int status, const char *resp)
{
	json_error_t jerr;
	json_t *j, *err, *v;
	const char *e;
	size_t i;

	if (status != 200)
		die("HTTP status is not 200", NULL, resp);
	if (!resp)
		die("no answer", NULL, NULL);
	j = json_loads(resp, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		die("answer is not valid JSON", jerr.text, resp);
	if (!json_is_object(j))
		die("answer is not a JSON object", NULL, resp);
	err = json_object_get(j, "Err");
	if (!json_is_string(err))
		die("Err is missing or not a string", NULL, resp);
	e = json_string_value(err);
	if (strchr(e, '\n') || strchr(e, '\r'))
		die("Err is not one line", e, resp);
	if (strlen(e) != json_string_length(err))
		die("Err holds a NUL byte", NULL, resp);
	if (*e && json_object_size(j) != 1)
		die("an error answer carries other members", e, resp);
	check_mountpoint(json_object_get(j, "Mountpoint"), resp);
	check_mountpoint(json_object_get(json_object_get(j, "Volume"), "Mountpoint"), resp);
	json_array_foreach (json_object_get(j, "Volumes"), i, v)
		check_mountpoint(json_object_get(v, "Mountpoint"), resp);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t line_len = nl ? (size_t)(nl - data) : size;
	const uint8_t *body = nl ? nl + 1 : data + size;
	size_t body_len = size - (size_t)(body - data);
	char path[256];
	char *copy = NULL, *resp = NULL;
	int too_large = 0, status;
	const char *pick = NULL;

	if (F.runs && F.runs % F.reset_every == 0)
		env_reset();
	F.runs++;
	record(data, size);

	for (size_t i = 0; i < N_ENDPOINTS; i++)
		if (strlen(endpoints[i]) == line_len && memcmp(endpoints[i], data, line_len) == 0)
			pick = endpoints[i];
	if (!pick && line_len > 0 && data[0] == '?') {
		/* verbatim; a NUL byte ends it, as in a C string from MHD */
		size_t n = line_len - 1 < sizeof(path) - 1 ? line_len - 1 : sizeof(path) - 1;

		memcpy(path, data + 1, n);
		path[n] = '\0';
		pick = path;
	}
	if (!pick) {
		unsigned sum = 0;

		for (size_t i = 0; i < line_len; i++)
			sum += data[i];
		pick = endpoints[sum % N_ENDPOINTS];
	}

	/* Exactly the body's bytes, no terminator: ASan flags any read past
	 * len. (http.c does NUL-terminate, but api_handle takes a length.) */
	if (body_len > API_MAX_BODY) {
		too_large = 1;
		body_len = 0;
	} else if (body_len) {
		copy = malloc(body_len);
		if (!copy)
			return 0;
		memcpy(copy, body, body_len);
	}
	status = api_handle(F.api, pick, copy, body_len, too_large, &resp);
	check_answer(status, resp);
	free(resp);
	free(copy);
	return 0;
}
