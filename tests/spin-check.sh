#!/usr/bin/env bash
# tests/spin-check.sh MODEL.pml [MODEL.pml ...]
#
# Model-checks Promela models with spin. Each model lists its checks in
# comment lines of the form
#   @check NAME | SPIN -D FLAGS | CC FLAGS | PAN FLAGS
# (e.g. "@check safety | -DP=1 | -DSAFETY -DNOCLAIM | -m2000000"); a model
# without any gets one safety + deadlock check. "@check-full" lines are
# longer checks, run only with SPIN_FULL=1. For each check: spin -a
# (with the -D flags), cc -O2 (with -DMEMLIM), ./pan, and the run fails on
# any error (assertion, invalid end state, acceptance cycle, never claim),
# on an incomplete search (depth limit, memory limit, time limit) or on a
# missing "errors: 0". A failing check replays its trail (last lines).
#
# A model may name the C header that shares its names:
#   @proto-header PATH          (relative to the repository root)
# Then every DSM_* identifier of the model must be defined in PATH, every
# "#define DSM_X N" of the model must equal DSM_X in C, and PATH must
# compile on its own with -Wall -Wextra -Werror.
#
# Environment: SPIN_FULL=1 adds the @check-full checks, SPIN_MEMLIM (MB per run, default 2048), SPIN_MINUTES (time
# limit per run, default 4), SPIN_KEEP=1 keeps the work directories.
# Prints one line per check and a closing summary line; exit status 0 only
# if every check of every model passed.
# shellcheck disable=SC2086 # the flag variables are word lists on purpose
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
memlim=${SPIN_MEMLIM:-2048}
minutes=${SPIN_MINUTES:-4}
cc=${CC:-cc}

[ $# -ge 1 ] || { echo "usage: $0 MODEL.pml..." >&2; exit 2; }
command -v spin >/dev/null || { echo "spin-check: spin is not installed (apt-get install spin)" >&2; exit 2; }

passed=0 failed=0 total_states=0
t_start=$(date +%s.%N)
failures=()

# The model's names against its C header.
check_header() {
	local model=$1 hdr=$2 tmp=$3 names missing n
	if [ ! -f "$hdr" ]; then
		echo "  header $hdr: missing"; return 1
	fi
	names=$(grep -v '^[[:space:]]*$' "$model" | grep -oE '\bDSM_[A-Z0-9_]+\b' | sort -u)
	missing=""
	for n in $names; do
		grep -qE "\\b$n\\b" "$hdr" || missing="$missing $n"
	done
	if [ -n "$missing" ]; then
		echo "  header $hdr: not defined there:$missing"; return 1
	fi
	{
		echo "#include \"$hdr\""
		# numeric states: the model's #define values are the C values
		sed -nE 's/^#define[[:space:]]+(DSM_[A-Z0-9_]+)[[:space:]]+([0-9]+)\b.*/_Static_assert(\1 == \2, "\1 differs between model and header");/p' "$model"
		echo "int spin_check_header_dummy;"
	} >"$tmp/hdr.c"
	if ! "$cc" -std=gnu11 -Wall -Wextra -Werror -I"$root" -c "$tmp/hdr.c" -o "$tmp/hdr.o" >"$tmp/hdr.log" 2>&1; then
		echo "  header $hdr: does not compile or differs from the model:"
		sed 's/^/    /' "$tmp/hdr.log" | head -20
		return 1
	fi
	return 0
}

# field NAME FILE: a number from pan's statistics
field() {
	case $1 in
	states) sed -nE 's/^[[:space:]]*([0-9.e+]+) states, stored.*/\1/p' "$2" | head -1 ;;
	depth) sed -nE 's/.*depth reached ([0-9]+).*/\1/p' "$2" | head -1 ;;
	errors) sed -nE 's/.*errors: ([0-9]+).*/\1/p' "$2" | head -1 ;;
	time) sed -nE 's/^pan: elapsed time ([0-9.e+]+) seconds.*/\1/p' "$2" | head -1 ;;
	mem) sed -nE 's/^[[:space:]]*([0-9.]+)[[:space:]]+total actual memory usage.*/\1/p' "$2" | head -1 ;;
	esac
}

