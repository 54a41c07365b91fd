#!/bin/bash
# Build the satellite appliance rootfs (Debian 12): the base of the nspawn lab and of the VM image
# (build-image.sh), so it carries the cloud kernel (virtio, Hyper-V and VMware drivers), udev and
# systemd's EFI stub too; nspawn ignores all three.
#
#   build/appliance/build-rootfs.sh [CACHE_DIR]          (root; needs mmdebstrap) build if needed
#   build/appliance/build-rootfs.sh --path [CACHE_DIR]   print where the rootfs is (or will be)
#
# The result is cached in CACHE_DIR/rootfs-<hash>, the hash taken over mmdebstrap's arguments
# (the build inputs), so CI rebuilds only when they change. Whoever uses a rootfs holds a shared
# flock on CACHE_DIR/rootfs-<hash>.use meanwhile, so a build from other inputs never removes it. Prints the rootfs path on its last line (stdout);
# mmdebstrap's progress goes to stderr. The mirror is the one apt on this machine already uses.
#
# Safe to interrupt, by any signal: builds run under a lock (CACHE_DIR/.lock, flock(1)) in
# CACHE_DIR/rootfs-<hash>.tmp.<pid>, and whoever takes the lock next removes every partial tree
# (unmounting first what a killed mmdebstrap left mounted inside it) before it builds. A SIGKILL
# skips this script's EXIT trap, which is why the clean-up cannot live only there.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PRINT_PATH=
if [ "${1:-}" = --path ]; then PRINT_PATH=1; shift; fi
# canonical (absolute, no symlink, no trailing slash), as /proc/self/mountinfo names mounts
CACHE=$(realpath -m -- "${1:-${SATBRIDGE_LAB_CACHE:-/var/cache/satbridge-lab}}")

# The build's inputs: the rootfs is keyed by these alone, so a change to how this script cleans
# up or locks does not make every cache stale.
MMDEBSTRAP_ARGS=(
  --variant=minbase --mode=root
  --include=systemd-sysv,udev,dbus,linux-image-cloud-amd64,systemd-boot-efi,systemd-timesyncd,network-manager,iptables,python3,iproute2,procps,less,ncurses-term
  '--aptopt=Acquire::Languages "none"'
  '--dpkgopt=path-exclude=/usr/share/man/*' '--dpkgopt=path-exclude=/usr/share/doc/*'
  '--dpkgopt=path-exclude=/usr/share/locale/*' '--dpkgopt=path-include=/usr/share/locale/locale.alias'
  '--customize-hook=echo satellite > "$1/etc/hostname"'
  '--customize-hook=printf "127.0.0.1 localhost\n127.0.1.1 satellite\n" > "$1/etc/hosts"'
  '--customize-hook=chroot "$1" update-alternatives --set iptables /usr/sbin/iptables-legacy'
  '--customize-hook=chroot "$1" update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy'
  '--customize-hook=chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service 2>/dev/null || true'
  '--customize-hook=chroot "$1" systemctl set-default multi-user.target'
)
SUITE=bookworm
KEY=$(printf '%s\n' "$SUITE" "${MMDEBSTRAP_ARGS[@]}" | sha256sum | cut -c1-16)
OUT="$CACHE/rootfs-$KEY"
if [ -n "$PRINT_PATH" ] || [ -f "$OUT/.complete" ]; then echo "$OUT"; exit 0; fi
command -v mmdebstrap >/dev/null || { echo "build-rootfs.sh: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 2; }
mkdir -p "$CACHE"

# One build at a time. The lock is an open file, so it is released however its holder ends; a
# killed build's orphaned mmdebstrap keeps it until mmdebstrap itself ends, then we clean up.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
    echo "build-rootfs.sh: another build holds $CACHE/.lock; waiting for it" >&2
    flock 9
fi
if [ -f "$OUT/.complete" ]; then echo "$OUT"; exit 0; fi  # built while we waited

# Remove DIR, a partial tree, after unmounting whatever is mounted at or under it (deepest first).
# mountinfo(5) writes space, tab, newline and backslash in paths as octal escapes (\040...).
# --one-file-system: should an unmount fail, rm never descends into the host's /proc, /sys or /dev.
remove_tree() {
    local dir=$1 target
    while read -r _ _ _ _ target _; do
        target=$(printf '%b' "$target")
        if [ "$target" = "$dir" ] || [[ $target == "$dir"/* ]]; then printf '%s\n' "$target"; fi
    done < /proc/self/mountinfo | sort -r | while IFS= read -r target; do umount -l -- "$target" || true; done
    rm -rf --one-file-system -- "$dir"
}
# A rootfs in use (booted by a lab, copied by build-image.sh) is held by a shared flock on
# rootfs-KEY.use; it is removed only when nobody holds that.
remove_if_unused() {
    local dir=$1
    if flock -n -x "$dir.use" true 2>/dev/null; then remove_tree "$dir"; rm -f -- "$dir.use"; fi
}
for dir in "$CACHE"/rootfs-*; do
    [ -d "$dir" ] || continue
    if [[ $dir == *.tmp.* ]] || [ ! -f "$dir/.complete" ]; then
        echo "build-rootfs.sh: removing the partial build $dir" >&2
        remove_tree "$dir"
    fi
done

MIRROR=${MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
TMP="$OUT.tmp.$$"
trap 'remove_tree "$TMP"' EXIT
T0=$(date +%s)
echo "build-rootfs.sh: building $OUT with mmdebstrap (about 80 s on 2 cores)" >&2
mmdebstrap "${MMDEBSTRAP_ARGS[@]}" "$SUITE" "$TMP" "$MIRROR" >&2
touch "$TMP/.complete"
mv "$TMP" "$OUT"
trap - EXIT
# Rootfs built from other inputs are dead weight (~550 MB each); keep the newest one besides
# ours (another checkout may still boot it), and remove the others unless a lab is using them.
older=()
while IFS= read -r dir; do
    [ "$dir" = "$OUT" ] || [ ! -f "$dir/.complete" ] || older+=("$dir")
done < <(ls -1dt "$CACHE"/rootfs-* 2>/dev/null | grep -v '\.use$' || true)
for dir in "${older[@]:1}"; do remove_if_unused "$dir"; done
echo "build-rootfs.sh: mmdebstrap took $(( $(date +%s) - T0 )) s, $(du -sh "$OUT" | cut -f1)" >&2
echo "$OUT"
