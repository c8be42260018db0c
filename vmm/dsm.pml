/*
 * dsm.pml: the DSM coherence protocol of slos, the reference the C engine
 * follows state by state and message by message (docs/dsm.md explains it).
 *
 * MSI with read replication and write invalidation. Each page has a home
 * host that keeps its directory entry (state, owner, copyset) and its
 * backing copy (`store`), and orders every request for the page: it serves
 * one transaction per page at a time and queues the requests that arrive
 * while the entry is busy. Each host also caches pages (its own homed pages
 * too: the home's cache agent talks to its directory through the loopback
 * channel exactly as a remote host does). Every reply to a requester comes
 * from the home (owner data goes owner -> home -> requester), so the one
 * FIFO channel home -> requester orders everything a requester sees.
 *
 * Hosts talk over per-pair FIFO channels (one TCP connection per pair, plus
 * an in-order local queue for a host's messages to itself); nothing orders
 * messages on different pairs. A host holds at most BUDGET pages and evicts
 * at will: Shared copies are dropped with a notice (DSM_EVICT), Modified
 * ones are written back to the home (DSM_WB). No eviction waits for an ack.
 *
 * The page's contents are modelled by a version counter (mod VMOD) that each
 * guest write increments; `latest[p]` is the value of the latest completed
 * write. Checked in every reachable state (CHECK_INV after each step):
 * single writer or many readers, every readable copy holds latest[p], the
 * home's copy is current when no host owns the page; reads assert it too.
 * A global stall (`timeout`) must be a quiescent state: no request pending,
 * no message in flight, no directory entry busy. With OPS > 0 every guest
 * stops after OPS actions, so every run ends in that check: no request is
 * ever lost or stuck. With -DLIVE the ltl claim `resp` checks that a
 * pending request of host LH on page LP always completes (weak fairness).
 *
 * Names shared with vmm/dsm_proto.h (checked by tests/spin-check.sh):
 * @proto-header vmm/dsm_proto.h
 *
 * The checks tests/spin-check.sh runs (name | spin -D | cc flags | pan flags);
 * all exhaustive (COLLAPSE only compresses stored states, it loses none):
 * @check page     | -DP=1           | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m100000
 * @check-full page-4 | -DP=1 -DN=4  | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m2000000
 * @check pages    | -DOPS=2         | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m10000
 * @check pages-b1 | -DOPS=3 -DBUDGET=1 | -DSAFETY -DNOCLAIM -DCOLLAPSE | -m10000
 * @check live-rem | -DP=1 -DLIVE -DLH=1 | -DNFAIR=5 -DCOLLAPSE | -a -f -m200000
 * @check live-home | -DP=1 -DLIVE -DLH=0 | -DNFAIR=5 -DCOLLAPSE | -a -f -m200000
 */

#ifndef N
#define N 3		/* hosts */
#endif
#ifndef P
#define P 2		/* pages; page p is homed on host p % N */
#endif
#ifndef BUDGET
#define BUDGET P	/* pages a host may hold (S, M, or reserved by a miss) */
#endif
#ifndef VMOD
#define VMOD 2		/* data values; writes never steer the protocol, so 2 suffice */
#endif
#ifndef CAP
#define CAP (3 * P)	/* channel slots; a send to a full channel is an error */
#endif
#ifndef OPS
#define OPS 0		/* guest actions per host; 0 = unbounded */
#endif
#ifndef LH
#define LH 0
#endif
#ifndef LP
#define LP 0
#endif

#define HOME(p)	((p) % N)
#define NONE	255

