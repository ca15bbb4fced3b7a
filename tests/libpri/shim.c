/*
 * Flattens libpri's event union into one plain struct, so the Rust side does not have to
 * mirror libpri's large event structures field by field: the C compiler lays them out.
 */
#include <string.h>
#include <libpri.h>

struct sb_event {
	int e;
	int channel;
	int cause;
	int cref;
	int complete;
	int calling_pres;
	int calling_plan;
	int called_plan;
	int progress;
	q931_call *call;
	char calling[64];
	char called[64];
};

static void copy(char *dst, const char *src)
{
	strncpy(dst, src, 63);
	dst[63] = '\0';
}

void sb_flatten(const pri_event *ev, struct sb_event *out)
{
	memset(out, 0, sizeof(*out));
	out->e = ev->e;
	out->channel = -1;
	out->cause = -1;
	switch (ev->e) {
	case PRI_EVENT_RING:
		out->channel = ev->ring.channel;
		out->cref = ev->ring.cref;
		out->complete = ev->ring.complete;
		out->calling_pres = ev->ring.callingpres;
		out->calling_plan = ev->ring.callingplan;
		out->called_plan = ev->ring.calledplan;
		out->call = ev->ring.call;
		copy(out->calling, ev->ring.callingnum);
		copy(out->called, ev->ring.callednum);
		break;
	case PRI_EVENT_INFO_RECEIVED:
		out->channel = ev->ring.channel;
		out->complete = ev->ring.complete;
		out->call = ev->ring.call;
		copy(out->called, ev->ring.callednum);
		break;
	case PRI_EVENT_KEYPAD_DIGIT:
		out->channel = ev->digit.channel;
		out->call = ev->digit.call;
		copy(out->called, ev->digit.digits);
		break;
	case PRI_EVENT_HANGUP:
	case PRI_EVENT_HANGUP_REQ:
	case PRI_EVENT_HANGUP_ACK:
		out->channel = ev->hangup.channel;
		out->cause = ev->hangup.cause;
		out->cref = ev->hangup.cref;
		out->call = ev->hangup.call;
		break;
	case PRI_EVENT_RINGING:
		out->channel = ev->ringing.channel;
		out->progress = ev->ringing.progress;
		out->call = ev->ringing.call;
		break;
	case PRI_EVENT_ANSWER:
		out->channel = ev->answer.channel;
		out->call = ev->answer.call;
		break;
	case PRI_EVENT_PROCEEDING:
	case PRI_EVENT_PROGRESS:
		out->channel = ev->proceeding.channel;
		out->progress = ev->proceeding.progress;
		out->cause = ev->proceeding.cause;
		out->call = ev->proceeding.call;
		break;
	case PRI_EVENT_SETUP_ACK:
		out->channel = ev->setup_ack.channel;
		out->call = ev->setup_ack.call;
		break;
	case PRI_EVENT_RESTART:
		out->channel = ev->restart.channel;
		break;
	case PRI_EVENT_RESTART_ACK:
		out->channel = ev->restartack.channel;
		break;
	case PRI_EVENT_CONNECT_ACK:
		out->channel = ev->connect_ack.channel;
		out->call = ev->connect_ack.call;
		break;
	default:
		break;
	}
}
