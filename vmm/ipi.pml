/*
 * ipi.pml: interrupts for a vCPU that jumps between hosts (vmm/ipi.c) and
 * the jump protocol they ride on (vmm/jump.c; its own model: jump.pml).
 * One vCPU over N hosts, J jumps asked for, K distinct interrupts (edge,
 * fixed vectors), each raised once, at any host, at any time.
 *
 * What each host has (one LAPIC object per host for the vCPU: the vCPU's
 * own while its state is loaded there, else its parked copy's):
 *   lirr[h]   that LAPIC's IRR (a bit per interrupt). A raise at h sets it
 *             whatever the state: the in-kernel LAPIC does not ask.
 *   ist[h]    ipi_state: AWAY, HERE, HELD;  here[h]: v->here (jump.c)
 *   where[h], gen[h]   note_report / the taken answer in cluster__depart
 *   pend[h]   ipi_pend
 *   jin[h]... the arrival slot (j->in, from, the state's IRR, generation)
 * The vCPU's thread at each host runs it (accepting interrupts out of the
 * IRR: got[i] counts the guest's acceptances), or parks its copy in the
 * trap (a pending IRR bit is delivered to its stub, which reports it:
 * caught()), or departs/arrives. Each host has one receiver per peer (one
 * fabric thread per connection, frames of one connection in order). Each
 * atomic block is one critical section of the C (vm__hold + irq_lock, or
 * cl->lock); sends after an unlock are steps of their own.
 *
 * Transitions, as in the C:
 *  departure (ipi_handover_out + here = false + CL_JUMP): the state's IRR
 *    goes in the message, the copy's LAPIC is emptied, HELD. The
 *    generation is read after the send (jump.c: `gen = cl->gen[..]`).
 *  on_jump: refused if here or a state waits, else HELD and the slot set.
 *  the copy's loop (ipi_park): checks the slot, else KVM_RUN: one
 *    interrupt is delivered to a stub and caught (route, hops 0), or the
 *    kick stops it at the stub's first byte (drain() finds it by RIP), or
 *    the kick just ends KVM_RUN. fresh: the LAPIC's IRR into pend, the
 *    LAPIC emptied, and pend to where[] if AWAY and where[] is not here.
 *  ipi_handover_in: drain (IRR, stub) into pend, merge pend into the
 *    state, vcpu__load: ok (HERE), or fails before KVM_SET_LAPIC (the copy
 *    keeps its IRR), or after it (the copy's LAPIC is the state's); on
 *    failure AWAY and take_pend back to the source; then the answer, and
 *    after a failure ipi_park(fresh) again.
 *  the answer at the source: taken: where/gen if gen allows, AWAY, pend to
 *    the destination (ipi_departed), then the copy parks (not fresh);
 *    refused: ipi_stay (drain the copy's IRR, merge, load; HERE).
 *  CL_WHERE (ok reports only; failure reports change nothing), CL_IPI
 *    (route with hops + 1).
 *  route: HERE: inject (into lirr); HELD: pend; AWAY: to where[] unless
 *    where[] is this host or hops >= MAXH: then the C drops it (asserted
 *    here: "lost").
 *
 * Abstracted: vectors are distinct interrupt bits (no NMI, no levels, no
 * priorities: any pending one may be taken first); CL_JUMP_REQ (a jump is
 * asked at the host that runs the vCPU); failure reports; the stop of the
 * VM (a state that does not load again at the source stops it: not
 * modelled, ipi_stay always loads); sends that fail. A report's sends to
 * every host are one step (the thread sends nothing else meanwhile).
 * The copies start parked (their first ipi_park(fresh) ran before any
 * jump or interrupt).
 *
 * Checked: in every state the vCPU is HERE on at most one host; no route()
 * drops an interrupt; the guest accepts no interrupt twice (unless
 * -DDUPS_OK); at the end (every process blocked): no message in flight, no
 * jump under way, the vCPU HERE on one host, nothing left in any pend, and
 * every interrupt raised was accepted by the guest exactly once.
 * (Trails: `MSC:` lines say what happened where; spin -t -r -s shows the
 * frames.)
 *
 * Found by this model in the first vmm/ipi.c, and fixed there, both only
 * when a state fails to load at its destination:
 *  - lost: ipi_handover_in merges pend into the state, whose vcpu__load
 *    then fails; take_pend(from) finds pend empty, and what it held (an
 *    interrupt caught, relayed or stopped at a stub while HELD) goes with
 *    the freed state (N=2, J=1, K=1: i0 raised at h1; h0 departs; h1's
 *    on_jump; h1's copy catches i0 into pend; the load fails before
 *    KVM_SET_LAPIC; the answer says refused; h0 stays without i0).
 *  - duplicated: the load fails after KVM_SET_LAPIC; ipi_park(fresh)
 *    then takes the state's own IRR for the copy's and sends it to
 *    where[] (the source), after the refusal: the source's guest takes
 *    the interrupt from its reloaded state, then again from the CL_IPI.
 * The repair (modelled): a failed load sends back what was held before the
 * merge and leaves the copy's LAPIC empty. Also: a source whose vCPU is on
 * its way back (on_jump ran) before it saw its answer keeps it HELD
 * (ipi_departed), instead of relaying interrupts away and back.
 * Hops: two hosts never relay (the pair's order puts a forward before the
 * answer that would make the receiver AWAY); over three an interrupt is
 * relayed once per jump it chases (MAXH=J+1 holds, MAXH=J fails), so
 * IPI_MAX_HOPS (16) is out of reach at these bounds.
 *
 * @check loads-2    | -DN=2 -DJ=4 -DK=2          | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m300000
 * @check loads-2k3  | -DN=2 -DJ=4 -DK=3          | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m300000
 * @check loads-3    | -DN=3 -DJ=2 -DK=2          | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m300000
 * @check loads-3j   | -DN=3 -DJ=3 -DK=1          | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m300000
 * @check noloadfail-2 | -DN=2 -DJ=4 -DK=3 -DFAIL=0 | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m300000
 * @check noloadfail-3 | -DN=3 -DJ=2 -DK=2 -DFAIL=0 | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m300000
 * @check noloadfail-3j | -DN=3 -DJ=3 -DK=1 -DFAIL=0 | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m300000
 * @check-full loads-2j6 | -DN=2 -DJ=6 -DK=3      | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m300000
 */