/* ---- page (cache) states: per host, per page ---- */
#define DSM_I		0	/* invalid: not mapped; any access faults */
#define DSM_S		1	/* shared: mapped read-only; reads hit, writes fault */
#define DSM_M		2	/* modified: mapped read-write; sole copy */
#define DSM_IS_D	3	/* I -> S: READ_REQ sent, waiting for DATA (slot reserved) */
#define DSM_IM_D	4	/* I -> M: WRITE_REQ sent, waiting for DATA (slot reserved) */
#define DSM_SM_D	5	/* S -> M: WRITE_REQ sent holding S, waiting for GRANT
			 * (or DATA if an INV took our copy meanwhile: -> IM_D) */

/* ---- directory states: per page, at its home ---- */
#define DSM_DIR_I	0	/* no cached copy; home's store is current */
#define DSM_DIR_S	1	/* copyset (>= 1 sharer) holds copies equal to store */
#define DSM_DIR_M	2	/* owner holds the only copy; store is stale */
#define DSM_DIR_SM_A	3	/* busy: INVs sent for writer `cur`, counting INV_ACKs */
#define DSM_DIR_MS_D	4	/* busy: FWD_READ sent to owner for reader `cur` */
#define DSM_DIR_MM_D	5	/* busy: FWD_WRITE sent to owner for writer `cur` */
#define DIR_BUSY(p)	(dst[p] >= DSM_DIR_SM_A)

/*
 * Messages: {type, page, arg, ver}. The sender is the channel's (in C: the
 * connection's peer). `arg` is used by DSM_DATA only (the granted state,
 * DSM_S or DSM_M); `ver` is the payload (page contents) of DSM_DATA,
 * DSM_FWD_DATA and DSM_WB, 0 elsewhere.
 */
mtype = {
	/* cache -> home */
	DSM_READ_REQ,	/* read miss (I -> IS_D) */
	DSM_WRITE_REQ,	/* write miss (I -> IM_D) or upgrade (S -> SM_D) */
	DSM_EVICT,	/* S copy dropped (S -> I); notice, no reply */
	DSM_WB,		/* M copy written back on eviction (M -> I); payload; no reply */
	DSM_INV_ACK,	/* reply to DSM_INV, whatever our state was */
	DSM_FWD_DATA,	/* owner's reply to FWD_READ / FWD_WRITE; payload */
	/* home -> cache */
	DSM_DATA,	/* reply to READ_REQ (arg DSM_S) or WRITE_REQ (arg DSM_M); payload */
	DSM_GRANT,	/* reply to an upgrade WRITE_REQ whose S copy survived; no payload */
	DSM_INV,	/* drop your S copy (a writer is waiting); reply INV_ACK */
	DSM_FWD_READ,	/* owner: downgrade M -> S, send the data home */
	DSM_FWD_WRITE	/* owner: give up M -> I, send the data home */
};

chan ch[N * N] = [CAP] of { mtype, byte, byte, byte };
#define CH(s, d)	ch[(s) * N + (d)]

/* per host and page (index h * P + p) */
byte cst[N * P];	/* page state */
byte cval[N * P];	/* contents of the local copy (valid in S, M, SM_D) */
byte held[N];		/* pages held or reserved: S, M, IS_D, IM_D, SM_D */
#if OPS > 0
byte ops[N];		/* guest actions done (bounded runs) */
#endif

/* per page, at its home */
byte dst[P];		/* directory state */
byte owner[P];		/* the M holder (DIR_M, DIR_MS_D, DIR_MM_D), else NONE */
byte cset[P];		/* copyset bitmask (DIR_S; in DIR_SM_A: only the writer's bit) */
byte acks[P];		/* INV_ACKs still expected (DIR_SM_A) */
byte cur[P];		/* requester being served (busy states), else NONE */
byte store[P];		/* the home's copy */
chan dq[P] = [N] of { mtype, byte };	/* requests waiting while busy: at most
					 * one per host, served in arrival order */

byte latest[P];		/* ghost: value of the latest completed write */

/* scratch, not part of the state vector */
hidden mtype ht;
hidden byte hp, ha, hv, hi, hj, hn, hc, qr;
hidden mtype qt;

