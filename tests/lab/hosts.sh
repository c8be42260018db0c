#!/usr/bin/env bash
# Host loss over genuinely separate kernels and NICs: run inside lab host 0
# of `scripts/lab.sh --hosts 3 -- tests/lab/hosts.sh` (docs/lab.md). Lab
# hosts 1 and 2 run `slos host`; their QEMU monitors cut a host's link or
# power it off while a VM runs over it. Prints one line a check and
# "lab-hosts: N passed, N failed"; exits non-zero if a check failed.
set -uo pipefail
cd "$(dirname "$0")/../.."

: "${SLOS_LAB_HOSTS:?run me with scripts/lab.sh --hosts 3}"
slos=${SLOS_BIN:-build/slos}
testos=build/guest/testos.elf
IFS=, read -r h1 h2 _ <<<"$SLOS_LAB_HOSTS"
read -r mon1 mon2 _ <<<"$SLOS_LAB_MONITORS"
[ -n "$h2" ] && [ -n "$mon2" ] || { echo "lab-hosts: needs 3 lab hosts (scripts/lab.sh --hosts 3)" >&2; exit 2; }
out=$(mktemp -d)
passed=0 failed=0

ok() { echo "PASS $1"; passed=$((passed + 1)); }
bad() {
	echo "FAIL $1"
	sed 's/^/    /' "$2" | tail -n 15
	failed=$((failed + 1))
}

# One command to a lab host's QEMU monitor (ADDR:PORT).
monitor() {
	exec 3<>"/dev/tcp/${1%:*}/${1#*:}" || return 1
	sleep 0.3
	printf '%s\n' "$2" >&3
	sleep 0.5
	exec 3>&-
}

# A VM run over hosts in the background: its log in $out/$1.
vm() {
	local name=$1 hosts=$2 map=$3
	shift 3
	"$slos" run --name "$name" --kernel "$testos" --hosts "$hosts" \
		--key "$SLOS_LAB_KEY" --vcpus 3 --vcpu-map "$map" --cmdline "$*" >"$out/$name" 2>&1 &
	pid=$!
}

# Wait for pid to end within secs; its status (124 if it did not).
wait_for() {
	local pid=$1 secs=$2
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid"; return $?; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 124
}

started() {
	for ((i = 0; i < 600; i++)); do
		grep -q "testos: cmdline" "$1" && return 0
		sleep 0.1
	done
	return 1
}

# A counter VM over hosts (name, list, map) ends with the exact total.
counter() {
	local name=$1 hosts=$2 map=$3 what=$4 t=$SECONDS st
	vm "$name" "$hosts" "$map" test=counter iters=100000
	wait_for $pid 300
	st=$?
	if [ $st = 0 ] &&
		grep -q "counter: total=300000 expected=300000" "$out/$name"; then
		ok "$what: $((SECONDS - t)) s"
	else
		bad "$what: status $st" "$out/$name"
	fi
}

# 1. The VM over three kernels: each vCPU on its own lab host.
counter all "$h1,$h2" 0,1,2 "counter, vCPUs on 3 lab hosts"

# A VM over hosts (name, list, map) loses lab host n when `cmd` goes to its
# monitor mid-run: host 0 names it within the liveness deadline and ends
# with an error, and that host's VM process ends too.
host_lost() {
	local name=$1 hosts=$2 map=$3 n=$4 mon=$5 cmd=$6 what=$7 t st
	vm "$name" "$hosts" "$map" test=pingpong-page rounds=1000000
	if ! started "$out/$name"; then
		kill -KILL $pid 2>/dev/null
		bad "$what: the VM did not start" "$out/$name"
		return
	fi
	t=$SECONDS
	if ! monitor "$mon" "$cmd"; then
		"$slos" ctl "$name" stop >/dev/null 2>&1 || kill -TERM $pid
		wait_for $pid 30
		bad "$what: no monitor at $mon" "$out/$name"
		return
	fi
	wait_for $pid 60
	st=$?
	if [ $st != 0 ] && [ $st != 124 ] &&
		grep -q "host $n .*\(gone\|unreachable\)" "$out/$name"; then
		ok "$what: host 0 ended (status $st) after $((SECONDS - t)) s: $(grep -m1 "host $n " "$out/$name")"
	else
		bad "$what: status $st" "$out/$name"
	fi
}

# 2. Host 2 cut off (its NIC's link down), then back.
host_lost cut "$h1,$h2" 0,1,2 2 "$mon2" "set_link net0 off" "host 2 cut off"
monitor "$mon2" "set_link net0 on"

# 3. Host 1 powered off (QEMU quit).
host_lost off "$h1" 0,1,1 1 "$mon1" quit "host 1 powered off"

# 4. The survivor still serves, its link back.
counter after "$h2" 0,1,1 "host 2 serves a new VM after its link came back"

rm -rf "$out"
echo "lab-hosts: $passed passed, $failed failed"
[ "$failed" = 0 ]
