#!/bin/bash
# Build the ServerlessOS Linux guests into OUTDIR (docs/linux-guest.md):
#   vmlinux, bzImage, System.map, kernel.config
#       project kernel: Debian's linux-source-6.1, unmodified, configured as
#       tinyconfig + guest/linux/slos.config (checked option by option)
#   initramfs.cpio.gz, initramfs.cpio
#       busybox-static initramfs with guest/linux/init as /init
#   stock-vmlinuz, stock-vmlinux, stock-version, stock-initramfs.cpio{,.gz}
#       Debian's generic kernel (what linux-image-amd64 depends on), its ELF,
#       and the initramfs plus its virtio/ext4 modules and /apps/uspace
#       (guest/linux/apps/uspace.c, a static program that checks user space)
#       and /demo's programs (guest/linux/demo/*.c: make demo's apps;
#       demo-status: "0", or "1" and why they are missing)
#   stock-status
#       "0" when the stock part worked; else non-zero and the reason (only that
#       part is skipped, the script still succeeds)
# Idempotent; caches under OUTDIR/cache (a rerun with unchanged inputs takes
# seconds); full logs under OUTDIR/logs, only a summary is printed.
# Needs (Debian 12): linux-source-6.1 busybox-static build-essential flex bison
# bc libelf-dev cpio xz-utils kmod (scripts/install-deps.sh); the stock part
# also needs apt's package lists and mirror.
# Environment: JOBS (make -j, default nproc).
set -euo pipefail

RECIPE_VERSION=1   # bump to force a kernel rebuild when this script's kernel steps change

me=build-linux-guest
log() { printf '[%s] %s\n' "$me" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$me" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$me" "$*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
CACHE=$OUT/cache
LOGS=$OUT/logs
JOBS=${JOBS:-$(nproc)}
FRAGMENT=$ROOT/guest/linux/slos.config
INIT=$ROOT/guest/linux/init
SRC_TAR=/usr/src/linux-source-6.1.tar.xz
BUSYBOX=/bin/busybox
mkdir -p "$CACHE" "$LOGS"

# One build per OUTDIR at a time.
exec 9>"$OUT/.lock"
flock 9

t_start=$SECONDS
elapsed() { echo "$((SECONDS - $1))s"; }

# ---------------------------------------------------------------- checks
missing=()
for tool in tar xz make gcc ld flex bison bc cpio gzip perl dpkg-deb readelf flock sha256sum depmod; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -r "$SRC_TAR" ] || missing+=("$SRC_TAR (package linux-source-6.1)")
[ -x "$BUSYBOX" ] || missing+=("$BUSYBOX (package busybox-static)")
[ -r /usr/include/gelf.h ] || missing+=("libelf headers (package libelf-dev)")
[ -r "$FRAGMENT" ] || missing+=("$FRAGMENT")
[ -r "$INIT" ] || missing+=("$INIT")
[ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]} (run scripts/install-deps.sh)"

hash_of() { sha256sum | cut -c1-16; }
# install_file SRC DST: copy atomically, and only if the bytes differ.
install_file() {
    cmp -s "$1" "$2" && return 0
    cp -f "$1" "$2.tmp"
    mv -f "$2.tmp" "$2"
}

