#!/usr/bin/env bash
# `make demo`: build the project kernel (cached), boot it on 2 vCPUs (on
# /dev/kvm, or in the lab: docs/lab.md), run the
# kernel's own locktorture to "End of test: SUCCESS", and power off.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-build/linux}
SECS=${SECS:-30}
echo "demo: building the project kernel (cached after the first run)"
scripts/build-linux-guest.sh "$OUT"
log=build/demo.log
# No user space: the kernel waits for a root disk that never comes while
# the torture test runs, then locktorture powers the guest off.
cmdline="console=ttyS0 root=/dev/vda rootwait rcutorture.torture_type=none locktorture.shutdown_secs=$SECS locktorture.stat_interval=10"
echo "demo: booting $OUT/vmlinux on 2 vCPUs: slos run --cmdline \"$cmdline\""
start=$(date +%s.%N)
set +e
# On /dev/kvm, or in the lab where there is none (scripts/kvm.sh).
scripts/kvm.sh run -- build/slos run --kernel "$OUT/vmlinux" --vcpus 2 --mem 512M --stats \
	--cmdline "$cmdline" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
secs=$(echo "$(date +%s.%N) - $start" | bc)
echo
if [ "$rc" -eq 0 ] && grep -q 'End of test: SUCCESS' "$log"; then
	cpus=$(grep -o 'Brought up [0-9]* node[s]*, [0-9]* CPUs' "$log" | head -n1)
	echo "demo: OK in ${secs}s: ${cpus:-2 CPUs}, locktorture ran ${SECS}s to 'End of test: SUCCESS', guest powered off (exit status 0)"
else
	echo "demo: FAILED (exit status $rc) after ${secs}s; console log in $log" >&2
	exit 1
fi