#define SEND(s, d, t, p, a, v) \
	assert(nfull(CH(s, d))); CH(s, d)!t, p, a, v

#define READABLE(c)	(cst[c] == DSM_S || cst[c] == DSM_M || cst[c] == DSM_SM_D)
#define TRANSIENT(c)	(cst[c] >= DSM_IS_D)

/* The safety invariant, checked at the end of every atomic step. */
inline CHECK_INV()
{
	for (hi : 0 .. P - 1) {
		hn = 0; hc = 0;
		for (hj : 0 .. N - 1) {
			if
			:: cst[hj * P + hi] == DSM_M -> hn++
			:: cst[hj * P + hi] == DSM_S || cst[hj * P + hi] == DSM_SM_D -> hc++
			:: else
			fi;
			/* every readable copy is the latest write */
			assert(!READABLE(hj * P + hi) || cval[hj * P + hi] == latest[hi]);
			/* the directory knows the writer */
			assert(cst[hj * P + hi] != DSM_M || owner[hi] == hj)
		}
		/* single writer, or readers only */
		assert(hn <= 1 && (hn == 0 || hc == 0));
		/* no owner: the home's copy is the latest write */
		assert(owner[hi] != NONE || store[hi] == latest[hi]);
		/* not busy: nothing queued */
		assert(DIR_BUSY(hi) || empty(dq[hi]))
	}
	hi = 0; hj = 0; hn = 0; hc = 0
}

/* ------------------------------------------------------------------ */
/* Home side: directory of page p at host d = HOME(p).                 */
/* ------------------------------------------------------------------ */

/* Writer cur[p] may now have M: every other copy is gone. It keeps its
 * S copy (bit still in cset) -> GRANT, no payload; else DATA with store. */
inline grant_write(d, p)
{
	if
	:: cset[p] & (1 << cur[p]) ->
		SEND(d, cur[p], DSM_GRANT, p, 0, 0)
	:: else ->
		SEND(d, cur[p], DSM_DATA, p, DSM_M, store[p])
	fi;
	owner[p] = cur[p]; cset[p] = 0; cur[p] = NONE;
	dst[p] = DSM_DIR_M
}

/* Serve request t of host r; the entry is not busy. */
inline serve(d, p, t, r)
{
	if
	:: t == DSM_READ_REQ ->
		if
		:: dst[p] == DSM_DIR_I || dst[p] == DSM_DIR_S ->
			/* store is current: reply at once, r joins the copyset */
			assert(!(cset[p] & (1 << r)));	/* its EVICT came first */
			cset[p] = cset[p] | (1 << r);
			dst[p] = DSM_DIR_S;
			SEND(d, r, DSM_DATA, p, DSM_S, store[p])
		:: dst[p] == DSM_DIR_M ->
			/* the owner has the data: fetch it (owner keeps S) */
			assert(owner[p] != r);	/* an owner's WB precedes its new request */
			cur[p] = r;
			dst[p] = DSM_DIR_MS_D;
			SEND(d, owner[p], DSM_FWD_READ, p, 0, 0)
		:: else -> assert(false)
		fi
	:: t == DSM_WRITE_REQ ->
		if
		:: dst[p] == DSM_DIR_I ->
			cur[p] = r;
			grant_write(d, p)
		:: dst[p] == DSM_DIR_S ->
			/* invalidate every sharer but the writer; it keeps its bit
			 * so that grant_write knows whether it still has the data */
			cur[p] = r;
			acks[p] = 0;
			for (hj : 0 .. N - 1) {
				if
				:: hj != r && (cset[p] & (1 << hj)) ->
					SEND(d, hj, DSM_INV, p, 0, 0);
					cset[p] = cset[p] & ~(1 << hj);
					acks[p]++
				:: else
				fi
			}
			hj = 0;
			if
			:: acks[p] == 0 -> grant_write(d, p)
			:: else -> dst[p] = DSM_DIR_SM_A
			fi
		:: dst[p] == DSM_DIR_M ->
			assert(owner[p] != r);
			cur[p] = r;
			dst[p] = DSM_DIR_MM_D;
			SEND(d, owner[p], DSM_FWD_WRITE, p, 0, 0)
		:: else -> assert(false)
		fi
	:: else -> assert(false)
	fi
}

