#!/usr/bin/env bash
# The part of `make demo` that runs where the KVM is (on this machine, or
# inside the lab): `slos run ARGS...` with its output on stdout, and a
# snapshot of every host's counters (`slos stat`) as the guest's script
# reaches /init's demo and as it ends, so the summary can tell boot from
# apps.
#   scripts/demo-run.sh DIR SLOS ARGS...   (ARGS after `slos run`)
# Writes DIR/stat-init.txt, DIR/stat-done.txt and DIR/status-done.txt
# (`slos ctl` status: where each vCPU runs as the apps end); exits with slos's status
# (124 when DEMO_TIMEOUT ran out).
set -uo pipefail
dir=$1 slos=$2
shift 2
name=demo-$$
rm -f "$dir/stat-init.txt" "$dir/stat-done.txt" "$dir/status-done.txt"
# A VM that stalls is stopped (SIGTERM: slos ends every host) after
# DEMO_TIMEOUT seconds, and killed 20 s later.
timeout -k 20 "${DEMO_TIMEOUT:-900}" "$slos" run --name "$name" "$@" 2>&1 |
	while IFS= read -r line || [ -n "$line" ]; do
	printf '%s\n' "$line"
	case $line in
	*"SLOS-DEMO init after"*) "$slos" stat "$name" >"$dir/stat-init.txt" 2>&1 ;;
	*"SLOS-DEMO done after"*)
		"$slos" stat "$name" >"$dir/stat-done.txt" 2>&1
		"$slos" ctl "$name" status >"$dir/status-done.txt" 2>&1 ;;
	esac
done
exit "${PIPESTATUS[0]}"
