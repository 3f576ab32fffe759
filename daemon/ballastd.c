/*
 * ballastd.c - the daemon: configuration, the catalog, the backends and the
 * HTTP server, then wait for SIGTERM.
 */
#define LOG_TAG "ballastd"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "api.h"
#include "backend.h"
#include "catalog.h"
#include "config.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "systemd.h"
#include "timeutil.h"
#include "version.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: ballastd [--config FILE] [--socket PATH] [--state-dir DIR]\n"
		     "                [--log-level error|warn|info|debug] [--host-id ID]\n"
		     "       ballastd [--config FILE] --check-config\n"
		     "       ballastd --version | --list-config-keys | --list-options\n"
		     "Serves Docker's volume-plugin protocol in the foreground; logs to stderr.\n"
		     "Default config: " CONFIG_DEFAULT_PATH " (a missing file means all defaults).\n");
}

static void print_key(const struct config_key *k, void *arg)
{
	(void)arg;
	printf("%s.%s\n", k->section, k->key);
}

/* Options that print something and exit: --version, --help,
 * --list-config-keys, --list-options. */
static void print_and_exit(int opt, const struct ballast_config *cfg) __attribute__((noreturn));
static void print_and_exit(int opt, const struct ballast_config *cfg)
{
	switch (opt) {
	case 'V':
		printf("ballastd %s\n", BALLAST_VERSION);
		break;
	case 'h':
		usage(stdout);
		break;
	case 'K':
		config_each_key(cfg, print_key, NULL);
		break;
	case 'O':
		for (const struct backend_ops *const *b = backend_all(); *b; b++)
			for (const char *const *o = (*b)->options; *o; o++)
				printf("%s %s\n", (*b)->name, *o);
		break;
	}
	exit(0);
}

/* What the command line asks for, before the config file is read. */
struct cmdline {
	const char *path; /* the config file */
	int required;	  /* a missing config file is an error */
	int check;	  /* --check-config */
	int list;	  /* 'K' or 'O': list every backend's keys or options */
	/* [ballast] key and value of each flag that overrides the file */
	const char *flags[4][2];
};

/* Read the flags into cl; exits for the options that only print, and on
 * an unknown flag (status 2, with the usage). */
static void read_flags(int argc, char **argv, const struct ballast_config *cfg, struct cmdline *cl)
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
	int opt;

	while ((opt = getopt_long(argc, argv, "c:s:d:l:H:Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cl->path = optarg;
			cl->required = 1;
			break;
		case 's':
			cl->flags[0][0] = "socket";
			cl->flags[0][1] = optarg;
			break;
		case 'd':
			cl->flags[1][0] = "state_dir";
			cl->flags[1][1] = optarg;
			break;
		case 'l':
			cl->flags[2][0] = "log_level";
			cl->flags[2][1] = optarg;
			break;
		case 'H':
			cl->flags[3][0] = "host_id";
			cl->flags[3][1] = optarg;
			break;
		case 'C':
			cl->check = 1;
			break;
		case 'K':
		case 'O':
			cl->list = opt;
			break;
		case 'V':
		case 'h':
			print_and_exit(opt, cfg);
		default:
			usage(stderr);
			exit(2);
		}
	}
}

static int file_sets(const char *section, void *path)
{
	return config_file_sets(path, section);
}

/*
 * Load the shared backends (modules) the config file uses, every one there
 * is for the lists, then make the backends' config keys known, before the
 * file is read.
 */
static int load_backends(const struct cmdline *cl, struct ballast_config *cfg, struct berr *err)
{
	int ret;

	if (cl->list) {
		/* a module not built or not loadable is not listed */
		ret = backend_load_all(err);
		if (ret < 0)
			fprintf(stderr, "ballastd: %s\n", err->msg);
		berr_clear(err);
	} else {
		ret = backend_load_configured(file_sets, (void *)cl->path, err);
		if (ret < 0)
			return ret;
	}
	ret = backend_config_keys(cfg);
	if (ret < 0)
		return berr_set(err, ret, "internal error: two backends claim one config key");
	if (cl->list)
		print_and_exit(cl->list, cfg);
	return 0;
}

/* Apply command-line flags; they override the config file. */
static int parse_args(int argc, char **argv, struct ballast_config *cfg, struct berr *err)
{
	/* $BALLAST_CONFIG (the managed plugin's settable env) names the file
	 * like --config does; the flag wins. */
	struct cmdline cl = { .path = getenv("BALLAST_CONFIG") };
	int ret;

	cl.required = cl.path && *cl.path;
	read_flags(argc, argv, cfg, &cl);
	if (optind < argc)
		return berr_set(err, -EINVAL, "unexpected argument \"%s\"", argv[optind]);
	if (!cl.path || !*cl.path)
		cl.path = CONFIG_DEFAULT_PATH;
	ret = load_backends(&cl, cfg, err);
	if (ret == 0)
		ret = config_load(cfg, cl.path, cl.required, err);
	for (int i = 0; ret == 0 && i < 4; i++)
		if (cl.flags[i][0])
			ret = config_set(cfg, "ballast", cl.flags[i][0], cl.flags[i][1], err);
	if (ret == 0)
		ret = config_finish(cfg);
	if (ret == 0 && cl.check) {
		printf("%s: OK\n", cfg->path ? cfg->path : "defaults (no config file)");
		exit(0);
	}
	return ret;
}