/* The entry is free again: serve queued requests in arrival order until
 * one makes it busy. */
inline drain(d, p)
{
	do
	:: !DIR_BUSY(p) && len(dq[p]) > 0 ->
		dq[p]?qt, qr;
		serve(d, p, qt, qr);
		qt = 0; qr = 0
	:: else -> break
	od
}

/* The owner's data arrived while a FWD for cur[p] is outstanding: FWD_DATA
 * (owner_left false: after FWD_READ the owner keeps S, after FWD_WRITE it
 * is I) or the owner's eviction WB that crossed the FWD (owner_left true:
 * the owner is I). Finish the transaction from store. */
inline finish_fwd(d, p, owner_left)
{
	if
	:: dst[p] == DSM_DIR_MS_D ->
		cset[p] = (1 << cur[p]);
		if
		:: !owner_left -> cset[p] = cset[p] | (1 << owner[p])
		:: else
		fi;
		owner[p] = NONE;
		dst[p] = DSM_DIR_S;
		SEND(d, cur[p], DSM_DATA, p, DSM_S, store[p])
	:: dst[p] == DSM_DIR_MM_D ->
		owner[p] = cur[p];
		dst[p] = DSM_DIR_M;
		SEND(d, cur[p], DSM_DATA, p, DSM_M, store[p])
	fi;
	cur[p] = NONE;
	drain(d, p)
}

/* Message t about page p from host s, for the directory at host d. */
inline home_recv(d, s, t, p, v)
{
	assert(HOME(p) == d);
	if
	:: t == DSM_READ_REQ || t == DSM_WRITE_REQ ->
		if
		:: DIR_BUSY(p) ->
			/* one transaction per page at a time: queue (never block the
			 * channel: the acks the busy entry waits for may be behind) */
			assert(nfull(dq[p]));
			dq[p]!t, s
		:: else -> serve(d, p, t, s)
		fi
	:: t == DSM_INV_ACK ->
		assert(dst[p] == DSM_DIR_SM_A && acks[p] > 0);
		acks[p]--;
		if
		:: acks[p] == 0 -> grant_write(d, p); drain(d, p)
		:: else
		fi
	:: t == DSM_FWD_DATA ->
		assert((dst[p] == DSM_DIR_MS_D || dst[p] == DSM_DIR_MM_D) && owner[p] == s);
		store[p] = v;
		finish_fwd(d, p, false)
	:: t == DSM_WB ->
		/* only the owner writes back, and exactly once per ownership:
		 * either it answers our FWD (FWD_DATA) or it evicted first (WB) */
		assert(owner[p] == s);
		store[p] = v;
		if
		:: dst[p] == DSM_DIR_M ->
			owner[p] = NONE;
			dst[p] = DSM_DIR_I
		:: dst[p] == DSM_DIR_MS_D || dst[p] == DSM_DIR_MM_D ->
			/* race: the WB crossed our FWD. The WB is the answer; the
			 * FWD finds the evictor without M and is dropped there. */
			finish_fwd(d, p, true)
		:: else -> assert(false)
		fi
	:: t == DSM_EVICT ->
		if
		:: dst[p] == DSM_DIR_S ->
			assert(cset[p] & (1 << s));
			cset[p] = cset[p] & ~(1 << s);
			if
			:: cset[p] == 0 -> dst[p] = DSM_DIR_I
			:: else
			fi
		:: dst[p] == DSM_DIR_SM_A ->
			/* race: the EVICT crossed our INV; s was already taken out
			 * of the copyset and still owes the INV_ACK (it follows) */
			assert(!(cset[p] & (1 << s)))
		:: else -> assert(false)
		fi
	:: else -> assert(false)
	fi
}

