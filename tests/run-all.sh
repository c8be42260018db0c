#!/usr/bin/env bash
# Every test of `make test`: unit and integration tests on the plain build,
# then again on the ASan+UBSan build (all but the stock-kernel boot, which
# costs minutes here and runs once), the fuzzers for a bounded time, and the
# protocol models. Prints one closing line "tests: N passed, N failed, N
# skipped"; exits non-zero if anything failed.
#
# Only the integration tests need KVM: they run on /dev/kvm, or, where there
# is none, inside one lab VM (scripts/kvm.sh, scripts/lab.sh), which runs
# `tests/run-all.sh --kvm-part COUNTS` and leaves its totals in COUNTS.
set -uo pipefail
cd "$(dirname "$0")/.."

LOG=${LOG:-build/test-logs}
mkdir -p "$LOG"
passed=0 failed=0 skipped=0
failures=()

# Run one criterion binary; add its synthesis counts to the totals.
crit() {
	local name=$1; shift
	local log="$LOG/$name.log" rc
	echo "== $name"
	"$@" --verbose=0 >"$log" 2>&1
	rc=$?
	grep -E '^\[(----|FAIL|SKIP|====)\]' "$log" | grep -vE 'Criterion v|Running [0-9]+ test' | tail -n 40
	local syn p f c s
	syn=$(grep 'Synthesis:' "$log" | tail -n1)
	p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$syn")
	f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$syn")
	c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$syn")
	s=$(grep -c '^\[SKIP\]' "$log")
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0} + ${c:-0}))
	skipped=$((skipped + s))
	if [ "$rc" -ne 0 ] || [ -z "$syn" ]; then
		[ -z "$syn" ] && failed=$((failed + 1))
		failures+=("$name")
	fi
}

# Run a shell check; counts as one test.
check() {
	local name=$1; shift
	echo "== $name"
	if "$@" >"$LOG/$name.log" 2>&1; then
		passed=$((passed + 1))
		tail -n 3 "$LOG/$name.log"
	else
		failed=$((failed + 1))
		failures+=("$name")
		tail -n 30 "$LOG/$name.log"
	fi
}

# The tests that need KVM. Linux snapshots the plain pass takes and the
# ASan pass restores sit on a local file system (the lab's /tmp is its own).
kvm_part() {
	export SLOS_LINUX_SNAPSHOTS="$LOG/snapshots"
	[ -n "${SLOS_IN_LAB:-}" ] && SLOS_LINUX_SNAPSHOTS=/tmp/slos-snapshots
	rm -rf "$SLOS_LINUX_SNAPSHOTS"
	for b in build/tests/integration/*; do
		[ -x "$b" ] && crit "integration-$(basename "$b")" "$b" --jobs 1
	done
	for b in build-asan/tests/integration/*; do
		[ -x "$b" ] || continue
		SLOS_BIN=build-asan/slos SLOS_NO_STOCK=1 \
			crit "asan-integration-$(basename "$b")" "$b" --jobs 1
	done
	rm -rf "$SLOS_LINUX_SNAPSHOTS"
}

if [ "${1:-}" = --kvm-part ]; then
	kvm_part
	{
		echo "lab_passed=$passed lab_failed=$failed lab_skipped=$skipped"
		echo "lab_failures=(${failures[*]:-})"
	} >"$2"
	exit 0
fi

t0=$(date +%s)
kind=$(scripts/kvm.sh kind) || exit 1
# The Linux guests (cached after the first build); their tests skip with a
# message if this fails, and the failure counts.
check linux-guest-build scripts/build-linux-guest.sh build/linux
for b in build/tests/unit/*; do
	[ -x "$b" ] && crit "unit-$(basename "$b")" "$b"
done
for b in build-asan/tests/unit/*; do
	[ -x "$b" ] && crit "asan-unit-$(basename "$b")" "$b"
done
if [ "$kind" = lab ]; then
	counts="$LOG/kvm-part.counts"
	rm -f "$counts"
	echo "== lab: the integration tests in one lab VM (scripts/lab.sh)"
	scripts/lab.sh --timeout "${SLOS_LAB_TIMEOUT:-3000}" -- \
		tests/run-all.sh --kvm-part "$counts"
	rc=$?
	if [ -f "$counts" ]; then
		lab_failures=()
		. "$counts"
		passed=$((passed + lab_passed)) failed=$((failed + lab_failed))
		skipped=$((skipped + lab_skipped))
		failures+=(${lab_failures[@]+"${lab_failures[@]}"})
	fi
	if [ "$rc" -ne 0 ]; then
		# The lab itself failed (timeout, a kernel bug, QEMU): loud.
		failed=$((failed + 1))
		failures+=("lab(exit $rc)")
	fi
else
	kvm_part
fi
if grep -q '^fuzz-run:' tests/fuzz/fuzz.mk 2>/dev/null; then
	check fuzz make -s fuzz-run FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
fi
for m in fabric/*.pml vmm/*.pml; do
	[ -f "$m" ] && check "spin-$(basename "$m" .pml)" tests/spin-check.sh "$m"
done

echo "== ran in $(( $(date +%s) - t0 )) s; logs in $LOG/"
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ ${#failures[@]} -eq 0 ]
