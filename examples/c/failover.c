/*
 * A phone's line as firmware runs it: the generated line machine
 * (fsm/c/line.h), a timer wheel, and a fake transport to a primary and a
 * backup server, playing the seed's REGISTER failover and failback:
 *
 *   - the line registers on the primary (a digest challenge, then 200 OK);
 *   - at 30 s the primary stops answering; the refresh at 60 s goes
 *     unanswered for its retry budget (Signal Retry Counts 3 at T1 500 ms:
 *     3.5 s), and the line registers on the backup;
 *   - every Failback Interval (30 s) the line probes the primary; the
 *     primary answers again from 100 s, and the probe after that takes the
 *     line back to it.
 *
 * Each step is printed: the time, the state before and after, the event,
 * the branch of the model taken and the effects, in order. Time is virtual
 * (the wheel jumps to the next timer), and the random part a phone takes off
 * a jittered timer is none here, so the output is the same on every run:
 * examples/c/failover.txt, which CI compares.
 *
 * Build: cc -std=c99 -I fsm/c examples/c/failover.c fsm/c/line.c
 */
#include <stdio.h>

#include "line.h"

#define MS INT64_C(1000000)
#define S (1000 * MS)

/* The timer wheel: one deadline per timer of the model. */
typedef struct {
	bool armed[LINE_TIMER_COUNT];
	int64_t due[LINE_TIMER_COUNT];
} wheel;

/* The fake transport: which servers answer, and the answers on their way
 * to the line, in order. */
typedef struct {
	int64_t now;
	bool up[2]; /* 0 the primary, 1 the backup */
	line_event queue[8];
	int queued;
} world;

static void answer(world *w, line_event ev)
{
	if (w->queued < (int)(sizeof w->queue / sizeof w->queue[0]))
		w->queue[w->queued++] = ev;
}

/* perform does what an action asks of the transport. A server that is up
 * challenges a REGISTER without credentials and accepts one with them; a
 * server that is down never answers, and the budget timer ends the wait. */
static void perform(world *w, const line_machine *m, line_action a)
{
	int64_t server = m->vars.server;
	switch (a) {
	case LINE_ACTION_SEND_REGISTER:
		if (w->up[server])
			answer(w, LINE_EVENT_RESP_CHALLENGE);
		break;
	case LINE_ACTION_SEND_REGISTER_AUTH:
		if (w->up[server])
			answer(w, LINE_EVENT_RESP_2XX);
		break;
	case LINE_ACTION_SEND_PROBE:
		if (w->up[0])
			answer(w, LINE_EVENT_PROBE_CHALLENGE);
		break;
	case LINE_ACTION_SEND_PROBE_AUTH:
		if (w->up[0])
			answer(w, LINE_EVENT_PROBE_2XX);
		break;
	default:
		break; /* locate (servers given by address), abandon_*: nothing to send */
	}
}

static void print_step(const world *w, const line_step *st)
{
	const char *event = st->event == LINE_EVENT_UNKNOWN ? "(start)" : line_event_name(st->event);
	const char *branch = st->branch == LINE_BRANCH_UNKNOWN ? "" : line_branch_name(st->branch);
	printf("%8.3f s  %-18s %-20s -> %-18s %s\n", (double)w->now / (double)S, line_state_name(st->from), event,
	       line_state_name(st->to), branch);
	for (size_t i = 0; i < st->n_effects; i++) {
		const line_effect *e = &st->effects[i];
		switch (e->kind) {
		case SF_EFFECT_ACTION:
			printf("%12s %s\n", "", line_action_name(e->action));
			break;
		case SF_EFFECT_ARM:
			printf("%12s arm %s %.3f s\n", "", line_timer_name(e->timer), (double)e->after / (double)S);
			break;
		case SF_EFFECT_CANCEL:
			printf("%12s cancel %s\n", "", line_timer_name(e->timer));
			break;
		default:
			break;
		}
	}
}

