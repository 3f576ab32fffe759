/* Unit tests: the bounded runner (lib/run.c) - its bound holds for the
 * whole process group and for a child that closes its output early. */
#include "unit.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "run.h"
#include "timeutil.h"

/* Is pid a live process (not gone, not a zombie)? */
static int alive(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void runs_and_reports(void **state)
{
	const char *argv[] = { "sh", "-c", "echo first; echo last line; exit 3", NULL };
	char line[128];
	int status = 0;

	(void)state;
	assert_int_equal(run_bounded(argv, 10, &status, line, sizeof(line)), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	assert_string_equal(line, "last line");
}

/* The child starts a sleeper and waits: at the bound both die. Before,
 * only the direct child was killed and the sleeper ran on (mkfs under a
 * timed-out mount.ballast). */
static void bound_kills_the_group(void **state)
{
	const char *argv[] = { "sh", "-c", "sleep 60 & echo $!; wait", NULL };
	const char *detached[] = { "sh", "-c", "setsid sleep 60 >/dev/null 2>&1 & echo $!", NULL };
	char line[128];
	int status = 0;
	long t0, dt;
	pid_t sleeper, control;

	(void)state;
	t0 = monotonic_ms();
	assert_int_equal(run_bounded(argv, 1, &status, line, sizeof(line)), -ETIMEDOUT);
	dt = monotonic_ms() - t0;
	assert_true(dt < 15000); /* the sleepers would take 60 s */
	sleeper = (pid_t)atoi(line);
	assert_true(sleeper > 1);
	for (int i = 0; i < 100 && alive(sleeper); i++)
		usleep(10000);
	assert_false(alive(sleeper));
	/* Control: the probe sees a sleeper that left the group (setsid)
	 * alive, so the check above could fail. */
	assert_int_equal(run_bounded(detached, 10, &status, line, sizeof(line)), 0);
	control = (pid_t)atoi(line);
	assert_true(control > 1);
	assert_true(alive(control));
	kill(control, SIGKILL);
}

/* A child that closes its output and keeps running is bounded too: the
 * reaping had no bound before. */
static void closed_output_is_bounded(void **state)
{
	const char *argv[] = { "sh", "-c", "exec >/dev/null 2>&1; sleep 60", NULL };
	char line[128];
	int status = 0;
	long t0;

	(void)state;
	t0 = monotonic_ms();
	assert_int_equal(run_bounded(argv, 1, &status, line, sizeof(line)), -ETIMEDOUT);
	assert_true(monotonic_ms() - t0 < 15000);
}

static void missing_program(void **state)
{
	const char *argv[] = { "/nonexistent/prog", NULL };
	char line[128];
	int status = 0, ret;

	(void)state;
	/* glibc's posix_spawn reports the failed exec as -ENOENT; under
	 * valgrind (no CLONE_VFORK) the child exits with 127 instead. */
	ret = run_bounded(argv, 5, &status, line, sizeof(line));
	if (ret == 0)
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 127);
	else
		assert_int_equal(ret, -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(runs_and_reports),
		cmocka_unit_test(bound_kills_the_group),
		cmocka_unit_test(closed_output_is_bounded),
		cmocka_unit_test(missing_program),
	};

	return cmocka_run_group_tests_name("run", tests, NULL, NULL);
}