/* ------------------------------------------------------------------ */
/* Cache side: host d's copy of page p; messages come from HOME(p).    */
/* ------------------------------------------------------------------ */

inline cache_recv(d, s, t, p, a, v)
{
	assert(HOME(p) == s);
	hc = d * P + p;
	if
	:: t == DSM_DATA && a == DSM_S ->
		assert(cst[hc] == DSM_IS_D);
		cst[hc] = DSM_S; cval[hc] = v
	:: t == DSM_DATA && a == DSM_M ->
		/* an upgrader whose copy was invalidated is in IM_D by now:
		 * the INV travelled before this DATA on the same channel */
		assert(cst[hc] == DSM_IM_D);
		cst[hc] = DSM_M; cval[hc] = v
	:: t == DSM_GRANT ->
		assert(cst[hc] == DSM_SM_D);
		cst[hc] = DSM_M
	:: t == DSM_INV ->
		if
		:: cst[hc] == DSM_S ->
			cst[hc] = DSM_I; cval[hc] = 0; held[d]--
		:: cst[hc] == DSM_SM_D ->
			/* lost the race to another writer: keep the slot, our
			 * WRITE_REQ is queued at home and will get DATA */
			cst[hc] = DSM_IM_D; cval[hc] = 0
		:: cst[hc] == DSM_I || cst[hc] == DSM_IS_D || cst[hc] == DSM_IM_D ->
			/* race: we evicted (EVICT in flight), maybe asked again;
			 * the home counts this ack, so ack anyway */
			skip
		:: else -> assert(false)	/* never to an owner */
		fi;
		SEND(d, s, DSM_INV_ACK, p, 0, 0)
	:: t == DSM_FWD_READ || t == DSM_FWD_WRITE ->
		if
		:: cst[hc] == DSM_M ->
			SEND(d, s, DSM_FWD_DATA, p, 0, cval[hc]);
			if
			:: t == DSM_FWD_READ -> cst[hc] = DSM_S
			:: else -> cst[hc] = DSM_I; cval[hc] = 0; held[d]--
			fi
		:: cst[hc] == DSM_I || cst[hc] == DSM_IS_D || cst[hc] == DSM_IM_D ->
			/* race: we wrote back (WB in flight), which answers the
			 * home; a FWD never finds us in M by mistake because any
			 * later grant of M to us travels behind it */
			skip
		:: else -> assert(false)
		fi
	:: else -> assert(false)
	fi;
	hc = 0
}

/* One receiver per channel s -> d: messages of a pair are handled in order,
 * pairs interleave freely. Each message is handled in one atomic step (in C:
 * under the page's lock, sends only queued). */
proctype Rx(byte s; byte d)
{
end:
	do
	:: d_step {
		CH(s, d)?ht, hp, ha, hv;
		if
		:: ht == DSM_DATA || ht == DSM_GRANT || ht == DSM_INV ||
		   ht == DSM_FWD_READ || ht == DSM_FWD_WRITE ->
			cache_recv(d, s, ht, hp, ha, hv)
		:: else ->
			home_recv(d, s, ht, hp, hv)
		fi;
		CHECK_INV();
		ht = 0; hp = 0; ha = 0; hv = 0
	}
	od
}

/* ------------------------------------------------------------------ */
/* The guest on host h: accesses, misses, evictions of page pg.        */
/* ------------------------------------------------------------------ */

#if OPS > 0
#define OPOK	ops[h] < OPS
#define OPINC	ops[h]++
#else
#define OPOK	true
#define OPINC	skip
#endif
#define C(pg)	(h * P + (pg))
#if OPS > 0
#define READ_HIT(pg)	/* bounded runs: CHECK_INV covers every read */
#else
/* read hit (S, M, or S while upgrading): must see the latest write */
#define READ_HIT(pg) \
	:: d_step { READABLE(C(pg)) -> assert(cval[C(pg)] == latest[pg]) }
