/*
 * Unit tests: the gluster job engine's caps and back-off
 * (backends/gluster_engine.c, gl_admit_decide and gl_backoff_ms), which
 * need no cluster. A wrong answer lets a hung brick grow ballastd's threads
 * and Gluster connections without limit (a cap never reached), refuses
 * calls on a healthy cluster (a cap reached too early), or starts a second
 * call on a volume while an earlier one that its request gave up on may
 * still change it.
 */
#include "unit.h"

#ifdef HAVE_GLUSTER

#include "gluster_int.h"

/* A healthy engine: a connection current, nobody stuck, a 10 s wait. */
static struct gl_load healthy(void)
{
	struct gl_load l = { .workers = 1, .handles = 1, .wait_ms = 10000 };

	return l;
}

static void healthy_runs(void **state)
{
	struct gl_load l = healthy();

	(void)state;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_RUN);
	l.workers = 0;
	l.handles = 0;
	l.need_handle = 1; /* the first call opens the first connection */
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_RUN);
}

static void stuck_cap(void **state)
{
	struct gl_load l = healthy();

	(void)state;
	l.stuck = GL_STUCK_MAX - 1;
	l.workers = GL_STUCK_MAX;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_RUN);
	l.stuck = GL_STUCK_MAX;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_STUCK_MAX);
	l.stuck = GL_WORKERS_MAX; /* (more than the cap: requests that gave up together) */
	l.workers = GL_WORKERS_MAX;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_STUCK_MAX);
	/* refused at once, even for a background job, never queued */
	l.wait_ms = 0;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_STUCK_MAX);
}

static void stuck_on_the_same_volume(void **state)
{
	struct gl_load l = healthy();

	(void)state;
	l.stuck = 1;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_RUN);
	l.stuck_name = 1;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_STUCK_NAME);
}

static void workers_full_waits(void **state)
{
	struct gl_load l = healthy();

	(void)state;
	l.workers = GL_WORKERS_MAX - 1;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_RUN);
	l.workers = GL_WORKERS_MAX;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_WAIT);
	/* busy, not stuck: a queue, not a refusal */
	l.stuck = GL_STUCK_MAX - 1;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_WAIT);
	/* the cap of stuck calls is below the workers': a new call always
	 * has a worker left once the stuck ones are refused */
	assert_true(GL_STUCK_MAX < GL_WORKERS_MAX);
}

static void handles_cap(void **state)
{
	struct gl_load l = healthy();

	(void)state;
	l.need_handle = 1;
	l.handles = GL_HANDLES_MAX - 1;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_RUN);
	l.handles = GL_HANDLES_MAX;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_HANDLES_MAX);
	/* a current connection needs no new one: the cap does not apply */
	l.need_handle = 0;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_RUN);
}

static void backoff_refuses_only_when_it_outlasts_half_the_wait(void **state)
{
	struct gl_load l = healthy();

	(void)state;
	l.need_handle = 1;
	l.handles = 1;
	l.backoff_ms = 5000; /* exactly half of 10 s: wait it out */
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_RUN);
	l.backoff_ms = 5001;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_BACKOFF);
	/* background: nobody waits, so a back-off refuses it */
	l.backoff_ms = 1;
	l.wait_ms = 0;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_BACKOFF);
	/* with a current connection the back-off does not matter */
	l.need_handle = 0;
	l.backoff_ms = 30000;
	l.wait_ms = 10000;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_RUN);
}

static void refusals_before_waiting(void **state)
{
	struct gl_load l = healthy();

	(void)state;
	l.workers = GL_WORKERS_MAX;
	l.stuck = GL_STUCK_MAX;
	l.stuck_name = 1;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_STUCK_NAME);
	l.stuck_name = 0;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_STUCK_MAX);
	l.stuck = 0;
	l.need_handle = 1;
	l.handles = GL_HANDLES_MAX;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_HANDLES_MAX);
	l.handles = 1;
	l.backoff_ms = 8000;
	assert_int_equal(gl_admit_decide(&l), GL_ADMIT_BACKOFF);
}

static void backoff_doubles_up_to_its_cap(void **state)
{
	(void)state;
	assert_int_equal(gl_backoff_ms(-1), 0);
	assert_int_equal(gl_backoff_ms(0), 0);
	assert_int_equal(gl_backoff_ms(1), GL_BACKOFF_FIRST_MS);
	assert_int_equal(gl_backoff_ms(2), 2 * GL_BACKOFF_FIRST_MS);
	assert_int_equal(gl_backoff_ms(3), 4 * GL_BACKOFF_FIRST_MS);
	for (int i = 1; i < 1000; i++) {
		assert_true(gl_backoff_ms(i) <= GL_BACKOFF_MAX_MS);
		assert_true(gl_backoff_ms(i + 1) >= gl_backoff_ms(i));
	}
	assert_int_equal(gl_backoff_ms(1000), GL_BACKOFF_MAX_MS);
	assert_int_equal(gl_backoff_ms(2147483647), GL_BACKOFF_MAX_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(healthy_runs),
		cmocka_unit_test(stuck_cap),
		cmocka_unit_test(stuck_on_the_same_volume),
		cmocka_unit_test(workers_full_waits),
		cmocka_unit_test(handles_cap),
		cmocka_unit_test(backoff_refuses_only_when_it_outlasts_half_the_wait),
		cmocka_unit_test(refusals_before_waiting),
		cmocka_unit_test(backoff_doubles_up_to_its_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !HAVE_GLUSTER */

static void gluster_not_built(void **state)
{
	(void)state;
	skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gluster_not_built),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
