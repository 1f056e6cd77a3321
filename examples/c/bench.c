/*
 * The time of one line_fire: 10^6 events drawn at random (xorshift64, a
 * fixed seed) fired at the generated line machine, a new machine whenever
 * one ends, timed in 1,000 batches of 1,000; prints the median batch's time
 * per event. internal/cfsm's BenchmarkGoFire fires the same stream at the
 * Go machine.
 *
 * Build: cc -std=c99 -O2 -I fsm/c examples/c/bench.c fsm/c/line.c
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "line.h"

#define MS INT64_C(1000000)
#define S (1000 * MS)
#define BATCHES 1000
#define BATCH 1000

static uint64_t state = 88172645463325252u;

static uint64_t xorshift(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * S + (int64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int main(void)
{
	static const line_params p = {
		.server_count = 2, .registrar_count = 1, .failback_enabled = true, .failback_interval = 30 * S, .count_mode = true,
		.retry_counts = 3, .retry_time = 32 * S, .t1 = 500 * MS, .t2 = 4 * S, .refresh_interval = 60 * S,
		.keepalive_interval = 30 * S, .flow_interval = 30 * S, .backoff_base = 30 * S, .backoff_max = 1800 * S,
		.contact_shared = true,
	};
	static int64_t took[BATCHES];
	line_machine m;
	line_step st;
	long handled = 0;
	line_init(&m, &p, NULL);
	line_start(&m, &st);
	for (int b = 0; b < BATCHES; b++) {
		int64_t start = now_ns();
		for (int i = 0; i < BATCH; i++) {
			line_event ev = (line_event)(1 + xorshift() % (LINE_EVENT_COUNT - 1));
			if (line_fire(&m, ev, &st) == SF_OK && !st.ignored)
				handled++;
			if (m.state == LINE_STATE_FAILED) {
				line_init(&m, &p, NULL);
				line_start(&m, &st);
			}
		}
		took[b] = now_ns() - start;
	}
	qsort(took, BATCHES, sizeof took[0], cmp);
	printf("line_fire: %.1f ns an event (median of %d batches of %d; %ld of %d events taken by a branch)\n",
	       (double)took[BATCHES / 2] / BATCH, BATCHES, BATCH, handled, BATCHES * BATCH);
	return 0;
}
