// SPDX-License-Identifier: MIT
/* The 16550A as Linux's 8250 driver probes and drives it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/uart.h"

static int irqs, level;
static void irq(void *arg, bool l)
{
	level = l;
	irqs++;
}

static uint8_t rd(struct uart *u, unsigned off)
{
	uint8_t b;
	struct io_dev *d = uart__io(u);

	d->access(d, off, &b, 1, false);
	return b;
}

static void wr(struct uart *u, unsigned off, uint8_t v)
{
	struct io_dev *d = uart__io(u);

	d->access(d, off, &v, 1, true);
}

Test(uart, output_goes_out_line_by_line)
{
	int p[2];
	char buf[64] = { 0 };

	cr_assert_eq(pipe(p), 0);
	struct uart *u = uart__new(p[1], irq, NULL);
	for (const char *s = "hello\nwor"; *s; s++)
		wr(u, 0, *s);
	cr_assert_eq(read(p[0], buf, sizeof(buf)), 6);
	cr_expect_str_eq(buf, "hello\n");
	uart__flush(u);
	cr_assert_eq(read(p[0], buf, sizeof(buf)), 3);
	uart__free(u);
	close(p[0]);
	close(p[1]);
}

static char hooked[128];
static void on_line(void *arg, const char *line, size_t len)
{
	snprintf(hooked, sizeof(hooked), "%.*s", (int)len, line);
}

/* The main loop flushes partial lines every 20 ms: the line hook
 * (--snapshot-when) must still see the line whole, and no byte goes out
 * twice. */
Test(uart, partial_flush_keeps_the_line_for_its_hook)
{
	int p[2];
	char buf[64] = { 0 };

	cr_assert_eq(pipe(p), 0);
	struct uart *u = uart__new(p[1], irq, NULL);
	uart__on_line(u, on_line, NULL);
	for (const char *s = "round "; *s; s++)
		wr(u, 0, *s);
	uart__flush(u);
	uart__flush(u);
	cr_assert_eq(read(p[0], buf, sizeof(buf)), 6);
	for (const char *s = "3/8\n"; *s; s++)
		wr(u, 0, *s);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(read(p[0], buf, sizeof(buf)), 4);
	cr_expect_str_eq(buf, "3/8\n");
	cr_expect_str_eq(hooked, "round 3/8");
	uart__free(u);
	close(p[0]);
	close(p[1]);
}

Test(uart, probe_scratch_fifo_loopback)
{
	struct uart *u = uart__new(-1, irq, NULL);

	wr(u, 7, 0x5a);
	cr_expect_eq(rd(u, 7), 0x5a);
	wr(u, 2, 0x01); /* FIFO enable: IIR shows a 16550A */
	cr_expect_eq(rd(u, 2) & 0xc0, 0xc0);
	wr(u, 4, 0x1a); /* loopback, OUT2, RTS */
	cr_expect_eq(rd(u, 6) & 0xf0, 0x90);
	wr(u, 0, 'x'); /* loops back into the receiver */
	cr_expect(rd(u, 5) & 1);
	cr_expect_eq(rd(u, 0), 'x');
	wr(u, 3, 0x80); /* DLAB: divisor latch */
	wr(u, 0, 12);
	cr_expect_eq(rd(u, 0), 12);
	uart__free(u);
}

Test(uart, input_raises_rx_interrupt)
{
	struct uart *u = uart__new(-1, irq, NULL);

	irqs = 0;
	wr(u, 1, 0x01); /* IER: rx */
	cr_expect_eq(uart__input(u, (const uint8_t *)"ab", 2), 2);
	cr_expect(level);
	cr_expect_eq(rd(u, 2) & 0x0f, 0x04);
	cr_expect_eq(rd(u, 0), 'a');
	cr_expect_eq(rd(u, 0), 'b');
	cr_expect(!level);
	cr_expect_eq(rd(u, 2) & 0x01, 1);
	uart__free(u);
}

Test(uart, thr_empty_interrupt_acked_by_iir_read)
{
	struct uart *u = uart__new(-1, irq, NULL);

	wr(u, 1, 0x02);
	cr_expect(level);
	cr_expect_eq(rd(u, 2) & 0x0f, 0x02);
	cr_expect(!level);
	wr(u, 0, 'z');
	cr_expect(level);
	uart__free(u);
}

Test(uart, rx_fifo_bounded)
{
	static uint8_t big[UART_RX_FIFO + 100];
	struct uart *u = uart__new(-1, NULL, NULL);

	cr_expect_eq(uart__input(u, big, sizeof(big)), UART_RX_FIFO);
	cr_expect_eq(uart__rx_space(u), 0);
	uart__free(u);
}

/* A snapshot keeps the registers and the input the guest has not read. */
Test(uart, save_and_load)
{
	static struct uart_state s;
	struct uart *a = uart__new(-1, irq, NULL), *b;

	wr(a, 3, 0x80); /* DLAB: divisor 0x0c01 */
	wr(a, 0, 0x01);
	wr(a, 1, 0x0c);
	wr(a, 3, 0x03);
	wr(a, 1, 0x01); /* RDI */
	wr(a, 7, 0x5a);
	cr_assert_eq(uart__input(a, (const uint8_t *)"xyz", 3), 3);
	cr_expect_eq(rd(a, 0), 'x');
	uart__save(a, &s);
	b = uart__new(-1, irq, NULL);
	cr_assert_eq(uart__load(b, &s), 0);
	cr_expect_eq(rd(b, 3), 0x03);
	cr_expect_eq(rd(b, 1), 0x01);
	cr_expect_eq(rd(b, 7), 0x5a);
	cr_expect_eq(rd(b, 5) & 1, 1, "data ready");
	cr_expect_eq(rd(b, 0), 'y');
	cr_expect_eq(rd(b, 0), 'z');
	cr_expect_eq(rd(b, 5) & 1, 0);
	wr(b, 3, 0x80);
	cr_expect_eq(rd(b, 0), 0x01);
	cr_expect_eq(rd(b, 1), 0x0c);
	/* From an untrusted file: refused, not trusted. */
	s.rx_len = UART_RX_FIFO + 1;
	cr_expect_eq(uart__load(b, &s), -1);
	uart__free(a);
	uart__free(b);
}
