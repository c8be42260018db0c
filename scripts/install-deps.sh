#!/usr/bin/env bash
# Install what building and testing slos needs on Debian 12; idempotent:
# only missing packages are installed, and nothing at all when none is.
set -euo pipefail

pkgs=(
	build-essential clang lld llvm libclang-rt-14-dev clang-format
	linux-libc-dev pkg-config
	liburing-dev libcriterion-dev libsodium-dev libibverbs-dev
	liblzma-dev liblz4-dev libzstd-dev zlib1g-dev
	spin iproute2 acpica-tools
	# virtio-blk tests build and read ext2 images without mounting them
	e2fsprogs
	# a test that finds a process stuck shows its stacks
	gdb
	# the Linux guests (scripts/build-linux-guest.sh)
	linux-source-6.1 busybox-static flex bison bc libelf-dev libssl-dev
	cpio xz-utils kmod dwarves python3
	# the lab, where /dev/kvm is absent (scripts/lab.sh): QEMU TCG and the
	# stock kernel whose kvm-amd runs on its emulated SVM
	qemu-system-x86 linux-image-amd64
	# SLOS_LAB_QEMU=build: Debian's QEMU 7.2 rebuilt with a TCG fix
	# (scripts/build-lab-qemu.sh)
	curl patch meson ninja-build libglib2.0-dev libpixman-1-dev
	libcap-ng-dev libattr1-dev
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
