/* SPDX-License-Identifier: MIT */
/*
 * The I/O host's small platform devices:
 *  - the ACPI power device (ACPI_PM_PORT): power-off and reset end the VM
 *    with status 0;
 *  - the test-exit device (port TESTEXIT_PORT, like QEMU's isa-debug-exit
 *    but the value written *is* the exit status), for guests under test;
 *  - the echo port (ECHO_PORT): answers at once, the floor for exit costs;
 *  - the keyboard controller's reset line (0x64 <- 0xfe) and port 0x92;
 *  - ports a PC has that this VM leaves empty (PIC, PIT, POST 0x80, PCI
 *    config), claimed so they read as all ones without counting as strays.
 */
#ifndef SLOS_SYSDEV_H
#define SLOS_SYSDEV_H

#define TESTEXIT_PORT 0x501
#define ECHO_PORT     0x510

struct vm;
int sysdev__init(struct vm *vm);

#endif