#ifndef N
#define N 2
#endif
#if N > 3
#error "the receivers are started for up to 3 hosts"
#endif
#ifndef J
#define J 3		/* jumps asked for, in all */
#endif
#ifndef K
#define K 2		/* interrupts raised, in all (distinct) */
#endif
#if K > 3
#error "lowbit and pickbit know 3 bits"
#endif
#ifndef MAXH
#define MAXH 16		/* IPI_MAX_HOPS */
#endif
#ifndef FAIL
#define FAIL 2		/* 0: loads never fail; 1: they may fail before
			 * KVM_SET_LAPIC; 2: before or after it; 3: after */
#endif
#ifndef CAP
#define CAP 6		/* a channel's capacity (asserted never full) */
#endif

#define AWAY 0
#define HERE 1
#define HELD 2

mtype = { JUMP, ANSWER, WHERE, IPI };

/* JUMP: gen, the state's IRR; ANSWER: ok, -; WHERE: gen, host;
 * IPI: interrupt, hops */
chan ch[N * N] = [CAP] of { mtype, byte, byte };

bool here[N];
byte ist[N];
byte where[N];
byte gen[N];
byte pend[N];
byte lirr[N];
bool jin[N];
byte jfrom[N];
byte jirr[N];
byte jgen[N];
byte jto[N];	/* source: where the jump under way goes (N: none) */
byte answer[N];	/* source: 0 none yet, 1 taken, 2 refused */
byte asked = 0;
byte raised = 0;
byte got[K];
byte refusals = 0;

#define SEND(from, to, m, a, b) \
	assert(nfull(ch[(from) * N + (to)])); ch[(from) * N + (to)]!m, a, b

inline lowbit(x, b)
{
	if
	:: x & 1 -> b = 0
	:: else -> if :: x & 2 -> b = 1 :: else -> b = 2 fi
	fi
}

/* b: any bit set in x (x != 0) */
inline pickbit(x, b)
{
	if
	:: x & 1 -> b = 0
	:: x & 2 -> b = 1
	:: x & 4 -> b = 2
	fi
}

inline pick(x, me)
{
	if
	:: me != 0 -> x = 0
	:: me != 1 -> x = 1
	:: N > 2 && me != 2 -> x = 2
	fi
}

inline one_here()
{
	assert((ist[0] == HERE) + (N > 1 && ist[1] == HERE) +
	       (N > 2 && ist[N - 1] == HERE) <= 1)
}

/* route() of vmm/ipi.c at host h: fwd set if it goes on to fto. */
inline route(h, i, hops, fto, fwd)
{
	if
	:: ist[h] == HERE -> lirr[h] = lirr[h] | (1 << i) /* inject */
	:: ist[h] == HELD -> pend[h] = pend[h] | (1 << i)
	:: ist[h] == AWAY ->
		assert(where[h] != h);	/* lost: nowhere to go */
		assert(hops < MAXH);	/* lost: the hop limit */
		fto = where[h];
		fwd = true
	fi
}

/* note_report: the higher generation says where it is. */
inline note(h, g, at)
{
	if
	:: g >= gen[h] -> gen[h] = g; where[h] = at
	:: else
	fi
}

