#!/usr/bin/env bash
# `make demo` (docs/demo.md): Debian's stock kernel, unmodified, boots on 4
# vCPUs over 2 local hosts (2 vCPUs each, guest RAM spread over both), its
# busybox user space runs the demo's two ordinary Linux programs from the
# guest image (/demo/primes: threads on every vCPU; /demo/diskio: a file
# written, synced and read back on a virtio disk), powers off, and this
# prints a summary: boot time to init, remote faults and jumps per vCPU,
# the trace file.
#   scripts/demo.sh           the demo
#   scripts/demo.sh banner    its first line: the KVM it will use
# Environment: HOSTS (2), VCPUS (4), MEM (1G), VCPU_MAP (the host of each
# vCPU; default round the hosts, in the lab and under PVM all on host 0),
# SPREAD (init: boot on host 0, go to VCPU_MAP's hosts, default round the
# hosts, as /init's script starts),
# BALANCE (off|locality; default off), NUMA (auto|off: slos's --numa, the
# SRAT that makes each host a NUMA node), LIMIT (primes' bound), MIB
# (diskio's size), DEMO_TIMEOUT (seconds the VM may run, 900), OUT
# (build/linux), DEMO (build/demo: disk image, log, trace), SLOS_BIN
# (build/slos).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-build/linux}
DEMO=${DEMO:-build/demo}
HOSTS=${HOSTS:-2}
VCPUS=${VCPUS:-4}
MEM=${MEM:-1G}
BALANCE=${BALANCE:-off}
NUMA=${NUMA:-auto}
LIMIT=${LIMIT:-2000000}
MIB=${MIB:-16}

# Under PVM a stock kernel's user space on several vCPUs is not reliable
# (docs/pvm-syscalls.md "Limits") and a stock boot costs ~10 minutes, so
# there the demo runs in the lab, hardware-style KVM, unless SLOS_LAB=0.
where() {
	local k
	# Already inside the lab (make test's KVM part on a machine without
	# /dev/kvm): run here, placed as in the lab.
	if [ -n "${SLOS_IN_LAB:-}" ]; then
		echo in-lab
		return
	fi
	k=$(scripts/kvm.sh kind) || exit 1
	if [ "$k" = pvm ] && [ "${SLOS_LAB:-}" != 0 ]; then
		echo lab-over-pvm
	else
		echo "$k"
	fi
}

banner() {
	case $(where) in
	lab-over-pvm)
		echo "make demo: KVM: lab: kvm-amd on QEMU TCG's emulated SVM (scripts/lab.sh); /dev/kvm here is PVM, where a stock kernel's user space on several vCPUs is not reliable (SLOS_LAB=0 runs on PVM anyway)" ;;
	in-lab) echo "make demo: KVM: lab (already inside it: SLOS_IN_LAB)" ;;
	*) scripts/kvm.sh banner "make demo" ;;
	esac
}

if [ "${1:-}" = banner ]; then
	banner
	exit 0
fi
# Asked once: each answer opens /dev/kvm.
kind=$(where)

say() { echo "demo: $*"; }
die() {
	echo "demo: FAILED: $*" >&2
	exit 1
}

# In the lab a DSM fault costs 1-2 ms (QEMU TCG, and shadow paging: its
# emulated NPT fails with two KVM VMs at once), and a Linux whose CPUs sit
# on two hosts takes hundreds a second (its ticks, its kernel data; in
# the lab, without KVM's master clock, every clock read writes one global
# word, pvclock's last_value): it boots in many minutes, and even spread
# only once booted (SPREAD=init: --spread-when at /init's script) its apps
# take minutes (docs/demo.md). So there the vCPUs stay on host 0 unless
# SPREAD=init, and the guest's RAM is homed over every host either way.
DEMO_TIMEOUT=${DEMO_TIMEOUT:-900}
spread_args=()
host0_only=
all_host0=$(printf '0%.0s\n' $(seq "$VCPUS") | paste -sd,)
if [ "${SPREAD:-}" = init ]; then
	spread_args=(--spread-when 'SLOS-DEMO init after')
