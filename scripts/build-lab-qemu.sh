#!/usr/bin/env bash
# scripts/build-lab-qemu.sh [irq]: builds the lab's QEMU and prints its path.
#
# Debian 12's own QEMU (7.2, with all of Debian's patches) plus
# scripts/lab-qemu-flags.patch: a SETcc to memory that faults no longer
# resumes with wrong flags (without it any program of the lab, its kernel
# or a nested guest can take a wrong branch; docs/lab.md). Opt-in
# (SLOS_LAB_QEMU=build): labs on it wedged or died where Debian's binary,
# the lab's default, passed.
# With `irq` (SLOS_LAB_QEMU=build-irq), scripts/lab-qemu-irq.patch too:
# TCG's updates of a CPU's pending interrupts made atomic, against a race
# that loses IPIs; labs on it still wedged. Upstream fixed both by QEMU
# 10.2, which Debian 12 does not have; QEMU 10.x as a lab failed to boot
# Debian's stock kernel as a nested guest (it panics before its console
# is up). Needs curl, patch, meson,
# ninja-build, libglib2.0-dev, libpixman-1-dev, libcap-ng-dev and
# libattr1-dev (scripts/install-deps.sh installs them).
#
# The sources come from deb.debian.org, checked against the hashes below.
# Only qemu-system-x86_64 is built (TCG, 9p, no UI): ~3 minutes on 2 CPUs.
# The result is cached under build/lab, keyed by the sources and patches;
# the firmware is Debian's (seabios, ipxe-qemu, qemu-system-data, which
# qemu-system-x86 brings), passed with -L by scripts/lab.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
err() { echo "build-lab-qemu: $*" >&2; }

ver=7.2+dfsg
rev=7+deb12u18
orig=qemu_$ver.orig.tar.xz
deb=qemu_$ver-$rev.debian.tar.xz
orig_sha=91aca71520040edc40b8d437aa3004dae614f58e286cf653ee8996c07af2962f
deb_sha=28a1c86310ee53b6bf1854cffe6f6be6ed29a08db7d05759f8ac57b8d6a6cb2f
pool=${SLOS_DEBIAN_MIRROR:-https://deb.debian.org/debian}/pool/main/q/qemu

case "${1:-}" in
'') variant=flags patches=(lab-qemu-flags.patch) ;;
irq) variant=irq patches=(lab-qemu-flags.patch lab-qemu-irq.patch) ;;
*) err "usage: build-lab-qemu.sh [irq]"; exit 2 ;;
esac
cache=$ROOT/build/lab
key=$( { echo "$orig_sha $deb_sha"; for p in "${patches[@]}"; do cat "$ROOT/scripts/$p"; done; cat "$0"; } | sha256sum | cut -c1-12)
out=$cache/qemu-$variant-$key/qemu-system-x86_64
mkdir -p "$cache"

# One build at a time (two labs may start at once); the second finds it.
exec 9>"$cache/qemu.lock"
flock 9
if [ -x "$out" ]; then
	echo "$out"
	exit 0
fi

for t in curl patch meson ninja pkg-config cc flex bison; do
	command -v "$t" >/dev/null || { err "no $t (apt-get install curl patch meson ninja-build libglib2.0-dev libpixman-1-dev libcap-ng-dev libattr1-dev)"; exit 2; }
done
work=$(mktemp -d "$cache/qemu-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

fetch() {
	local f=$1 sha=$2
	if [ ! -s "$cache/$f" ] || ! echo "$sha  $cache/$f" | sha256sum -c --quiet 2>/dev/null; then
		err "fetching $f"
		curl -sSfL --retry 3 -o "$cache/$f.tmp" "$pool/$f" || { err "cannot fetch $pool/$f"; exit 2; }
		mv "$cache/$f.tmp" "$cache/$f"
	fi
	echo "$sha  $cache/$f" | sha256sum -c --quiet || { err "$f: wrong SHA-256"; rm -f "$cache/$f"; exit 2; }
}
fetch "$orig" "$orig_sha"
fetch "$deb" "$deb_sha"

err "building QEMU $ver-$rev + ${patches[*]} (TCG, x86_64 only; a few minutes, once)"
tar xf "$cache/$orig" -C "$work"
src=$work/qemu-7.2.0
tar xf "$cache/$deb" -C "$src"
while read -r p; do
	case "$p" in '' | '#'*) continue ;; esac
	patch -d "$src" -p1 -s <"$src/debian/patches/$p" || { err "Debian's $p did not apply"; exit 2; }
done <"$src/debian/patches/series"
for p in "${patches[@]}"; do
	patch -d "$src" -p1 -s <"$ROOT/scripts/$p" || { err "scripts/$p did not apply"; exit 2; }
done
# Debian's source has no firmware blobs; none is built or installed here.
sed -i 's/^if unpack_edk2_blobs$/if false/' "$src/pc-bios/meson.build"

mkdir -p "$src/build"
if ! (cd "$src/build" && ../configure --meson="$(command -v meson)" \
	--target-list=x86_64-softmmu --disable-docs --disable-werror \
	--enable-virtfs --disable-gtk --disable-sdl --disable-vnc \
	--disable-opengl --disable-guest-agent --disable-tools \
	--disable-install-blobs) >"$work/configure.log" 2>&1; then
	tail -n 20 "$work/configure.log" >&2
	err "configure failed"
	exit 2
fi
if ! ninja -C "$src/build" qemu-system-x86_64 >"$work/build.log" 2>&1; then
	grep -E 'error|FAILED' "$work/build.log" | head -n 20 >&2
	err "the build failed"
	exit 2
fi
mkdir -p "${out%/*}.tmp"
cp "$src/build/qemu-system-x86_64" "${out%/*}.tmp/"
rm -rf "${out%/*}"
mv "${out%/*}.tmp" "${out%/*}"
# Older builds of this variant, and of the one-patch days (qemu-KEY), go.
find "$cache" -maxdepth 1 -type d \( -name "qemu-$variant-*" -o -name 'qemu-????????????' \) \
	! -name "qemu-$variant-$key" ! -name 'qemu-build.*' -exec rm -rf {} +
echo "$out"