/* The sends of take_pend's list, after the unlock (ascending, hops 0). */
inline send_all()
{
	do
	:: out != 0 ->
		atomic {
			lowbit(out, b);
			SEND(me, outto, IPI, b, 0);
			out = out & ~(1 << b);
			if :: out == 0 -> outto = 0; b = 0 :: else fi
		}
	:: else -> break
	od
}

proctype vcpu(byte me)
{
	byte to, g, s, out, outto, b, stubv, fto, fv;
	bool fwd, ok;

	/* The copies start parked: their first ipi_park(fresh), with nothing
	 * to drain or send, ran before any jump or interrupt. */
	if
	:: me == 0 -> goto running
	:: else -> goto park
	fi;

running:
end_run:
	do
	:: atomic { /* the guest takes a pending interrupt */
		lirr[me] != 0 -> pickbit(lirr[me], b);
		lirr[me] = lirr[me] & ~(1 << b);
		got[b]++;
		printf("MSC: h%d: the guest takes i%d (%d times)\n", me, b, got[b]);
#ifndef DUPS_OK
		assert(got[b] == 1);	/* accepted twice */
#endif
		b = 0 }
	:: atomic { asked < J -> asked++; pick(to, me) };
		atomic { /* ipi_handover_out, here = false, CL_JUMP */
			s = lirr[me];
			lirr[me] = 0;
			ist[me] = HELD;
			here[me] = false;
			jto[me] = to;
			answer[me] = 0;
			SEND(me, to, JUMP, gen[me], s);
			printf("MSC: h%d: departs to h%d (gen %d, IRR %d)\n", me, to, gen[me], s)
		};
		g = gen[me];	/* read after the send */
		answer[me] != 0;
		if
		:: answer[me] == 1 ->
			atomic { /* the where update, ipi_departed */
				jto[me] = N;
				answer[me] = 0;
				if
				:: gen[me] <= g -> gen[me] = g + 1; where[me] = to
				:: else
				fi;
				/* on its way back already (on_jump ran): stays
				 * HELD, what waits is its own */
				if
				:: !jin[me] ->
					ist[me] = AWAY;
					out = pend[me];
					pend[me] = 0;
					outto = to
				:: else
				fi;
				printf("MSC: h%d: taken: where %d, pend %d to h%d\n", me, where[me], out, to);
				s = 0; g = 0; to = 0
			};
			send_all();
			goto park
		:: else ->
			atomic { /* refused: ipi_stay, here = true */
				jto[me] = N;
				answer[me] = 0;
				pend[me] = pend[me] | lirr[me];
				s = s | pend[me];
				pend[me] = 0;
				lirr[me] = s;
				ist[me] = HERE;
				one_here();
				here[me] = true;
				printf("MSC: h%d: refused: ipi_stay, HERE, IRR %d\n", me, s);
				s = 0; g = 0; to = 0
			}
		fi
	od;

park_fresh:	/* ipi_park(fresh) */
	atomic {
		pend[me] = pend[me] | lirr[me];
		lirr[me] = 0;
		if
		:: ist[me] == AWAY && where[me] != me ->
			out = pend[me]; pend[me] = 0; outto = where[me]
		:: else
		fi;
		printf("MSC: h%d: ipi_park(fresh): %d to h%d\n", me, out, outto)
	};
	send_all();
park:
	do
	:: jin[me] -> break
	:: !jin[me] -> /* KVM_RUN */
end_trap:
		if
		:: atomic { lirr[me] != 0 ->
			pickbit(lirr[me], b);
			lirr[me] = lirr[me] & ~(1 << b);
			if
			:: printf("MSC: h%d: the copy catches i%d\n", me, b);
				route(me, b, 0, fto, fwd); /* the stub's out: caught() */
				if :: fwd -> fv = b :: else fi
			:: jin[me] -> stubv = 1 << b;	/* kicked at the stub */
				printf("MSC: h%d: kicked at i%d's stub\n", me, b)
			fi;
			b = 0 }
		:: jin[me] -> skip	/* kicked */
		fi;
		if
		:: fwd -> atomic { SEND(me, fto, IPI, fv, 0); fwd = false; fto = 0; fv = 0 }
		:: else
		fi
	od;
	/* the arrival: load() -> ipi_handover_in(in_trap) */
	atomic {
		to = jfrom[me]; s = jirr[me]; g = jgen[me] + 1;
		jin[me] = false; jfrom[me] = 0; jirr[me] = 0; jgen[me] = 0;
		/* drain: the IRR (not cleared), the stub */
		pend[me] = pend[me] | lirr[me] | stubv;
		stubv = 0;
		out = pend[me];	/* what was held, kept for a failure */
		/* merge */
		s = s | pend[me];
		pend[me] = 0;
		printf("MSC: h%d: ipi_handover_in from h%d: state IRR | drained = %d\n", me, to, s);
		if
		:: ok = true; lirr[me] = s; ist[me] = HERE; one_here();
			here[me] = true;
			printf("MSC: h%d: loaded: HERE, IRR %d\n", me, s)
#if FAIL == 1 || FAIL == 2
		:: ok = false; ist[me] = AWAY;	/* fails before KVM_SET_LAPIC */
			printf("MSC: h%d: vcpu__load fails before KVM_SET_LAPIC: AWAY\n", me)
#endif
#if FAIL >= 2
		:: ok = false; lirr[me] = s; ist[me] = AWAY; /* after it */
			printf("MSC: h%d: vcpu__load fails after KVM_SET_LAPIC: AWAY\n", me)
#endif
		fi;
		/* a failed load sends back what was held and leaves the
		 * copy's LAPIC empty (the state's own IRR stays with the
		 * source's copy of the state) */
		if
		:: !ok -> lirr[me] = 0; outto = to
		:: else -> out = 0
		fi;
		s = 0
	};
	send_all();
	if
	:: ok ->
		atomic { SEND(me, to, ANSWER, 1, 0) };
		atomic { /* report(): here, and to every other host */
			note(me, g, me);
			if :: me != 0 -> SEND(me, 0, WHERE, g, me) :: else fi;
			if :: me != 1 -> SEND(me, 1, WHERE, g, me) :: else fi;
			if :: N > 2 && me != 2 -> SEND(me, N - 1, WHERE, g, me) :: else fi;
			g = 0; to = 0
		};
		goto running
	:: else ->
		atomic { SEND(me, to, ANSWER, 0, 0); g = 0; to = 0 };
		goto park_fresh
	fi
}