else
	case $kind in
	lab | lab-over-pvm | in-lab | pvm)
		host0_only=1
		VCPU_MAP=${VCPU_MAP:-$all_host0}
		;;
	esac
fi
map_args=()
[ -n "${VCPU_MAP:-}" ] && map_args=(--vcpu-map "$VCPU_MAP")

# Inside the lab the guest was built outside it (the lab shares this
# machine's files; a build in there would be slow, and a failed one would
# withdraw the stock kernel under the feet of the tests outside).
if [ "$kind" != in-lab ]; then
	say "building the Linux guest (cached after the first run)"
	scripts/build-linux-guest.sh "$OUT" >/dev/null
fi
[ "$(head -n1 "$OUT/stock-status" 2>/dev/null)" = 0 ] ||
	die "Debian's stock kernel is not built: $(tail -n +2 "$OUT/stock-status" 2>/dev/null) ($OUT/logs/stock.log)"
[ "$(head -n1 "$OUT/demo-status" 2>/dev/null)" = 0 ] ||
	die "the demo's programs are not in the guest: $(tail -n +2 "$OUT/demo-status" 2>/dev/null) ($OUT/logs/stock.log)"
command -v mke2fs >/dev/null || die "mke2fs missing (e2fsprogs; scripts/install-deps.sh)"