/* The state dir as the mount table names it: resolved once (symlinks,
 * "..") so that mount targets under it compare equal to /proc's paths.
 * Reached through a symlink, start-up took live mounts for gone, dropped
 * their counts and unmounted them under running containers. */
static int resolve_state_dir(struct ballast_config *cfg, struct berr *err)
{
	const char *dir = config_get(cfg, "ballast", "state_dir");
	char *real = realpath(dir, NULL);
	int ret = 0;

	if (!real)
		return berr_set(err, -errno, "cannot resolve state dir %s: %s", dir, strerror(errno));
	if (strcmp(real, dir) != 0) {
		log_infox("state dir %s is %s", dir, real); /* dir is freed by config_set */
		ret = config_set(cfg, "ballast", "state_dir", real, err);
	}
	free(real);
	return ret;
}

/* One daemon per state dir: a second one would corrupt mount counts. */
static int lock_state_dir(const char *dir, int *fd, struct berr *err)
{
	char path[4096];
	int ret = mkdir_p(dir, 0700);

	if (ret < 0)
		return berr_set(err, ret, "cannot create state dir %s: %s", dir, strerror(-ret));
	snprintf(path, sizeof(path), "%s/lock", dir);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return berr_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0)
		return berr_set(err, -EBUSY, "another ballastd is using state dir %s", dir);
	return 0;
}

/* Load the catalog and bring it in line with this host, then serve the
 * requests that wait for it (or answer them with the failure). */
static int load_catalog(struct api *api, struct catalog *cat, struct berr *err)
{
	long t0 = monotonic_ms();
	int ret;

	ret = catalog_load(cat, err);
	if (ret < 0) {
		api_serve_catalog(api, 0);
		return ret;
	}
	api_recover(api);
	api_serve_catalog(api, 1);
	log_infox("catalog loaded and recovered in %ld ms", monotonic_ms() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	struct ballast_config cfg = CONFIG_INIT;
	struct http_server *srv = NULL;
	struct metrics_server *msrv = NULL;
	struct catalog *cat = NULL;
	struct berr err = BERR_INIT;
	struct api *api = NULL;
	enum log_level lvl;
	sigset_t sigs;
	int lockfd = -1, sig = 0, ret;

	/* Blocked before any thread starts, so only sigwait sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = parse_args(argc, argv, &cfg, &err);
	if (ret == 0 && log_level_parse(config_get(&cfg, "ballast", "log_level"), &lvl) < 0)
		ret = berr_set(&err, -EINVAL, "invalid log_level \"%s\": use error, warn, info or debug",
			       config_get(&cfg, "ballast", "log_level"));
	if (ret < 0)
		goto out;
	log_threshold = lvl;
	ret = lock_state_dir(config_get(&cfg, "ballast", "state_dir"), &lockfd, &err);
	if (ret == 0)
		ret = resolve_state_dir(&cfg, &err);
	if (ret == 0)
		ret = catalog_open_unloaded(config_get(&cfg, "ballast", "state_dir"), &cat, &err);
	if (ret == 0)
		ret = api_new(&cfg, cat, &api, &err);
	/* Activate is answered while the catalog loads: dockerd backs off
	 * for a second or more from a socket that refuses it. The rest wait. */
	if (ret == 0)
		ret = http_start(api, config_get(&cfg, "ballast", "socket"), &srv, &err);
	if (ret == 0)
		ret = load_catalog(api, cat, &err);
	if (ret == 0)
		ret = metrics_start(&cfg, cat, api, &msrv, &err);
	if (ret == 0)
		ret = api_start_refresh(api, &err);
	if (ret < 0)
		goto out;
	log_infox("ballastd %s ready (host %s, state dir %s)", BALLAST_VERSION, config_get(&cfg, "ballast", "host_id"),
		  config_get(&cfg, "ballast", "state_dir"));
	{
		int nret = systemd_notify("READY=1");

		if (nret < 0)
			log_warnx("cannot tell systemd that ballastd is ready (NOTIFY_SOCKET): %s", strerror(-nret));
	}
	while (sigwait(&sigs, &sig) == EINTR)
		;
	log_infox("signal %d: stopping", sig);
	systemd_notify("STOPPING=1");
out:
	metrics_stop(msrv);
	http_stop(srv);
	api_free(api);
	catalog_close(cat);
	if (lockfd >= 0)
		close(lockfd);
	config_free(&cfg);
	if (ret < 0) {
		fprintf(stderr, "ballastd: %s\n", err.msg[0] ? err.msg : strerror(-ret));
		return 1;
	}
	return 0;
}