proctype receiver(byte me; byte from)
{
	mtype m;
	byte a, b, fto;
	bool fwd, no;

end_recv:
	do
	:: atomic {
		ch[from * N + me]?m, a, b ->
		if
		:: m == JUMP ->
			if
			:: here[me] || jin[me] -> no = true; refusals++
			:: else ->
				ist[me] = HELD;	/* ipi_arriving */
				jin[me] = true;
				jfrom[me] = from;
				jirr[me] = b;
				jgen[me] = a
			fi
		:: m == ANSWER ->
			assert(jto[me] == from && answer[me] == 0); /* no stray */
			if :: a -> answer[me] = 1 :: else -> answer[me] = 2 fi
		:: m == WHERE -> note(me, a, b)
		:: m == IPI ->
			route(me, a, b + 1, fto, fwd);
			if :: fwd -> b = b + 1 :: else fi
		fi;
		if :: !fwd -> a = 0; b = 0 :: else fi;
		m = 0 }
		if
		:: no -> atomic { SEND(me, from, ANSWER, 0, 0); no = false }
		:: fwd -> atomic { SEND(me, fto, IPI, a, b); fwd = false; fto = 0; a = 0; b = 0 }
		:: else
		fi
	od
}

/* The interrupts, raised one by one at any host (into that host's LAPIC
 * for the vCPU: its own if it runs there, else the copy's). */
proctype env()
{
	byte h;

end_env:
	do
	:: raised < K ->
		atomic {
			if
			:: h = 0
			:: h = 1
			:: N > 2 -> h = 2
			fi;
			lirr[h] = lirr[h] | (1 << raised);
			printf("MSC: i%d raised at h%d\n", raised, h);
			raised++;
			h = 0
		}
	:: else -> break
	od
}

init
{
	byte i = 0;

	atomic {
		do
		:: i < N -> jto[i] = N; ist[i] = AWAY; i++
		:: else -> break
		od;
		here[0] = true;
		ist[0] = HERE;
		i = 0;
		do
		:: i < N ->
			run vcpu(i);
			if :: i != 0 -> run receiver(i, 0) :: else fi;
			if :: i != 1 -> run receiver(i, 1) :: else fi;
			if :: N > 2 && i != 2 -> run receiver(i, 2) :: else fi;
			i++
		:: else -> break
		od;
		run env()
	}
}

active proctype check()
{
	byte k;

	do
	:: timeout ->
		atomic {
			k = 0;
			do
			:: k < N * N -> assert(empty(ch[k])); k++
			:: else -> break
			od;
			assert(refusals == 0);
			assert(raised == K);
			k = 0;
			do
			:: k < N ->
				assert(jto[k] == N && !jin[k]);
				assert(pend[k] == 0);	/* stuck in pend */
				k++
			:: else -> break
			od;
			assert((ist[0] == HERE) + (N > 1 && ist[1] == HERE) +
			       (N > 2 && ist[N - 1] == HERE) == 1);
			k = 0;
			do
			:: k < K -> assert(got[k] >= 1); /* lost */ k++
			:: else -> break
			od
		};
		break
	od
}
