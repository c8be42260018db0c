#!/usr/bin/env bash
# scripts/lab.sh [--cpus N] [--mem SIZE] [--timeout S] [--hosts N] -- CMD...
#
# Run CMD as root inside a lab VM and exit with CMD's status, its output
# streamed. The lab is what a machine without /dev/kvm tests on: QEMU's TCG
# emulates AMD SVM with nested paging, so Debian's stock kernel (package
# linux-image-amd64) loads kvm-amd and offers an ordinary /dev/kvm
# (docs/lab.md). The host's root is the lab's root over 9p (same paths,
# writable), /tmp and /run are the lab's own tmpfs. The lab's kernel log is
# kept in the run directory and shown when the lab fails.
#
# --hosts N: N lab VMs, each its own kernel and KVM, on a bridge of their own
# (a network namespace on this machine, a tap and a virtio-net NIC each;
# lab h at 10.98.0.(h+1)). Lab 0 runs CMD; labs 1..N-1 run `slos host
# --listen 10.98.0.(h+1):7100` with a key made for the run. CMD gets
# SLOS_LAB_HOSTS (their addresses, for `slos run --hosts`), SLOS_LAB_KEY (the
# key file) and SLOS_LAB_MONITORS (their QEMU monitors, ADDR:PORT on the
# labs' network, host 1 first: `set_link net0 off` cuts a host off, `quit`
# powers it off). Each lab gets 1 CPU and 3G unless --cpus/--mem say
# otherwise.
#
# Exit status: CMD's; 124 when --timeout ran out; 125 for a lab failure
# (the lab's kernel panicked or reported a bug, QEMU failed, no boot within
# --boot-timeout); 127 when CMD is not found; 2 for bad usage or a missing
# dependency. Nothing is left running on any exit path.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me=lab
cpus=${SLOS_LAB_CPUS:-}
mem=${SLOS_LAB_MEM:-}
hosts=1
timeout=${SLOS_LAB_TIMEOUT:-3600}
boot_timeout=${SLOS_LAB_BOOT_TIMEOUT:-180}
# No heartbeat from the lab's kernel for this long: the lab is wedged.
wedge=${SLOS_LAB_WEDGE:-120}
# No TSC-deadline timer, so the lab's kernel runs its local APIC timer in
# periodic mode (below): see `tick`.
cpu_model=${SLOS_LAB_CPU:-max,xsave=off,-tsc-deadline}
accel=${SLOS_LAB_ACCEL:-tcg,thread=multi}
# Shadow paging in the lab's KVM: with QEMU 7.2's emulated nested paging,
# two KVM VMs running at once (two tests, or two hosts of one VM) made one
# of them triple-fault or hang within seconds (docs/lab.md).
lab_kvm=${SLOS_LAB_KVM-kvm_amd.npt=0}
keep=0

err() { printf '%s: %s\n' "$me" "$*" >&2; }
usage() {
	err "usage: scripts/lab.sh [--cpus N] [--mem SIZE] [--timeout S] [--boot-timeout S] [--hosts N] [--keep] -- CMD..."
	exit 2
}

# An option's value: there, and not empty (an empty --cpus is no default).
value() {
	[ $# -ge 2 ] && [ -n "$2" ] || { err "$1 needs a value"; usage; }
}
while [ $# -gt 0 ]; do
	case "$1" in
	--cpus) value "$@"; cpus=$2; shift 2 ;;
	--mem) value "$@"; mem=$2; shift 2 ;;
	--timeout) value "$@"; timeout=$2; shift 2 ;;
	--boot-timeout) value "$@"; boot_timeout=$2; shift 2 ;;
	--hosts) value "$@"; hosts=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--) shift; break ;;
	-h|--help) usage ;;
	*) err "unknown option '$1'"; usage ;;
	esac