run_check() {
	local model=$1 name=$2 sflags=$3 cflags=$4 pflags=$5 tmp=$6
	local dir="$tmp/$name" out st dp er tm mem why=""
	mkdir -p "$dir"
	cp "$model" "$dir/model.pml"
	out="$dir/pan.out"
	if ! (cd "$dir" && spin $sflags -a model.pml) >"$dir/spin.log" 2>&1; then
		why="spin -a failed"
	elif grep -qiE '^spin: .*error' "$dir/spin.log"; then
		why="spin -a reported errors"
	elif ! (cd "$dir" && "$cc" -O2 -w $cflags -DMEMLIM="$memlim" -o pan pan.c) >"$dir/cc.log" 2>&1; then
		why="cc failed"
	else
		(cd "$dir" && timeout $((minutes * 60 + 30)) ./pan -Q"$minutes" $pflags) >"$out" 2>&1
		local rc=$?
		er=$(field errors "$out")
		if [ "$rc" -eq 124 ]; then why="timed out"
		elif [ -z "$er" ]; then why="no result from pan (exit $rc)"
		elif [ "$er" != 0 ]; then why="$er error(s)"
		elif grep -q 'max search depth too small' "$out"; then why="depth limit reached (raise -m)"
		elif grep -qE 'Search not completed|reached -DMEMLIM bound|out of memory' "$out"; then why="search not completed (memory or time limit)"
		elif grep -qE '^pan:.*(error|violated)' "$out"; then why="pan reported an error"
		fi
	fi
	st=$(field states "$out" 2>/dev/null); dp=$(field depth "$out" 2>/dev/null)
	tm=$(field time "$out" 2>/dev/null); mem=$(field mem "$out" 2>/dev/null)
	local line
	line=$(printf '%s/%s: %%s, %s states, depth %s, %s s, %s MB' \
		"$(basename "$model" .pml)" "$name" "${st:-?}" "${dp:-?}" "${tm:-?}" "${mem:-?}")
	if [ -z "$why" ]; then
		# shellcheck disable=SC2059
		printf "$line\n" "ok"
		passed=$((passed + 1))
		total_states=$(awk -v a="$total_states" -v b="${st:-0}" 'BEGIN { printf "%.0f", a + b }')
		return 0
	fi
	# shellcheck disable=SC2059
	printf "$line\n" "FAILED ($why)"
	failed=$((failed + 1))
	failures+=("$(basename "$model" .pml)/$name")
	for f in spin.log cc.log; do
		[ -s "$dir/$f" ] && grep -iE 'error|warning' "$dir/$f" | head -10 | sed "s/^/  $f: /"
	done
	[ -f "$out" ] && grep -E '^pan|violated|error' "$out" | head -10 | sed 's/^/  pan: /'
	if [ -f "$dir/model.pml.trail" ]; then
		echo "  counterexample (replay: cd $dir && spin -t -p -g -s -r $sflags model.pml):"
		(cd "$dir" && spin -t -s -r -g $sflags model.pml) >"$dir/trail.txt" 2>&1
		echo "  last messages (step, process, line, message, channel):"
		grep -E 'Send|Recv|START OF CYCLE|violated|assert' "$dir/trail.txt" | tail -n 40 | sed 's/^/    /'
		echo "  final state:"
		# the global dump spin prints at the end of the trail
		awk '/^#processes/ { on = 1; next } on && /^[[:space:]]*[0-9]+:/ { on = 0 } on { print }' \
			"$dir/trail.txt" | tail -n 60 | sed 's/^[[:space:]]*/    /'
		SPIN_KEEP=1
	fi
	return 1
}

for model in "$@"; do
	if [ ! -f "$model" ]; then
		echo "spin-check: $model: no such file"; failed=$((failed + 1)); failures+=("$model"); continue
	fi
	model=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/spin-check.XXXXXX")
	hdr=$(sed -nE 's/.*@proto-header[[:space:]]+([^[:space:]*]+).*/\1/p' "$model" | head -1)
	if [ -n "$hdr" ]; then
		if check_header "$model" "$root/$hdr" "$tmp"; then
			echo "$(basename "$model" .pml)/names: ok, shared with $hdr"
			passed=$((passed + 1))
		else
			echo "$(basename "$model" .pml)/names: FAILED"
			failed=$((failed + 1)); failures+=("$(basename "$model" .pml)/names")
		fi
	fi
	if [ "${SPIN_FULL:-0}" = 1 ]; then
		checks=$(sed -nE 's/^[^@]*@check(-full)?[[:space:]]+(.*)$/\2/p' "$model")
	else
		checks=$(sed -nE 's/^[^@]*@check[[:space:]]+(.*)$/\1/p' "$model")
	fi
	checks=$(sed -E 's/[[:space:]]*\*\/[[:space:]]*$//' <<<"$checks")
	[ -n "$checks" ] || checks="safety | | -DSAFETY -DNOCLAIM | -m1000000"
	while IFS='|' read -r -u 3 name sflags cflags pflags; do
		name=$(echo "$name" | xargs)
		run_check "$model" "$name" "$(echo "$sflags" | xargs)" "$(echo "$cflags" | xargs)" \
			"$(echo "$pflags" | xargs)" "$tmp" </dev/null
	done 3<<<"$checks"
	if [ "${SPIN_KEEP:-0}" = 1 ]; then echo "spin-check: work files kept in $tmp"; else rm -rf "$tmp"; fi
done

secs=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
[ ${#failures[@]} -eq 0 ] || echo "spin-check: failed: ${failures[*]}"
echo "spin-check: $passed checks passed, $failed failed; $total_states states stored in all; $secs s"
[ "$failed" -eq 0 ]
