/*
 * jump.pml: the vCPU jump protocol of slos (vmm/jump.c), one vCPU over N
 * hosts. Each host has the vCPU's thread (it runs the vCPU, or waits parked
 * for its state) and a receiver (the fabric thread that handles frames);
 * they share the host's `here`, arrival slot and answer under the
 * cluster's lock (each atomic block below is one critical section).
 * Hosts talk over per-pair FIFO channels (one TCP connection per pair).
 *
 * A jump: the source's vCPU thread sends the state (JUMP) and waits; the
 * destination's receiver refuses it if the vCPU is here or a state is
 * already waiting, else leaves it in the slot; the destination's parked
 * thread loads it (which may fail: KVM refuses the state) and answers;
 * taken, it runs there, refused, the source runs on. The source takes
 * the vCPU off `here` before it sends the state (and back on if refused):
 * a jump back to it, or round three hosts, may arrive before the answer
 * (the answer and the jump back travel on different connections), and
 * must find the vCPU gone from there, not be refused.
 *
 * Checked in every state: the vCPU runs on at most one host. At the end
 * (every process blocked): no message in flight, and the vCPU runs on
 * exactly one host, so no state was lost, and no jump was ever refused
 * for a vCPU still taken to be there.
 *
 * @check jumps   | -DN=3 -DJ=4       | -DSAFETY -DNOCLAIM | -m100000
 * @check jumps-2 | -DN=2 -DJ=6       | -DSAFETY -DNOCLAIM | -m100000
 */

#ifndef N
#define N 3
#endif
#if N > 3
#error "the receiver has options for 3 hosts"
#endif
#ifndef J
#define J 4 /* jumps the guest and the operators ask for, in all */
#endif

mtype = { JUMP, ANSWER };

chan ch[N * N] = [2] of { mtype, bit };

bool here[N];	  /* the vCPU belongs to this host (running or leaving) */
bool running[N];  /* its thread runs it in KVM */
bool pend[N];	  /* a state arrived, not loaded yet */
byte pfrom[N];	  /* from whom */
byte jto[N];	  /* source: where the jump under way goes (N: none) */
byte answer[N];	  /* source: 0 none yet, 1 taken, 2 refused */
byte asked = 0;	  /* jumps asked for */
byte refusals = 0; /* jumps refused because the vCPU was still "here" */

inline pick(x)
{
	x = 0;
	do
	:: x < N - 1 -> x++
	:: break
	od
}

inline count_running(c)
{
	c = 0;
	byte k = 0;
	do
	:: k < N -> if :: running[k] -> c++ :: else fi; k++
	:: else -> break
	od
}

/* The vCPU runs on at most one host: checked wherever one starts it. */
inline one_runner()
{
	count_running(rc);
	assert(rc <= 1)
}

proctype vcpu(byte me)
{
	byte to, f, rc;
	bool ok;

	if
	:: me == 0 -> running[me] = true; goto end_run
	:: else -> goto end_park
	fi;
end_run:
	do
	:: atomic { asked < J -> asked++ };
		pick(to);
		if
		:: to == me -> skip
		:: else ->
			atomic {
				running[me] = false;
				here[me] = false;
				jto[me] = to;
				answer[me] = 0;
				ch[me * N + to]!JUMP, 0
			};
			answer[me] != 0;
			if
			:: answer[me] == 1 -> jto[me] = N; goto end_park
			:: else -> atomic { jto[me] = N; here[me] = true;
					     running[me] = true; one_runner() }
			fi
		fi
	od;
end_park:
	pend[me];
	atomic { f = pfrom[me]; pend[me] = false };
	if
	:: ok = true
	:: ok = false /* KVM refused the state */
	fi;
	if
	:: ok ->
		atomic {
			here[me] = true;
			running[me] = true;
			one_runner();
			ch[me * N + f]!ANSWER, 1
		};
		goto end_run
	:: else ->
		ch[me * N + f]!ANSWER, 0;
		goto end_park
	fi
}

proctype receiver(byte me)
{
	byte f;
	bit ok;
	mtype m;

	/* Blocks until some connection has a frame (one option per peer, so
	 * that an idle receiver lets `timeout` hold). */
end_recv:
	do
	:: 0 != me && nempty(ch[0 * N + me]) -> f = 0; goto got
	:: N > 1 && 1 != me && nempty(ch[1 * N + me]) -> f = 1; goto got
	:: N > 2 && 2 != me && nempty(ch[2 * N + me]) -> f = 2; goto got
got:
		atomic {
			ch[f * N + me]?m, ok;
			if
			:: m == JUMP && (here[me] || pend[me]) ->
				refusals++;
				ch[me * N + f]!ANSWER, 0
			:: m == JUMP && !here[me] && !pend[me] ->
				pend[me] = true;
				pfrom[me] = f
			:: m == ANSWER && jto[me] == f && answer[me] == 0 ->
				if
				:: ok -> answer[me] = 1
				:: else -> answer[me] = 2
				fi
			:: else -> assert(false) /* a stray answer */
			fi
		}
	od
}

init
{
	byte i = 0;

	atomic {
		do
		:: i < N -> jto[i] = N; i++
		:: else -> break
		od;
		here[0] = true;
		i = 0;
		do
		:: i < N -> run vcpu(i); run receiver(i); i++
		:: else -> break
		od
	}
}

/* At the end (the invariant is checked where running is set): the vCPU
 * is somewhere, and a jump was never refused for a stale `here`. A
 * process with an always-enabled step would keep `timeout` from ever
 * holding, so this one only waits for it. */
active proctype check()
{
	byte c;

	do
	:: timeout ->
		atomic {
			count_running(c);
			assert(c == 1);
			byte k = 0;
			do
			:: k < N * N -> assert(empty(ch[k])); k++
			:: else -> break
			od;
			assert(refusals == 0)
		};
		break
	od
}
