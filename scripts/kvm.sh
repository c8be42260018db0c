#!/usr/bin/env bash
# Which KVM `make test` and `make demo` use, and running a command on it.
#   scripts/kvm.sh kind          prints pvm | amd | intel | lab
#   scripts/kvm.sh banner WHAT   prints "WHAT: KVM: ..." (their first line)
#   scripts/kvm.sh run -- CMD... runs CMD on /dev/kvm, or in the lab
# /dev/kvm usable: used directly. Absent: the lab (scripts/lab.sh, a QEMU TCG
# VM whose emulated SVM gives a stock kernel kvm-amd). SLOS_LAB=1 forces
# the lab, SLOS_LAB=0 forbids it. The PVM test mirrors vmm/kvm_kind.c.
set -euo pipefail
cd "$(dirname "$0")/.."

kvm_usable() {
	[ -c /dev/kvm ] && { exec 3<>/dev/kvm; } 2>/dev/null && exec 3>&-
}

kind() {
	local lab=${SLOS_LAB:-}
	if [ -n "${SLOS_IN_LAB:-}" ]; then
		lab=0
	fi
	if [ "$lab" != 1 ] && kvm_usable; then
		if [ -e /sys/module/kvm_pvm ] && [ ! -e /sys/module/kvm_intel ] &&
			[ ! -e /sys/module/kvm_amd ]; then
			echo pvm
		elif [ -e /sys/module/kvm_amd ]; then
			echo amd
		else
			echo intel
		fi
		return
	fi
	if [ "$lab" = 0 ]; then
		local why=absent
		[ -e /dev/kvm ] && why="not a device"
		[ -c /dev/kvm ] && why="cannot open it: $(id -un) needs read-write access"
		echo "kvm: no usable /dev/kvm here ($why) and SLOS_LAB=0 forbids the lab; unset SLOS_LAB to run in a QEMU TCG lab (scripts/lab.sh)" >&2
		return 1
	fi
	echo lab
}

describe() {
	case $1 in
	pvm) echo "PVM (/dev/kvm, kvm_pvm: guest ring 0 emulated), run directly" ;;
	amd) echo "hardware (/dev/kvm, kvm_amd), run directly" ;;
	intel) echo "hardware (/dev/kvm, kvm_intel), run directly" ;;
	lab)
		local why="no usable /dev/kvm here"
		[ "${SLOS_LAB:-}" = 1 ] && why="SLOS_LAB=1"
		echo "lab: kvm-amd on QEMU TCG's emulated SVM (scripts/lab.sh; $why)" ;;
	esac
}

cmd=${1:-}
shift || true
case $cmd in
kind) kind ;;
banner)
	k=$(kind)
	echo "${1:-slos}: KVM: $(describe "$k")" ;;
run)
	[ "${1:-}" = -- ] && shift
	[ $# -gt 0 ] || { echo "usage: scripts/kvm.sh run -- CMD..." >&2; exit 2; }
	k=$(kind)
	if [ "$k" = lab ]; then
		exec scripts/lab.sh -- "$@"
	fi
	exec "$@" ;;
*)
	echo "usage: scripts/kvm.sh kind | banner WHAT | run -- CMD..." >&2
	exit 2 ;;
esac