done
[ $# -gt 0 ] || usage
[[ "$hosts" =~ ^[1-8]$ ]] || { err "--hosts '$hosts': 1 to 8 lab hosts"; exit 2; }
if [ "$hosts" -gt 1 ]; then
	cpus=${cpus:-1} mem=${mem:-3G}
else
	cpus=${cpus:-$(nproc)} mem=${mem:-8G}
fi
[[ "$cpus" =~ ^[1-9][0-9]*$ ]] || { err "--cpus '$cpus': not a count"; exit 2; }
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || { err "--timeout '$timeout': not a number of seconds"; exit 2; }
[[ "$boot_timeout" =~ ^[1-9][0-9]*$ ]] || { err "--boot-timeout '$boot_timeout': not a number of seconds"; exit 2; }
[[ "$wedge" =~ ^[1-9][0-9]*$ ]] || { err "SLOS_LAB_WEDGE '$wedge': not a number of seconds"; exit 2; }
mem_mib=$(awk -v s="$mem" 'BEGIN {
	n = s + 0; u = toupper(substr(s, length(s)))
	if (s !~ /^[0-9]+[MmGg]?$/ || n <= 0) { print -1; exit }
	print (u == "G") ? n * 1024 : n }')
[ "$mem_mib" -ge 1024 ] || { err "--mem '$mem': give at least 1G (e.g. 4G, 8192M)"; exit 2; }
[ "$(id -u)" -eq 0 ] || { err "the lab runs CMD as root: run it as root"; exit 2; }
[ -z "${SLOS_IN_LAB:-}" ] || { err "already inside a lab (nested labs are not supported)"; exit 2; }

# CMD must exist here: the lab sees the same files at the same paths.
if ! command -v -- "$1" >/dev/null 2>&1; then
	err "$1: command not found"
	exit 127
fi

# The lab's QEMU: Debian's binary. SLOS_LAB_QEMU=build runs Debian 12's
# 7.2 rebuilt with a fix for a TCG bug (a faulting SETcc resumes with
# wrong flags; scripts/build-lab-qemu.sh: once, a few minutes, cached under
# build/lab), build-irq with an interrupt fix too, any other value names
# a QEMU. Not the default: labs on the rebuild wedged or died where
# Debian's binary passed (docs/lab.md). A build that fails falls back to
# Debian's binary, with a warning. The firmware is Debian's.
qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || { err "no qemu-system-x86_64 (package qemu-system-x86; run scripts/install-deps.sh)"; exit 2; }
case "${SLOS_LAB_QEMU:-debian}" in
debian) ;;
build | build-irq)
	variant=()
	[ "${SLOS_LAB_QEMU:-}" = build-irq ] && variant=(irq)
	if built=$("$ROOT/scripts/build-lab-qemu.sh" "${variant[@]}"); then
		qemu=$built
	else
		err "warning: scripts/build-lab-qemu.sh failed; the lab runs Debian's QEMU, with its TCG bugs (docs/lab.md)"
	fi
	;;
*) qemu=$SLOS_LAB_QEMU ;;
esac
case $qemu in
"$ROOT"/build/lab/qemu-flags-*) qemu_label="QEMU 7.2 + lab-qemu-flags.patch" ;;
"$ROOT"/build/lab/qemu-irq-*) qemu_label="QEMU 7.2 + lab-qemu-flags.patch + lab-qemu-irq.patch" ;;
*) qemu_label="QEMU $qemu" ;;
esac
[ -x "$qemu" ] || { err "SLOS_LAB_QEMU=$qemu: not an executable"; exit 2; }
firmware=()
for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
	[ -d "$d" ] && firmware+=(-L "$d")
done
busybox=/bin/busybox
[ -x "$busybox" ] || { err "no $busybox (package busybox-static; run scripts/install-deps.sh)"; exit 2; }