#endif

#define GUEST(pg) \
	READ_HIT(pg) \
	/* write hit: only in M */ \
	:: d_step { OPOK && cst[C(pg)] == DSM_M -> \
		OPINC; cval[C(pg)] = (cval[C(pg)] + 1) % VMOD; \
		latest[pg] = cval[C(pg)]; CHECK_INV() } \
	/* read miss: reserve a slot, ask home */ \
	:: d_step { OPOK && cst[C(pg)] == DSM_I && held[h] < BUDGET -> \
		OPINC; cst[C(pg)] = DSM_IS_D; held[h]++; \
		SEND(h, HOME(pg), DSM_READ_REQ, pg, 0, 0) } \
	/* write miss */ \
	:: d_step { OPOK && cst[C(pg)] == DSM_I && held[h] < BUDGET -> \
		OPINC; cst[C(pg)] = DSM_IM_D; held[h]++; \
		SEND(h, HOME(pg), DSM_WRITE_REQ, pg, 0, 0) } \
	/* write to an S copy: upgrade (keeps its slot and its data) */ \
	:: d_step { OPOK && cst[C(pg)] == DSM_S -> \
		OPINC; cst[C(pg)] = DSM_SM_D; \
		SEND(h, HOME(pg), DSM_WRITE_REQ, pg, 0, 0) } \
	/* evict S: drop, tell home; no ack */ \
	:: d_step { OPOK && cst[C(pg)] == DSM_S -> \
		OPINC; cst[C(pg)] = DSM_I; cval[C(pg)] = 0; held[h]--; \
		SEND(h, HOME(pg), DSM_EVICT, pg, 0, 0); CHECK_INV() } \
	/* evict M: write back to home; no ack */ \
	:: d_step { OPOK && cst[C(pg)] == DSM_M -> \
		OPINC; SEND(h, HOME(pg), DSM_WB, pg, 0, cval[C(pg)]); \
		cst[C(pg)] = DSM_I; cval[C(pg)] = 0; held[h]--; CHECK_INV() }

proctype Guest(byte h)
{
end:
	do
	GUEST(0)
#if P > 1
	GUEST(1)
#endif
#if P > 2
	GUEST(2)
#endif
	od
}

/* Nothing can move: that must be because nothing is left to do. */
#define QUIET_PAGE(p) \
	(!DIR_BUSY(p) && empty(dq[p]) && \
	 !TRANSIENT(0 * P + (p)) && (N < 2 || !TRANSIENT(1 * P + (p))) && \
	 (N < 3 || !TRANSIENT(2 * P + (p))) && (N < 4 || !TRANSIENT(3 * P + (p))))

active proctype Quiescence()
{
end:
	timeout ->
	d_step {
		for (hi : 0 .. N * N - 1) {
			assert(empty(ch[hi]))
		}
		for (hi : 0 .. P - 1) {
			assert(QUIET_PAGE(hi))
		}
		hi = 0
	}
}

init
{
	byte s, d;
	assert(N <= 4 && P <= 3);	/* QUIET_PAGE, GUEST() */
	atomic {
		for (s : 0 .. P - 1) {
			dst[s] = DSM_DIR_I; owner[s] = NONE; cur[s] = NONE
		}
		for (s : 0 .. N - 1) {
			for (d : 0 .. N - 1) {
				run Rx(s, d)
			}
		}
		for (s : 0 .. N - 1) {
			run Guest(s)
		}
		s = 0; d = 0
	}
}

#ifdef LIVE
/* A pending request of host LH on page LP is always eventually answered. */
#define PEND	(cst[LH * P + LP] >= DSM_IS_D)
ltl resp { [] (PEND -> <> !PEND) }
#endif