/* run performs a step's effects: actions through the transport, timers on
 * the wheel. */
static void run(world *w, wheel *tw, const line_machine *m, const line_step *st)
{
	print_step(w, st);
	for (size_t i = 0; i < st->n_effects; i++) {
		const line_effect *e = &st->effects[i];
		switch (e->kind) {
		case SF_EFFECT_ACTION:
			perform(w, m, e->action);
			break;
		case SF_EFFECT_ARM:
			tw->armed[e->timer] = true;
			tw->due[e->timer] = w->now + e->after;
			break;
		case SF_EFFECT_CANCEL:
			tw->armed[e->timer] = false;
			break;
		default:
			break;
		}
	}
}

int main(void)
{
	line_params p = {
		.server_count = 2,
		.registrar_count = 1, /* no outbound proxies: the servers are the registrars */
		.failback_enabled = true,
		.failback_interval = 30 * S,
		.failback_mode = 0, /* duration: every failback_interval */
		.failback_when_idle = true,
		.count_mode = true,
		.retry_counts = 3,
		.retry_time = 32 * S,
		.t1 = 500 * MS,
		.t2 = 4 * S,
		.refresh_interval = 60 * S,
		.keepalive_interval = 30 * S, /* off: keepalive_enabled and flow_enabled are false */
		.flow_interval = 30 * S,
		.backoff_base = 30 * S,
		.backoff_max = 1800 * S,
		.contact_shared = true,
	};
	sf_param_problem problems[8];
	size_t n = line_validate(&p, problems, 8);
	for (size_t i = 0; i < n && i < 8; i++)
		printf("param %s is %s its bound %lld\n", problems[i].param, problems[i].above ? "above" : "below",
		       (long long)problems[i].bound);
	if (n > 0)
		return 1;

	line_machine m;
	line_step st;
	wheel tw = {{false}, {0}};
	world w = {0, {true, true}, {LINE_EVENT_UNKNOWN}, 0};
	line_init(&m, &p, NULL);
	if (line_start(&m, &st) != SF_OK)
		return 1;
	run(&w, &tw, &m, &st);

	line_event next = LINE_EVENT_USER_REGISTER;
	for (;;) {
		sf_status s = line_fire(&m, next, &st);
		if (s != SF_OK) {
			printf("%8.3f s  %s refused %s: status %d\n", (double)w.now / (double)S, line_state_name(m.state),
			       line_event_name(next), (int)s);
			return 1;
		}
		if (!st.ignored)
			run(&w, &tw, &m, &st);

		/* The next event: an answer on its way, else the next timer. */
		if (w.queued > 0) {
			next = w.queue[0];
			for (int i = 1; i < w.queued; i++)
				w.queue[i - 1] = w.queue[i];
			w.queued--;
			continue;
		}
		line_timer soonest = LINE_TIMER_UNKNOWN;
		for (int t = 1; t < LINE_TIMER_COUNT; t++)
			if (tw.armed[t] && (soonest == LINE_TIMER_UNKNOWN || tw.due[t] < tw.due[soonest]))
				soonest = (line_timer)t;
		if (soonest == LINE_TIMER_UNKNOWN || tw.due[soonest] > 200 * S)
			break;
		/* The servers' script, as time passes. */
		if (w.now < 30 * S && tw.due[soonest] >= 30 * S) {
			w.up[0] = false;
			printf("  30.000 s  the primary stops answering\n");
		}
		if (w.now < 100 * S && tw.due[soonest] >= 100 * S) {
			w.up[0] = true;
			printf(" 100.000 s  the primary answers again\n");
		}
		w.now = tw.due[soonest];
		tw.armed[soonest] = false;
		next = line_timer_event(soonest);
	}
	printf("%8.3f s  %s on server %lld\n", (double)w.now / (double)S, line_state_name(m.state), (long long)m.vars.server);
	return m.state == LINE_STATE_PRIMARY_REGISTERED ? 0 : 1;
}