# The virtio disk: ext4 holding the script the guest's /init runs
# (slos.run=vda:run.sh); diskio writes its file next to it.
mkdir -p "$DEMO"
rm -rf "$DEMO/disk"
mkdir -p "$DEMO/disk"
cat >"$DEMO/disk/run.sh" <<EOF
echo "SLOS-DEMO init after \$(cut -d' ' -f1 /proc/uptime) s of guest uptime"
${spread_args[@]+sleep 2 # the vCPUs go to their hosts now (--spread-when)}
echo "SLOS-DEMO nproc=\$(nproc) cpuinfo=\$(grep -c ^processor /proc/cpuinfo) mem=\$(awk '/MemTotal/ {print \$2}' /proc/meminfo) kB"
# The NUMA nodes the guest made of the SRAT (docs/acpi.md), and each CPU's;
# a "... not on the same node" line would be a CPUID topology
# (vmm/cpuid.c) at odds with them.
cpus=
for c in /sys/devices/system/cpu/cpu[0-9]*; do
	n=\$(ls -d \$c/node[0-9]* 2>/dev/null | head -n1)
	cpus="\$cpus \${c##*/}:\${n##*/node}"
done
echo "SLOS-DEMO numa nodes=\$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)\$cpus"
dmesg | grep -E 'SRAT|SLIT|NUMA|Initmem setup|not on the same node' | sed 's/^/SLOS-NUMA /'
echo "SLOS-DEMO \$ /demo/primes $LIMIT"
/demo/primes $LIMIT
echo "SLOS-DEMO primes rc=\$?"
echo "SLOS-DEMO \$ /demo/diskio diskio.dat $MIB"
/demo/diskio diskio.dat $MIB
echo "SLOS-DEMO diskio rc=\$?"
echo "SLOS-DEMO sha256 \$(sha256sum diskio.dat)"
echo "SLOS-DEMO done after \$(cut -d' ' -f1 /proc/uptime) s of guest uptime"
sleep 5 # the host takes its counters now (scripts/demo-run.sh)
EOF
rm -f "$DEMO/disk.img"
mke2fs -q -t ext4 -d "$DEMO/disk" "$DEMO/disk.img" $((MIB * 2 + 32))M ||
	die "mke2fs of $DEMO/disk.img failed"

log=$DEMO/console.log
trace=$DEMO/trace.json
cmdline="console=ttyS0 panic=-1 loglevel=4 slos.run=vda:run.sh"
# With every vCPU on host 0 the apps take no remote fault, so the guest's
# automatic NUMA balancing (on whenever the SRAT gives it two nodes) has
# nothing to gain, and in the lab its page-table scans cost them 5x
# (docs/performance.md, "The SRAT").
[ -z "$host0_only" ] || cmdline="$cmdline numa_balancing=disable"
args=(--kernel "$OUT/stock-vmlinuz" --initrd "$OUT/stock-initramfs.cpio"
	--vcpus "$VCPUS" --mem "$MEM" --local-hosts "$HOSTS" ${map_args[@]+"${map_args[@]}"}
	${spread_args[@]+"${spread_args[@]}"} --balance "$BALANCE" --numa "$NUMA"
	--disk "$DEMO/disk.img" --stats --trace "$trace" --cmdline "$cmdline")
[ -z "$host0_only" ] || say "vCPUs on hosts ${VCPU_MAP}, guest RAM over $HOSTS hosts: the most this KVM runs in useful time (docs/demo.md; SPREAD=init spreads them once booted)"
[ -z "${spread_args[*]+set}" ] || say "the guest boots on host 0 and its vCPUs go to hosts ${VCPU_MAP:-round the $HOSTS hosts} as the apps start (SPREAD=init)"
say "slos run ${args[*]}"
run=(scripts/kvm.sh run --)
[ "$kind" = lab-over-pvm ] && run=(env SLOS_LAB=1 scripts/kvm.sh run --)
# The lab's own limit: the VM's, plus the lab's boot and some.
export SLOS_LAB_TIMEOUT=${SLOS_LAB_TIMEOUT:-$((DEMO_TIMEOUT + 180))}
export DEMO_TIMEOUT

start=$(date +%s.%N)
set +e
"${run[@]}" scripts/demo-run.sh "$DEMO" "${SLOS_BIN:-build/slos}" "${args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
secs=$(echo "$(date +%s.%N) - $start" | bc)
# From here on nothing may end the script before it says what failed.

bad=
[ "$rc" -eq 0 ] || bad="slos exited with status $rc"
for want in "SLOS-DEMO nproc=$VCPUS cpuinfo=$VCPUS" "SLOS-DEMO primes rc=0" \
	"SLOS-DEMO diskio rc=0" "guest powered off"; do
	grep -aq "$want" "$log" || bad="${bad:+$bad; }no '$want'"
done

# What diskio left on the disk, read by the host without mounting it.
if command -v debugfs >/dev/null; then
	rm -f "$DEMO/diskio.dat"
	debugfs -R "dump /diskio.dat $DEMO/diskio.dat" "$DEMO/disk.img" 2>/dev/null || true
	host_sum=$(sha256sum "$DEMO/diskio.dat" 2>/dev/null | cut -d' ' -f1)
	guest_sum=$(grep -a 'SLOS-DEMO sha256' "$log" | sed -n 's/.*SLOS-DEMO sha256 \([0-9a-f]*\) .*/\1/p' | head -n1)
	if [ -n "$host_sum" ] && [ "$host_sum" = "$guest_sum" ]; then
		disk_check="diskio.dat read back on the host from $DEMO/disk.img: sha256 ${host_sum:0:16}... as the guest saw it"
	else
		disk_check="diskio.dat on the image (${host_sum:-missing}) differs from the guest's (${guest_sum:-none})"
		bad="${bad:+$bad; }$disk_check"
	fi
	rm -f "$DEMO/diskio.dat"
fi

echo
echo "== demo summary"
# Boot time: the VMM's own clock ("ran" in `slos stat`) when the guest's
# script started, and the guest's uptime then (its clock starts later).
ran() { [ -f "$1" ] && sed -n 's/.*; ran \([0-9.]*\) s$/\1/p' "$1" | head -n1; }
init=$(ran "$DEMO/stat-init.txt")
guest_init=$(grep -a 'SLOS-DEMO init after' "$log" | sed -n 's/.*SLOS-DEMO init after \([0-9.]*\) s.*/\1/p' | head -n1)
printf 'boot to init:  %s s (slos start to the demo script; guest clock %s s)\n' \
	"${init:-?}" "${guest_init:-?}"
done_at=$(ran "$DEMO/stat-done.txt")
if [ -n "$init" ] && [ -n "$done_at" ]; then
	printf 'apps:          %s s (both programs, slos clock)\n' "$(echo "$done_at - $init" | bc)"
fi
grep -aE 'SLOS-DEMO primes limit=|SLOS-DEMO diskio .*MiB' "$log" | sed 's/^.*SLOS-DEMO /app:           /'
grep -a 'SLOS-DEMO numa nodes=' "$log" | head -n1 | sed 's/^.*SLOS-DEMO numa /numa:          /'
# Without the last snapshot (the guest ended first), the totals slos
# printed at exit (--stats) stand in for it.
done_counts=$DEMO/stat-done.txt
grep -aq 'vcpu [0-9]* exits' "$done_counts" 2>/dev/null || done_counts=$log
# Per vCPU: remote faults (every host's "vcpu V dsm faults N (remote R)"
# lines) and jumps (every host's "vcpu V exits ... jumps J" lines) at
# /init, and what the apps added.
counts() {
	awk '
	/slos: (host [0-9]+ )?vcpu [0-9]+ dsm faults/ {
		for (i = 1; i <= NF; i++) if ($i == "vcpu") v = $(i + 1)
		for (i = 1; i <= NF; i++) if ($i == "(remote") { r = $(i + 1); sub(/\)/, "", r) }
		remote[v] += r; seen[v] = 1
	}
	/slos: (host [0-9]+ )?vcpu [0-9]+ exits/ {
		for (i = 1; i <= NF; i++) if ($i == "vcpu") v = $(i + 1)
		for (i = 1; i <= NF; i++) if ($i == "jumps") j = $(i + 1)
		jumps[v] += j; seen[v] = 1
	}
	END { for (v in seen) print v, remote[v] + 0, jumps[v] + 0 }' "$1" 2>/dev/null
}
# Files, not <(...): the lab has no /dev/fd.
counts "$done_counts" | sort >"$DEMO/counts-done"
counts "$DEMO/stat-init.txt" | sort >"$DEMO/counts-init"
join -a1 -e0 -o 0,1.2,1.3,2.2,2.3 "$DEMO/counts-done" "$DEMO/counts-init" |
	sort -n | while read -r v rd jd ri ji; do
	# Fewer at the end than at /init: a host's counters are missing
	# from the last (a VM stopped before its hosts printed them).
	ra=$((rd - ri)) ja=$((jd - ji))
	[ "$ra" -ge 0 ] && [ "$ja" -ge 0 ] || ra='?' ja='?'
	printf 'vcpu %-3s      boot: %6d remote faults %4d jumps; apps: %6s remote faults %4s jumps\n' \
		"$v" "$ri" "$ji" "$ra" "$ja"