# ---------------------------------------------------------------- 1. source
# Extracted once into OUTDIR/cache/src; re-extracted only when the tarball changes.
src_id="$(stat -c '%s %Y' "$SRC_TAR") $(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || echo unknown)"
SRC=$CACHE/src/linux
if [ "$(cat "$CACHE/src/.stamp" 2>/dev/null || true)" != "$src_id" ] || [ ! -f "$SRC/Makefile" ]; then
    t=$SECONDS
    log "extracting $SRC_TAR ..."
    rm -rf "$CACHE/src" "$CACHE/src.tmp"
    mkdir -p "$CACHE/src.tmp"
    tar -xJf "$SRC_TAR" -C "$CACHE/src.tmp"
    set -- "$CACHE/src.tmp"/*/
    [ $# -eq 1 ] && [ -f "$1/Makefile" ] || die "unexpected layout of $SRC_TAR"
    mkdir -p "$CACHE/src"
    mv "$1" "$SRC"
    rm -rf "$CACHE/src.tmp"
    echo "$src_id" > "$CACHE/src/.stamp"
    log "source extracted ($(elapsed $t))"
fi
kver=$(make -s -C "$SRC" kernelversion 2>/dev/null)

# ---------------------------------------------------------------- 2. kernel
KB=$CACHE/kbuild
KLOG=$LOGS/kernel-build.log
kmake() {
    make -C "$SRC" O="$KB" ARCH=x86_64 \
        KBUILD_BUILD_USER=slos KBUILD_BUILD_HOST=slos \
        KBUILD_BUILD_TIMESTAMP="linux-source-$kver" "$@"
}

# Every line of the fragment must be in the final .config.
verify_config() {
    local cfg=$1 line sym got bad=()
    while IFS= read -r line; do
        case "$line" in
            CONFIG_*=*)
                sym=${line%%=*}
                if ! grep -qxF -- "$line" "$cfg"; then
                    got=$(grep -m1 -E "^(# )?$sym[= ]" "$cfg" || echo "absent")
                    bad+=("$line   (got: $got)")
                fi ;;
            "# CONFIG_"*" is not set")
                sym=${line#\# }; sym=${sym%% *}
                if grep -q "^$sym=" "$cfg"; then
                    bad+=("$line   (got: $(grep -m1 "^$sym=" "$cfg"))")
                fi ;;
        esac
    done < "$FRAGMENT"
    if [ ${#bad[@]} -gt 0 ]; then
        printf '[%s] ERROR: %d option(s) of %s did not stick in %s:\n' \
            "$me" "${#bad[@]}" "${FRAGMENT#$ROOT/}" "$cfg" >&2
        printf '    %s\n' "${bad[@]}" >&2
        return 1
    fi
}

kernel_id=$( { echo "$RECIPE_VERSION"; echo "$src_id"; cat "$FRAGMENT"; gcc -dumpfullversion; ld --version 2>/dev/null | sed -n 1p; } | hash_of)
kernel_outputs=("$OUT/vmlinux" "$OUT/bzImage" "$OUT/System.map" "$OUT/kernel.config")
kernel_cached=1
[ "$(cat "$KB/.slos-stamp" 2>/dev/null || true)" = "$kernel_id" ] || kernel_cached=0
for f in "${kernel_outputs[@]}"; do [ -s "$f" ] || kernel_cached=0; done

if [ "$kernel_cached" = 1 ]; then
    log "kernel: cached ($kver, config $(cut -c1-8 <<<"$kernel_id"))"
else
    t=$SECONDS
    # A re-extracted source has old mtimes: never mix it with old objects.
    if [ "$(cat "$KB/.slos-src" 2>/dev/null || true)" != "$src_id" ]; then
        rm -rf "$KB"
    fi
    mkdir -p "$KB"
    echo "$src_id" > "$KB/.slos-src"
    rm -f "$KB/.slos-stamp"
    : > "$KLOG"
    log "kernel: configuring (tinyconfig + ${FRAGMENT#$ROOT/}) ..."
    {
        kmake tinyconfig
        ARCH=x86_64 "$SRC/scripts/kconfig/merge_config.sh" -m -O "$KB" "$KB/.config" "$FRAGMENT"
        kmake olddefconfig
    } >> "$KLOG" 2>&1 || { tail -n 30 "$KLOG" >&2; die "kernel configuration failed (log: $KLOG)"; }
    verify_config "$KB/.config" || die "kernel configuration incomplete (log: $KLOG)"
    log "kernel: building $kver with make -j$JOBS (log: ${KLOG#$OUT/}) ..."
    if ! kmake -j"$JOBS" vmlinux bzImage >> "$KLOG" 2>&1; then
        grep -E 'error|Error' "$KLOG" | tail -n 20 >&2 || true
        tail -n 20 "$KLOG" >&2
        die "kernel build failed (log: $KLOG)"
    fi
    for pair in vmlinux:vmlinux arch/x86/boot/bzImage:bzImage System.map:System.map .config:kernel.config; do
        install_file "$KB/${pair%%:*}" "$OUT/${pair##*:}"
    done
    echo "$kernel_id" > "$KB/.slos-stamp"
    log "kernel: built in $(elapsed $t) ($(grep -c 'CC  ' "$KLOG" || true) files compiled)"
fi
readelf -h "$OUT/vmlinux" 2>/dev/null | grep 'Type:.*EXEC' >/dev/null || die "$OUT/vmlinux is not an ELF executable"

# ---------------------------------------------------------------- 3. initramfs
# make_initramfs OUTBASE STAGING [MODDIR [APPDIR]]
#   writes OUTBASE.cpio.gz and the same archive uncompressed, OUTBASE.cpio
#   (inflating 1 MB of gzip takes the kernel ~100 s when ring 0 is emulated).
#   MODDIR, if given, holds *.ko and an "order" file; they go to /lib/modules.
#   APPDIR, if given, holds uspace, which goes to /apps (init runs /apps/*).
#   DEMODIR, if given, holds the demo's programs, which go to /demo (run
#   when a script asks: make demo, the end-to-end tests).
# The archives are reproducible (fixed mtimes and owners, sorted, gzip -n) and
# are replaced only when their bytes change.
make_initramfs() {
    local base=$1 stage=$2 moddir=${3:-} appdir=${4:-} demodir=${5:-} p key f
    key=$( { echo "$RECIPE_VERSION"; sha256sum "$INIT" "$BUSYBOX";
             [ -z "$moddir" ] || (cd "$moddir" && sha256sum order *.ko);
             [ -z "$appdir" ] || (cd "$appdir" && sha256sum uspace);
             [ -z "$demodir" ] || (cd "$demodir" && sha256sum *); } | hash_of)
    if [ -s "$base.cpio" ] && [ -s "$base.cpio.gz" ] &&
       [ "$(cat "$stage.key" 2>/dev/null || true)" = "$key" ]; then
        return 0
    fi
    rm -rf "$stage"
    mkdir -p "$stage"
    (
        cd "$stage"
        mkdir -p bin sbin usr/bin usr/sbin proc sys dev tmp root apps demo etc lib/modules
        cp "$BUSYBOX" bin/busybox
        for p in $("$BUSYBOX" --list-full); do
            [ -e "$p" ] || [ -L "$p" ] || ln -s /bin/busybox "$p"
        done
        install -m 0755 "$INIT" init
        if [ "$(id -u)" = 0 ]; then
            mknod -m 0600 dev/console c 5 1
            mknod -m 0666 dev/null c 1 3
        fi
        if [ -n "$moddir" ]; then
            cp "$moddir"/order "$moddir"/*.ko lib/modules/
        fi
        if [ -n "$appdir" ]; then
            cp "$appdir"/uspace apps/
        fi
        if [ -n "$demodir" ]; then
            cp "$demodir"/* demo/
        fi
        find . -exec touch -h -d @0 {} +
        find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet
    ) > "$stage.cpio"
    gzip -n -9 < "$stage.cpio" > "$stage.cpio.gz"
    for f in cpio cpio.gz; do
        install_file "$stage.$f" "$base.$f"
        rm -f "$stage.$f"
    done
    rm -rf "$stage"
    echo "$key" > "$stage.key"
}

t=$SECONDS
make_initramfs "$OUT/initramfs" "$CACHE/initramfs.stage"
log "initramfs: initramfs.cpio.gz and initramfs.cpio ready ($(elapsed $t))"

# ---------------------------------------------------------------- 4. stock kernel
# Debian's generic kernel (what linux-image-amd64 depends on). Any failure here
# is reported in OUTDIR/stock-status and skips only this part.
SLOG=$LOGS/stock.log
STOCK=$CACHE/stock
# Modules the stock initramfs carries (virtio and ext4 are modules in Debian's
# generic flavour); dependencies are added from modules.dep. crc32c_generic:
# ext4's metadata checksums (mke2fs's default) ask the crypto API for
# crc32c, which no module lists as a dependency; without it a mount fails
# with ENOENT.
STOCK_MODULES="virtio_mmio virtio_blk virtio_net virtio_console virtio-rng crc32c_generic ext4"

stock_fail() {
    printf '1\n%s\n' "$*" > "$OUT/stock-status"
    rm -f "$OUT/stock-vmlinuz" "$OUT/stock-vmlinux" "$OUT/stock-version" "$OUT"/stock-initramfs.cpio*
    warn "stock kernel SKIPPED: $* (details: $SLOG; marker: $OUT/stock-status)"
}

# Emit the module files (relative to lib/modules/REL) needed for $1, deps first.
declare -A mod_seen=()
mod_closure() {
    local path=$1 dep deps
    [ -n "${mod_seen[$path]:-}" ] && return 0
    mod_seen[$path]=1
    deps=$(awk -v m="$path:" '$1 == m { $1 = ""; print; exit }' "$modroot/modules.dep")
    # modprobe loads the last-listed dependency first.
    for dep in $(tr ' ' '\n' <<<"$deps" | tac); do
        mod_closure "$dep"
    done
    echo "$path"
}

stock_build() {
    local pkg ver dir deb tree rel vmlinuz name path f want found order=()
    : > "$SLOG"
    pkg=$(apt-cache depends linux-image-amd64 2>>"$SLOG" | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }') || true
    if [ -z "$pkg" ]; then
        stock_fail "cannot resolve the package linux-image-amd64 depends on (apt-cache depends failed; run 'apt-get update'?)"
        return 0
    fi
    ver=$(apt-cache policy "$pkg" 2>>"$SLOG" | awk '$1 == "Candidate:" { print $2; exit }') || true
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
        stock_fail "no candidate version for $pkg (apt-cache policy)"
        return 0
    fi
    dir=$STOCK/$pkg-$ver
    deb=$dir/package.deb
    tree=$dir/tree
    # The cache keeps the .deb, boot/ and the extracted ELF; the 400 MB module
    # tree is unpacked only while the initramfs's module set is (re)made.
    if [ ! -s "$deb" ]; then
        log "stock: downloading $pkg $ver with apt-get download ..."
        rm -rf "$STOCK"/* 2>/dev/null || true   # older versions go
        mkdir -p "$STOCK/dl"
        chmod 0777 "$STOCK/dl"   # apt's _apt sandbox user writes here
        if ! (cd "$STOCK/dl" && apt-get download "$pkg=$ver") >> "$SLOG" 2>&1; then
            tail -n 5 "$SLOG" >&2
            stock_fail "apt-get download $pkg=$ver failed"
            return 0
        fi
        f=$(ls "$STOCK"/dl/*.deb 2>/dev/null | head -n 1) || true
        [ -n "$f" ] || { stock_fail "apt-get download produced no .deb"; return 0; }
        mkdir -p "$dir"
        mv "$f" "$deb"
        rm -rf "$STOCK/dl"
    fi
    unpack() {
        [ -d "$tree" ] && return 0
        mkdir -p "$tree.tmp"
        if ! dpkg-deb -x "$deb" "$tree.tmp" >> "$SLOG" 2>&1; then
            rm -rf "$tree.tmp"
            return 1
        fi
        mv "$tree.tmp" "$tree"
    }
    if ! ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1; then
        unpack || { stock_fail "dpkg-deb -x $(basename "$deb") failed"; return 0; }
        [ -d "$tree/boot" ] || { stock_fail "no boot/ in $pkg"; return 0; }
        rm -rf "$dir/boot"
        cp -a "$tree/boot" "$dir/boot"
    fi
    vmlinuz=$(ls "$dir"/boot/vmlinuz-* 2>/dev/null | head -n 1) || true
    [ -n "$vmlinuz" ] || { stock_fail "no boot/vmlinuz-* in $pkg"; return 0; }
    rel=${vmlinuz##*/vmlinuz-}

    if [ ! -s "$dir/vmlinux" ]; then
        if ! "$SRC/scripts/extract-vmlinux" "$vmlinuz" > "$dir/vmlinux.tmp" 2>>"$SLOG"; then
            rm -f "$dir/vmlinux.tmp"
            stock_fail "scripts/extract-vmlinux could not extract an ELF from $(basename "$vmlinuz")"
            return 0
        fi
        mv "$dir/vmlinux.tmp" "$dir/vmlinux"
    fi

    # Modules for the stock initramfs, in load order.
    if [ "$(cat "$dir/initramfs-modules/key" 2>/dev/null || true)" != "$STOCK_MODULES" ]; then
        unpack || { stock_fail "dpkg-deb -x $(basename "$deb") failed"; return 0; }
        modroot=$tree/lib/modules/$rel
        # The package ships no modules.dep (depmod runs at install time).
        if ! depmod -b "$tree" -F "$dir/boot/System.map-$rel" "$rel" >> "$SLOG" 2>&1; then
            stock_fail "depmod failed for $rel"
            return 0
        fi
        rm -rf "$dir/initramfs-modules"
        mkdir -p "$dir/initramfs-modules"
        mod_seen=()
        : > "$dir/initramfs-modules/list"
        for name in $STOCK_MODULES; do
            found=$(awk -F: -v n="$name" '{ b = $1; sub(/.*\//, "", b); sub(/\.ko(\.[a-z]+)?$/, "", b); if (b == n) { print $1; exit } }' "$modroot/modules.dep")
            [ -n "$found" ] || { warn "stock: module $name not found in $pkg (built in?)"; continue; }
            mod_closure "$found" >> "$dir/initramfs-modules/list"
        done
        mapfile -t order < "$dir/initramfs-modules/list"
        rm -f "$dir/initramfs-modules/list"
        : > "$dir/initramfs-modules/order.tmp"
        for path in "${order[@]}"; do
            want=$(basename "$path")
            case "$want" in
                *.ko) cp "$modroot/$path" "$dir/initramfs-modules/$want" ;;
                *.ko.xz) want=${want%.xz}; xz -dc "$modroot/$path" > "$dir/initramfs-modules/$want" ;;
                *.ko.zst) want=${want%.zst}; zstd -dcq "$modroot/$path" > "$dir/initramfs-modules/$want" ;;
                *.ko.gz) want=${want%.gz}; gzip -dc "$modroot/$path" > "$dir/initramfs-modules/$want" ;;
                *) warn "stock: unsupported module file $want"; continue ;;
            esac
            echo "$want" >> "$dir/initramfs-modules/order.tmp"
        done
        mv "$dir/initramfs-modules/order.tmp" "$dir/initramfs-modules/order"
        echo "$STOCK_MODULES" > "$dir/initramfs-modules/key"
    fi
    rm -rf "$tree"

    install_file "$vmlinuz" "$OUT/stock-vmlinuz"
    install_file "$dir/vmlinux" "$OUT/stock-vmlinux"
    printf 'release=%s\npackage=%s\nversion=%s\n' "$rel" "$pkg" "$ver" > "$STOCK/version"
    install_file "$STOCK/version" "$OUT/stock-version"
    # Its user-space check, built the ordinary way (static, host gcc).
    local apps=$STOCK/apps
    mkdir -p "$apps"
    if ! gcc -static -O2 -pthread -Wall -Wextra -Werror -o "$apps/uspace.new" \
        "$ROOT/guest/linux/apps/uspace.c" >> "$SLOG" 2>&1; then
        stock_fail "guest/linux/apps/uspace.c did not build (static libc: libc6-dev)"
        return 0
    fi
    install_file "$apps/uspace.new" "$apps/uspace"
    rm -f "$apps/uspace.new"
    # The demo's programs (guest/linux/demo/*.c), built the same way into
    # a fresh directory (nothing stale goes to /demo). One that fails
    # leaves the stock kernel and its tests alone: the initramfs is made
    # without /demo, and OUTDIR/demo-status says why (make demo reads it).
    local demo=$STOCK/demo src name
    rm -rf "$demo"
    mkdir -p "$demo"
    printf '0\n' > "$STOCK/demo-status"
    for src in "$ROOT"/guest/linux/demo/*.c; do
        name=$(basename "$src" .c)
        if ! gcc -static -O2 -pthread -Wall -Wextra -Werror -o "$demo/$name" \
            "$src" >> "$SLOG" 2>&1; then
            warn "stock: guest/linux/demo/$name.c did not build (details: $SLOG): the initramfs has no /demo"
            printf '1\nguest/linux/demo/%s.c did not build\n' "$name" > "$STOCK/demo-status"
            rm -rf "$demo"
            demo=
            break
        fi
    done
    install_file "$STOCK/demo-status" "$OUT/demo-status"
    make_initramfs "$OUT/stock-initramfs" "$STOCK/initramfs.stage" "$dir/initramfs-modules" "$apps" "$demo"
    printf '0\n%s %s (%s)\n' "$pkg" "$ver" "$rel" > "$STOCK/status"
    install_file "$STOCK/status" "$OUT/stock-status"
    log "stock: $pkg $ver ready (release $rel; initramfs modules: $(tr '\n' ' ' < "$dir/initramfs-modules/order"))"
}

t=$SECONDS
stock_build
[ "$(head -n 1 "$OUT/stock-status")" = 0 ] && log "stock: done ($(elapsed $t))"

# ---------------------------------------------------------------- summary
size() { [ -e "$1" ] && printf '%-26s %8s KiB\n' "${1##*/}" "$(( $(stat -c %s "$1") / 1024 ))"; }
log "outputs in $OUT ($(elapsed $t_start) total):"
for f in vmlinux bzImage System.map initramfs.cpio.gz initramfs.cpio stock-vmlinuz stock-vmlinux stock-initramfs.cpio.gz stock-initramfs.cpio; do
    size "$OUT/$f" | sed 's/^/    /' || true
done
