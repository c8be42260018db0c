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

#endif
