/* SPDX-License-Identifier: MIT */
/*
 * A 16550A UART (the guest's COM1): output goes to a host fd line by line,
 * input comes from the host through uart__input. Its interrupt line is
 * driven through a callback (the IOAPIC pin on the I/O host).
 */
#ifndef SLOS_UART_H
#define SLOS_UART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/io.h"

#define UART_COM1_BASE 0x3f8
#define UART_COM1_IRQ  4
#define UART_RX_FIFO   4096
#define UART_LINE_MAX  1024

struct uart;

/* What a snapshot keeps of the UART (vmm/snapshot.h): registers and the
 * input not yet read by the guest; a partial output line is flushed. */
struct uart_state {
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	uint8_t thr_pending, irq_level;
	uint8_t pad[3];
	uint32_t rx_len;
	uint8_t rx[UART_RX_FIFO];
};

typedef void (*uart_irq_fn)(void *arg, bool level);
/* Called with every complete console line (without the newline). */
typedef void (*uart_line_fn)(void *arg, const char *line, size_t len);

struct uart *uart__new(int out_fd, uart_irq_fn irq, void *irq_arg);
void uart__free(struct uart *u);
struct io_dev *uart__io(struct uart *u);
void uart__on_line(struct uart *u, uart_line_fn fn, void *arg);
/* Queue host input for the guest; returns how many bytes were taken. */
size_t uart__input(struct uart *u, const uint8_t *buf, size_t len);
size_t uart__rx_space(struct uart *u);
/* Write out a partial line (prompts); called from the host's main loop. */
void uart__flush(struct uart *u);
void uart__save(struct uart *u, struct uart_state *s);
/* -1 if s is not a state this UART can be in (from an untrusted file). */
int uart__load(struct uart *u, const struct uart_state *s);

#endif
