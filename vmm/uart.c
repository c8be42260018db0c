// SPDX-License-Identifier: MIT
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/uart.h"

enum { RBR = 0, IER, IIR, LCR, MCR, LSR, MSR, SCR };

#define IER_RDI	 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI	 0x04
#define IIR_FIFO 0xc0
#define LCR_DLAB 0x80
#define LSR_DR	 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define FCR_FIFO 0x01
#define FCR_CLRR 0x02

struct uart {
	struct io_dev io;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_pending; /* THR-empty interrupt not yet acknowledged */
	bool irq_level;
	uint8_t rx[UART_RX_FIFO];
	size_t rx_head, rx_len;
	char line[UART_LINE_MAX];
	size_t line_len;
	size_t line_out; /* of line_len, how much was written out already */
	int out_fd;
	uart_irq_fn irq;
	void *irq_arg;
	uart_line_fn on_line;
	void *line_arg;
};

static uint8_t iir(struct uart *u)
{
	uint8_t fifo = (u->fcr & FCR_FIFO) ? IIR_FIFO : 0;

	if ((u->ier & IER_RDI) && u->rx_len)
		return IIR_RDI | fifo;
	if ((u->ier & IER_THRI) && u->thr_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

/* Called with the lock held; the callback only queues an interrupt. */
static void update_irq(struct uart *u)
{
	bool level = !(iir(u) & IIR_NONE);

	if (level != u->irq_level) {
		u->irq_level = level;
		if (u->irq)
			u->irq(u->irq_arg, level);
	}
}

/*
 * Write out what the line holds that was not written yet. A partial flush
 * (the main loop's, every 20 ms) keeps the line, so the line hook still
 * sees it whole when its newline comes; only a full buffer starts over.
 */
static void flush_line(struct uart *u, bool complete)
{
	size_t n = u->line_len, off = u->line_out;

	if (n == off && !complete)
		return;
	if (complete)
		u->line[n++] = '\n';
	while (u->out_fd >= 0 && off < n) {
		ssize_t w = write(u->out_fd, u->line + off, n - off);
		if (w <= 0)
			break;
		off += w;
	}
	u->line_out = u->line_len;
	if (complete && u->on_line)
		u->on_line(u->line_arg, u->line, u->line_len);
	if (complete || u->line_len == UART_LINE_MAX - 1)
		u->line_len = u->line_out = 0;
}

static void put_char(struct uart *u, uint8_t c)
{
	if (c == '\n') {
		flush_line(u, true);
		return;
	}
	/* One slot stays free for the newline flush_line appends. */
	if (u->line_len == UART_LINE_MAX - 1)
		flush_line(u, false);
	u->line[u->line_len++] = c;
}

static void rx_push(struct uart *u, uint8_t c)
{
	if (u->rx_len < UART_RX_FIFO)
		u->rx[(u->rx_head + u->rx_len++) % UART_RX_FIFO] = c;
}

static uint8_t reg_read(struct uart *u, unsigned reg)
{
	uint8_t v;

	switch (reg) {
	case RBR:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (!u->rx_len)
			return 0;
		v = u->rx[u->rx_head];
		u->rx_head = (u->rx_head + 1) % UART_RX_FIFO;
		u->rx_len--;
		return v;
	case IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case IIR:
		v = iir(u);
		if ((v & 0x0f) == IIR_THRI)
			u->thr_pending = false;
		return v;
	case LCR:
		return u->lcr;
	case MCR:
		return u->mcr;
	case LSR:
		return LSR_THRE | LSR_TEMT | (u->rx_len ? LSR_DR : 0);
	case MSR:
		/* Loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD;
		 * otherwise the line is up (DCD, DSR, CTS). */
		if (u->mcr & MCR_LOOP)
			return ((u->mcr & 0x02) << 3) | ((u->mcr & 0x01) << 5) |
			       ((u->mcr & 0x04) << 4) | ((u->mcr & 0x08) << 4);
		return 0xb0;
	default:
		return u->scr;
	}
}

static void reg_write(struct uart *u, unsigned reg, uint8_t v)
{
	switch (reg) {
	case RBR:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
		} else if (u->mcr & MCR_LOOP) {
			rx_push(u, v);
		} else {
			put_char(u, v);
			/* Transmission is instant: THR is empty again. */
			u->thr_pending = true;
		}
		break;
	case IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* Enabling THRI with THR empty raises it at once. */
		if ((v & IER_THRI) && !(u->ier & IER_THRI))
			u->thr_pending = true;
		u->ier = v & 0x0f;
		break;
	case IIR:
		u->fcr = v;
		if (v & FCR_CLRR)
			u->rx_len = 0;
		break;
	case LCR:
		u->lcr = v;
		break;
	case MCR:
		u->mcr = v & 0x1f;
		break;
	case SCR:
		u->scr = v;
		break;
	default: /* LSR, MSR are read-only */
		break;
	}
}

static void uart_access(struct io_dev *d, uint64_t off, uint8_t *data,
			unsigned size, bool write)
{
	struct uart *u = d->priv;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < size && off + i < 8; i++) {
		if (write)
			reg_write(u, off + i, data[i]);
		else
			data[i] = reg_read(u, off + i);
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

struct uart *uart__new(int out_fd, uart_irq_fn irq, void *irq_arg)
{
	struct uart *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	pthread_mutex_init(&u->lock, NULL);
	u->out_fd = out_fd;
	u->irq = irq;
	u->irq_arg = irq_arg;
	u->mcr = 0x08; /* OUT2: interrupts routed, as firmware leaves it */
	u->io = (struct io_dev){ .name = "uart", .base = UART_COM1_BASE,
				 .len = 8, .access = uart_access, .priv = u };
	return u;
}

void uart__free(struct uart *u)
{
	if (!u)
		return;
	uart__flush(u);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

struct io_dev *uart__io(struct uart *u)
{
	return &u->io;
}

void uart__on_line(struct uart *u, uart_line_fn fn, void *arg)
{
	pthread_mutex_lock(&u->lock);
	u->on_line = fn;
	u->line_arg = arg;
	pthread_mutex_unlock(&u->lock);
}

size_t uart__input(struct uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&u->lock);
	while (n < len && u->rx_len < UART_RX_FIFO)
		rx_push(u, buf[n++]);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

size_t uart__rx_space(struct uart *u)
{
	pthread_mutex_lock(&u->lock);
	size_t n = UART_RX_FIFO - u->rx_len;
	pthread_mutex_unlock(&u->lock);
	return n;
}

void uart__flush(struct uart *u)
{
	pthread_mutex_lock(&u->lock);
	flush_line(u, false);
	pthread_mutex_unlock(&u->lock);
}

void uart__save(struct uart *u, struct uart_state *s)
{
	pthread_mutex_lock(&u->lock);
	flush_line(u, false);
	memset(s, 0, sizeof(*s));
	*s = (struct uart_state){ .ier = u->ier, .lcr = u->lcr, .mcr = u->mcr,
				  .scr = u->scr, .fcr = u->fcr, .dll = u->dll,
				  .dlm = u->dlm, .thr_pending = u->thr_pending,
				  .irq_level = u->irq_level,
				  .rx_len = u->rx_len };
	for (size_t i = 0; i < u->rx_len; i++)
		s->rx[i] = u->rx[(u->rx_head + i) % UART_RX_FIFO];
	pthread_mutex_unlock(&u->lock);
}

int uart__load(struct uart *u, const struct uart_state *s)
{
	if (s->rx_len > UART_RX_FIFO || s->ier > 0x0f || s->mcr > 0x1f ||
	    s->thr_pending > 1 || s->irq_level > 1)
		return -1;
	pthread_mutex_lock(&u->lock);
	u->ier = s->ier;
	u->lcr = s->lcr;
	u->mcr = s->mcr;
	u->scr = s->scr;
	u->fcr = s->fcr;
	u->dll = s->dll;
	u->dlm = s->dlm;
	u->thr_pending = s->thr_pending;
	/* The line's level is the IOAPIC's to remember (its own state);
	 * recompute ours so the next change is an edge it sees. */
	u->irq_level = s->irq_level;
	u->rx_head = 0;
	u->rx_len = s->rx_len;
	memcpy(u->rx, s->rx, s->rx_len);
	u->line_len = u->line_out = 0;
	pthread_mutex_unlock(&u->lock);
	return 0;
}
