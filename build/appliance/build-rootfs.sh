#!/bin/bash
# Build the satellite appliance rootfs (Debian 12): the base of the nspawn lab and of the VM image
# (build-image.sh), so it carries the cloud kernel (virtio, Hyper-V and VMware drivers), udev and
# systemd's EFI stub too; nspawn ignores all three.
#
#   build/appliance/build-rootfs.sh [CACHE_DIR]      (root; needs mmdebstrap)
#
# The result is cached in CACHE_DIR/rootfs-<hash>, the hash taken over this script (the build
# inputs), so CI rebuilds only when they change. Prints the rootfs path on its last line.
# The mirror is the one apt on this machine already uses.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${1:-${SATBRIDGE_LAB_CACHE:-/var/cache/satbridge-lab}}
KEY=$(cat "$HERE/build-rootfs.sh" | sha256sum | cut -c1-16)
OUT="$CACHE/rootfs-$KEY"
if [ -f "$OUT/.complete" ]; then echo "$OUT"; exit 0; fi
MIRROR=${MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
mkdir -p "$CACHE"
TMP="$OUT.tmp.$$"
trap 'rm -rf "$TMP"' EXIT
T0=$(date +%s)
mmdebstrap --variant=minbase --mode=root --quiet \
  --include=systemd-sysv,udev,dbus,linux-image-cloud-amd64,systemd-boot-efi,systemd-timesyncd,network-manager,iptables,python3,iproute2,procps,less,ncurses-term \
  --aptopt='Acquire::Languages "none"' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook='echo satellite > "$1/etc/hostname"' \
  --customize-hook='printf "127.0.0.1 localhost\n127.0.1.1 satellite\n" > "$1/etc/hosts"' \
  --customize-hook='chroot "$1" update-alternatives --set iptables /usr/sbin/iptables-legacy' \
  --customize-hook='chroot "$1" update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy' \
  --customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service 2>/dev/null || true' \
  --customize-hook='chroot "$1" systemctl set-default multi-user.target' \
  bookworm "$TMP" "$MIRROR"
touch "$TMP/.complete"
rm -rf "$OUT"
mv "$TMP" "$OUT"
# the cache keeps one rootfs: the ones built from earlier inputs are dead weight (~400 MB each)
for old in "$CACHE"/rootfs-*; do
    [ "$old" = "$OUT" ] || [ ! -f "$old/.complete" ] || rm -rf "$old"
done
echo "mmdebstrap: $(( $(date +%s) - T0 ))s, $(du -sh "$OUT" | cut -f1)" >&2
echo "$OUT"
