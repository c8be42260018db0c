#!/bin/bash
# Runs every test OS test under slos with each vCPU count and checks the
# exit status and the final `TEST <name> PASS|FAIL` line. Usage:
#   guest/testos/check.sh [SLOS [ELF [VCPUS...]]]
# defaults: build/slos build/guest/testos.elf 1 2 4. Exits 1 if any failed.
set -u
slos=${1:-build/slos}
elf=${2:-build/guest/testos.elf}
shift $(($# < 2 ? $# : 2))
vcpus=${*:-1 2 4}
fails=0

# name, command-line extras, expected exit status[, status with 1 vCPU].
# pingpong-page runs fewer rounds: with more vCPUs than host cores every
# pass waits for the host scheduler (~2 ms each with 4 vCPUs on 2 cores).
cases=(
	"smp-hello||0"
	"counter||0"
	"memwalk||0"
	"ipi-pingpong||0"
	"exit-cost||0"
	"ud2-cost||0"
	"mp-litmus||0|1"
	"pingpong-page|rounds=200|0"
	"fault|kind=pf|3"
	"fault|kind=kgp|3"
	"no-such-test||2"
)

for n in $vcpus; do
	for c in "${cases[@]}"; do
		IFS='|' read -r name extra want want1 <<<"$c"
		[ "$n" = 1 ] && [ -n "$want1" ] && want=$want1
		out=$(timeout 300 "$slos" run --kernel "$elf" --vcpus "$n" \
			--cmdline "test=$name $extra" 2>&1)
		rc=$?
		last=$(grep '^TEST ' <<<"$out" | tail -1)
		if [ "$rc" = "$want" ] && [ -n "$last" ]; then
			echo "ok   vcpus=$n $name $extra (exit $rc) $last"
		else
			echo "FAIL vcpus=$n $name $extra: exit $rc, want $want"
			sed 's/^/    /' <<<"$out" | tail -20
			fails=$((fails + 1))
		fi
	done
done
[ "$fails" = 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