# The newest Debian 6.1 kernel that has its modules installed.
kernel= rel=
for k in $(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V -r); do
	r=${k#/boot/vmlinuz-}
	if [ -r "$k" ] && [ -f "/lib/modules/$r/modules.dep" ]; then
		kernel=$k rel=$r
		break
	fi
done
[ -n "$kernel" ] || { err "no lab kernel: /boot/vmlinuz-*-amd64 with its /lib/modules (package linux-image-amd64; run scripts/install-deps.sh)"; exit 2; }
modinfo -k "$rel" kvm_amd >/dev/null 2>&1 || { err "$rel has no kvm_amd module"; exit 2; }

avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
if [ "$avail" -lt $((hosts * mem_mib + 512)) ]; then
	err "--mem $mem: this machine has only $avail MiB available (the lab needs $hosts x $mem_mib MiB and 512 MiB more)"
	exit 2
fi
if [ "$hosts" -gt 1 ]; then
	command -v ip >/dev/null || { err "--hosts needs ip (package iproute2)"; exit 2; }
	[ -c /dev/net/tun ] || { err "--hosts needs /dev/net/tun (the labs' NICs are taps)"; exit 2; }
	# Absolute: the lab hosts' jobs run from /.
	slos=$(realpath -e -- "${SLOS_BIN:-$ROOT/build/slos}" 2>/dev/null) && [ -x "$slos" ] ||
		{ err "--hosts: no ${SLOS_BIN:-$ROOT/build/slos} to run on lab hosts 1..$((hosts - 1)) (make)"; exit 2; }
fi

# ---------------------------------------------------------------- initramfs
# busybox, /init and the 9p-over-virtio-pci modules; cached per kernel.
cache=$ROOT/build/lab
mkdir -p "$cache"
key=$( { echo "$rel"; sha256sum "$busybox" "$ROOT/scripts/lab-init"; } | sha256sum | cut -c1-12)
initrd=$cache/initramfs-$rel-$key.cpio
if [ ! -s "$initrd" ]; then
	stage=$(mktemp -d "$cache/stage.XXXXXX")
	trap 'rm -rf "$stage"' EXIT
	mkdir -p "$stage"/{bin,sbin,proc,sys,dev,root,modules}
	cp "$busybox" "$stage/bin/busybox"
	for a in sh mount insmod mkdir cat chroot stty sync poweroff echo sleep; do
		ln -s busybox "$stage/bin/$a"
	done
	install -m 0755 "$ROOT/scripts/lab-init" "$stage/init"
	printf '#!/bin/sh\nexec /bin/chroot /root /sbin/modprobe "$@"\n' >"$stage/sbin/lab-modprobe"
	chmod 0755 "$stage/sbin/lab-modprobe"
	modprobe -S "$rel" --show-depends -a 9p 9pnet_virtio virtio_pci virtio_console |
		awk '$1 == "insmod" && !seen[$2]++ { print $2 }' >"$stage/order.tmp"
	[ -s "$stage/order.tmp" ] || { err "cannot resolve the 9p/virtio modules of $rel"; exit 2; }
	while read -r f; do
		cp "$f" "$stage/modules/"
		basename "$f" >>"$stage/modules.order"
	done <"$stage/order.tmp"
	rm -f "$stage/order.tmp"
	(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	rm -rf "$stage"
	trap - EXIT
	find "$cache" -maxdepth 1 -name 'initramfs-*.cpio' ! -name "${initrd##*/}" -delete
fi

# ---------------------------------------------------------------- the run
# Outside /tmp: inside the lab /tmp is a tmpfs of its own.
# What a lab killed with SIGKILL left (no cleanup ran): its run directory
# and its labs' network namespace, both named after its PID.
# (A --keep run's directory is the user's: it stays.)
for d in "$cache"/run.*.*; do
	p=${d#"$cache"/run.}
	p=${p%%.*}
	[[ "$p" =~ ^[0-9]+$ ]] && [ ! -d "/proc/$p" ] && [ ! -e "$d/kept" ] && rm -rf "$d"
done
for n in $(ip netns list 2>/dev/null | grep -o '^slos-lab-[0-9]*-[0-9]*'); do
	p=${n#slos-lab-}
	[ -d "/proc/${p%%-*}" ] || ip netns del "$n" 2>/dev/null || true
done
run=$(mktemp -d "$cache/run.$$.XXXXXX")
qpid=
mpids=() # the other lab hosts' QEMUs
ns=
stop_qemu() {
	kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1" 2>/dev/null || true
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	trap - EXIT
	trap '' INT TERM HUP
	[ -z "$qpid" ] || stop_qemu "$qpid"
	for p in "${mpids[@]}"; do stop_qemu "$p"; done
	[ -z "$ns" ] || ip netns del "$ns" 2>/dev/null || true
	if [ "$keep" = 1 ]; then
		: >"$run/kept"
		err "kept $run"
	else
		rm -rf "$run"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'err "interrupted"; exit 130' INT
trap 'err "terminated"; exit 143' TERM HUP

# CMD in the same directory with the same environment.
{
	echo "# generated by scripts/lab.sh"
	while IFS= read -r v; do
		case "$v" in PWD|OLDPWD|SHLVL|_|BASH_*|SLOS_IN_LAB) continue ;; esac
		printf 'export %s=%q\n' "$v" "${!v}"
	done < <(compgen -e)
	echo "export SLOS_IN_LAB=1"
	echo "export PATH=\"\$PATH:/usr/sbin:/sbin\""
	if [ "$hosts" -gt 1 ]; then
		addrs= mons=
		for ((h = 1; h < hosts; h++)); do
			addrs+="${addrs:+,}10.98.0.$((h + 1)):7100"
			mons+="${mons:+ }10.98.0.254:$((7200 + h))"
		done
		printf 'export SLOS_LAB_HOSTS=%q SLOS_LAB_KEY=%q SLOS_LAB_MONITORS=%q\n' \
			"$addrs" "$run/key" "$mons"
		# CMD starts once every other lab host's daemon answers.
		cat <<-EOF
		end=\$((SECONDS + $boot_timeout))
		for a in \${SLOS_LAB_HOSTS//,/ }; do
			until timeout 2 bash -c ": <>/dev/tcp/\${a%:*}/\${a#*:}" 2>/dev/null; do
				[ \$SECONDS -lt \$end ] || { : >"$run/hosts-down"; echo "lab: lab host \$a did not come up within $boot_timeout s" >&2; exit 125; }
				sleep 1
			done
		done
		EOF
	fi
	printf 'cd %q || exit 127\n' "$PWD"
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$run/job"

# idle=poll: the lab's CPUs never halt. Under QEMU 7.2 TCG a halted lab
# CPU sometimes missed its wake-up (an IPI, a timer) and the lab wedged;
# with idle=poll a whole integration pass ran without a wedge (docs/lab.md).
# A single CPU cannot miss an IPI: it halts as usual.
idle=
[ "$cpus" -eq 1 ] || idle=idle=poll
# A periodic tick that QEMU itself re-arms. QEMU's TCG (7.2 to 10.1) can
# lose an interrupt sent to a CPU while it enters its nested guest (an
# unlocked update of the CPU's interrupt_request in its VMRUN, fixed in
# QEMU 10.2 and in scripts/build-lab-qemu.sh's 7.2): the IPI stays pending and
# the CPU runs the guest on, never re-polled, while another CPU waits for
# it, and the lab wedges. Every tick of a periodic local APIC timer polls
# the CPU's interrupts again, so a lost one is taken within a tick
# (docs/lab.md).
tick=${SLOS_LAB_TICK-nohz=off highres=off}
# SLOS_LAB_CLOCK="tsc=reliable clocksource=tsc": the TSC as the lab
# kernel's clock, as a server's. Then its KVM keeps a master clock, the
# guests' kvmclock is stable (PVCLOCK_TSC_STABLE_BIT), and a guest's clock
# reads stop writing one global word (pvclock's last_value) that a guest
# over hosts made every CPU fetch over the DSM. Not the default: in 2 of
# 15 spread torture runs in such a lab the lab's kernel took a timer
# interrupt inside a timer interrupt with interrupts off, and died
# (docs/lab.md).
clock=${SLOS_LAB_CLOCK-}
append="console=ttyS0 panic=-1 oops=panic mitigations=off nokaslr $idle $tick $clock loglevel=4 $lab_kvm slos_lab_syms=$cache/kallsyms-$rel ${SLOS_LAB_APPEND:-}"

# Lab host h (0: the one that runs CMD) with its run directory d; more
# QEMU options after d. In the background; its pid in $!.
lab_start() {
	local h=$1 d=$2 out extra=()
	shift 2
	if [ "$h" = 0 ]; then
		out=(-chardev stdio,id=out,signal=off)
	else
		out=(-chardev "file,id=out,path=$d/console.log")
	fi
	if [ -n "$ns" ]; then
		extra=(-netdev "tap,id=net0,ifname=labtap$h,script=no,downscript=no"
			-device "virtio-net-pci,netdev=net0,mac=52:54:00:98:00:$(printf %02x $((h + 1)))")
		# A monitor lab 0's CMD reaches, on the bridge's address.
		[ "$h" = 0 ] || extra+=(-monitor "tcp:10.98.0.254:$((7200 + h)),server,nowait")
	fi
	${ns:+ip netns exec "$ns"} setpriv --pdeathsig KILL -- "$qemu" \
		"${firmware[@]}" -accel "$accel" -cpu "$cpu_model" -smp "$cpus" -m "${mem_mib}M" \
		-nodefaults -no-user-config -display none -no-reboot \
		-kernel "$kernel" -initrd "$initrd" \
		-append "$append slos_lab_run=$d $*" \
		-serial "file:$d/kernel.log" \
		-device virtio-serial-pci "${out[@]}" \
		-device virtconsole,chardev=out \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,multidevs=remap \
		-device virtio-rng-pci "${extra[@]}" \
		-monitor "unix:$d/monitor,server,nowait" \
		</dev/null 2>"$d/qemu.log" &
}

start=$(date +%s.%N)
if [ "$hosts" -gt 1 ]; then
	# The labs' network: a bridge in a namespace of its own, so nothing
	# of it touches this machine's interfaces.
	name=slos-lab-$$-$RANDOM
	ip netns add "$name" || { err "cannot make the labs' network (namespace $name)"; exit 2; }
	ns=$name
	ip -n "$ns" link add labbr type bridge &&
		ip -n "$ns" addr add 10.98.0.254/24 dev labbr &&
		ip -n "$ns" link set labbr up ||
		{ err "cannot make the labs' network (namespace $ns)"; exit 2; }
	head -c 32 /dev/urandom >"$run/key"
	for ((h = 0; h < hosts; h++)); do
		ip -n "$ns" tuntap add dev "labtap$h" mode tap &&
			ip -n "$ns" link set "labtap$h" master labbr up ||
			{ err "cannot make lab host $h's tap"; exit 2; }
	done
	for ((h = 1; h < hosts; h++)); do
		mkdir -p "$run/h$h"
		printf 'exec %q host --listen 10.98.0.%d:7100 --key %q\n' \
			"$slos" $((h + 1)) "$run/key" >"$run/h$h/job"
		lab_start "$h" "$run/h$h" "slos_lab_ip=10.98.0.$((h + 1))/24"
		mpids+=($!)
	done
	lab_start 0 "$run" "slos_lab_ip=10.98.0.1/24"
else
	lab_start 0 "$run"
fi
qpid=$!

# Show where a failed lab stopped: the first lines of a kernel splat, else
# the end of its console.
# A kernel bug the lab shows (problem) fails the run; a splat's first line
# may also be a bare call trace.
problem='Kernel panic|BUG:|Oops|general protection fault|corrupted stack|WARNING:|kernel BUG'
splat="$problem|Call Trace"
# The lines around the first match of $1 in kernel log $2, indented.
first_report() {
	grep -m1 -nE "$1" "$2" | cut -d: -f1 |
		{ read -r n; sed -n "$((n > 2 ? n - 2 : 1)),$((n + 25))p" "$2"; } | sed 's/^/    /' >&2
}

# A lab (its run directory $1) whose kernel's heartbeat is older than $wedge.
wedged() {
	local beat
	beat=$(stat -c %Y "$1/alive" 2>/dev/null) || return 1
	[ $(($(date +%s) - beat)) -ge "$wedge" ]
}

report() {
	local h
	err "$1"
	if grep -qE "$splat" "$run/kernel.log" 2>/dev/null; then
		err "the lab's kernel log from its first report:"
		first_report "$splat" "$run/kernel.log"
	elif [ -s "$run/kernel.log" ]; then
		err "the end of the lab's kernel log:"
		tail -n 15 "$run/kernel.log" | sed 's/^/    /' >&2
	fi
	[ -s "$run/qemu.log" ] && { err "QEMU said:"; sed 's/^/    /' "$run/qemu.log" | tail -n 10 >&2; }
	for ((h = 1; h < hosts; h++)); do
		[ -s "$run/h$h/console.log" ] || [ -s "$run/h$h/kernel.log" ] ||
			[ -s "$run/h$h/qemu.log" ] || continue
		err "lab host $h: the end of its daemon's output, kernel log and QEMU's:"
		tail -n 5 "$run/h$h/console.log" "$run/h$h/kernel.log" "$run/h$h/qemu.log" 2>/dev/null | sed 's/^/    /' >&2
	done
	return 0
}

# What the lab's CPUs were doing, from QEMU's monitor.
cpu_state() {
	python3 - "${1:-$run/monitor}" "$cache/kallsyms-$rel" <<'PY' 2>/dev/null || true
import bisect, re, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(3)
s.connect(sys.argv[1])
time.sleep(0.3)
s.recv(65536)
def ask(cmd):
    s.sendall(cmd.encode() + b"\n")
    out, end = b"", time.time() + 3
    while time.time() < end and not out.rstrip().endswith(b"(qemu)"):
        try:
            out += s.recv(1 << 16)
        except socket.timeout:
            break
    return out.decode(errors="replace").splitlines()
syms = []
try:
    for l in open(sys.argv[2]):
        try:
            a, t, n = l.split()[:3]
            if t in "tTwW" and int(a, 16):
                syms.append((int(a, 16), n))
        except ValueError:
            pass
    syms.sort()
except OSError:
    pass
def name(a):
    i = bisect.bisect_right(syms, (a, "~")) - 1
    if i < 0 or a - syms[i][0] > 0x10000:
        return None
    return f"{syms[i][1]}+{a - syms[i][0]:#x}"
cpus, rsp, cpl = 0, {}, {}
for l in ask("info registers -a"):
    if l.startswith(("CPU#", "RIP=")):
        print("    " + l.strip())
        cpus += l.startswith("CPU#")
    if l.startswith("RIP="):
        m = re.match(r"RIP=([0-9a-f]+)", l)
        cpl[cpus - 1] = "CPL=0" in l
        if m and name(int(m.group(1), 16)):
            print(f"    CPU#{cpus - 1} at {name(int(m.group(1), 16))}")
    m = re.search(r"RSP=([0-9a-f]+)", l)
    if m:
        rsp[cpus - 1] = m.group(1)
# Pending (IRR) and in-service (ISR) vectors tell a lost interrupt from
# one never ended.
for c in range(cpus):
    st = [l.split(None, 1) for l in ask(f"info lapic {c}")
          if l.startswith(("ISR", "IRR", "APR", "Timer"))]
    print(f"    CPU#{c} APIC: " + "; ".join(" ".join(x) for x in st))
# The kernel code addresses on each CPU's stack: a backtrace, roughly.
for c in range(cpus):
    if not syms or not cpl.get(c) or c not in rsp:
        continue
    ask(f"cpu {c}")
    words = [int(w, 16) for l in ask(f"x /160gx 0x{rsp[c]}")
             for w in re.findall(r"0x([0-9a-f]{16})", l.split(":", 1)[-1])]
    frames = [n for n in map(name, words) if n]
    print(f"    CPU#{c} stack: " + " < ".join(frames[:24]))
PY
}

# Where QEMU's own threads were (its vCPU threads: in a helper, waiting
# for the big lock, in the TB loop), through gdb when there is one; the
# whole dump is kept in build/lab/wedge-PID.txt.
qemu_threads() {
	local pid=$1 f=$cache/wedge-$1.txt
	command -v gdb >/dev/null || return 0
	timeout 60 gdb -p "$pid" -batch -ex "thread apply all bt 16" >"$f" 2>&1 || true
	echo "    QEMU's threads (the whole dump: $f):"
	awk '/^Thread / { n = 0; print "    " $0; next } /^#/ && n++ < 6 { print "      " $0 }' "$f" |
		grep -v 'qemu_thread_start\|start_thread\|clone3' | cut -c1-160
}

t0=$SECONDS
booted=0
while kill -0 "$qpid" 2>/dev/null; do
	if [ "$booted" = 0 ] && [ -e "$run/booted" ]; then
		booted=1
	fi
	if [ "$booted" = 1 ] && wedged "$run"; then
		report "the lab's kernel stopped: no heartbeat for $wedge s (a lab failure, not '$*''s); its CPUs:"
		cpu_state >&2
		qemu_threads "$qpid" >&2
		exit 125
	fi
	for ((h = 1; h < hosts; h++)); do
		# A lab host powered off on purpose (a test's `quit`) is not
		# watched; one whose QEMU ended before it booted, or whose
		# kernel stops while its QEMU runs, is a lab failure.
		if ! kill -0 "${mpids[h - 1]}" 2>/dev/null; then
			[ -e "$run/h$h/booted" ] && continue
			report "lab host $h ended before it booted"
			exit 125
		fi
		if wedged "$run/h$h"; then
			report "lab host $h's kernel stopped: no heartbeat for $wedge s (a lab failure, not '$*''s); its CPUs:"
			cpu_state "$run/h$h/monitor" >&2
			qemu_threads "${mpids[h - 1]}" >&2
			exit 125
		fi
	done
	if [ "$booted" = 0 ] && [ $((SECONDS - t0)) -ge "$boot_timeout" ]; then
		report "the lab did not boot within $boot_timeout s"
		exit 125
	fi
	if [ $((SECONDS - t0)) -ge "$timeout" ]; then
		report "timed out after $timeout s: '$*' was stopped"
		exit 124
	fi
	sleep 0.2
done
qrc=0
wait "$qpid" || qrc=$?
qpid=
secs=$(echo "$(date +%s.%N) - $start" | bc)

if [ ! -s "$run/status" ]; then
	if [ ! -e "$run/booted" ]; then
		report "the lab ended before CMD started (QEMU status $qrc)"
	else
		report "the lab ended while CMD ran (QEMU status $qrc): a lab failure, not CMD's"
	fi
	exit 125
fi
rc=$(cat "$run/status")
if [ -e "$run/hosts-down" ]; then
	report "a lab host did not come up: a lab failure, not '$*''s"
	exit 125
fi
# A kernel bug the lab shows fails the run even when CMD passed: a green
# result must not rest on a lab that misbehaved.
for ((h = 0; h < hosts; h++)); do
	klog=$run/kernel.log
	[ "$h" = 0 ] || klog=$run/h$h/kernel.log
	if grep -qE "$problem" "$klog" 2>/dev/null; then
		report "lab host $h's kernel reported a problem while '$*' ran (its status: $rc)"
		[ "$h" = 0 ] || first_report "$problem" "$klog"
		exit 125
	fi
done
[ "${SLOS_LAB_QUIET:-0}" = 1 ] || err "'$*' exited $rc; lab ran ${secs%.*} s ($([ "$hosts" = 1 ] || echo "$hosts lab hosts, each ")$cpus CPUs, ${mem_mib} MiB, -cpu $cpu_model, $qemu_label, kernel $rel)"
exit "$rc"