done
[ -s "$DEMO/counts-done" ] || bad="${bad:+$bad; }no per-vCPU counters"
# Where the vCPUs ran as the apps ended (`slos ctl` status, "where").
where_done=$(sed -n 's/.*"where":\[\([0-9,]*\)\].*/\1/p' "$DEMO/status-done.txt" 2>/dev/null | head -n1)
if [ -n "$where_done" ]; then
	printf 'placement:     vCPUs on hosts %s as the apps ended%s\n' "$where_done" \
		"${spread_args[@]+ (booted on host 0, moved by --spread-when)}"
	placed="on hosts $where_done during the apps${spread_args[@]+, booted on host 0}"
	# Spread means spread: some vCPU away from host 0, unless asked.
	[ "$HOSTS" -lt 2 ] || [ -n "$host0_only" ] || [ "${VCPU_MAP:-}" = "$where_done" ] ||
		[ "$where_done" != "$all_host0" ] ||
		bad="${bad:+$bad; }every vCPU was still on host 0 as the apps ended"
fi
grep -aE 'slos: host [0-9]+ jumps in' "$log" | sed 's/^slos: /jumps:         /'

[ -z "${disk_check:-}" ] || printf 'disk:          %s\n' "$disk_check"
printf 'trace:         %s (open it in https://ui.perfetto.dev, or chrome://tracing)\n' "$trace"
printf 'console log:   %s\n' "$log"
if [ -n "$bad" ]; then
	die "$bad (after $(printf '%.1f' "$secs") s)"
fi
echo "demo: OK in $(printf '%.1f' "$secs") s: $VCPUS vCPUs (${placed:-on hosts ${VCPU_MAP:-round the $HOSTS hosts}}), guest RAM over $HOSTS hosts, both apps passed, guest powered off (exit status 0)"
