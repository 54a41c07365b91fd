#!/bin/bash
# Build the satellite VM image from the appliance rootfs: qcow2 (QEMU/KVM, Proxmox), VMDK (VMware)
# and VHDX (Hyper-V).
#
#   build/appliance/build-image.sh ZIPAPP OUTDIR [VENDOR_KEYS_DIR]     (root)
#
# ZIPAPP is dist/satbridge.pyz (build/zipapp.py). VENDOR_KEYS_DIR holds the *.pub keys XCC packages
# must be signed with; without it the image refuses every package until keys are added.
#
# The disk is GPT with an EFI system partition and an ext4 root. The ESP holds one unified kernel
# image (systemd's EFI stub + kernel + initrd + command line) as EFI/BOOT/BOOTX64.EFI, so any UEFI
# firmware boots it without a boot loader. Nothing is mounted and no loop device is used:
# mkfs.ext4 -d fills the root, mtools fills the ESP, sfdisk writes the table into a plain file.
#
# What the image adds to the rootfs:
# - the zipapp and satbridge.service (enabled), the menu on tty1 and on the serial console;
# - iptables alternatives on legacy (already so in the rootfs);
# - NetworkManager on DHCP (its automatic wired profile; the menu sets a static address);
# - a first-boot identity: no machine id, no satbridge state; both are made at the first boot,
#   and a hostname of its own (satbridge-firstboot.service: satellite-<machine id prefix>);
# - no credentials: root's password is locked, no other account, no SSH server. The consoles
#   (the hypervisor's) show the admin menu; whoever has them administers the satellite.
#
# env: ROOT_SIZE (default 8G, sparse), ESP_MIB (64), CMDLINE_EXTRA (default "quiet")
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
ZIPAPP=$(realpath "$1"); OUT=$(realpath -m "$2"); KEYS=${3:-}
ROOT_SIZE=${ROOT_SIZE:-8G}; ESP_MIB=${ESP_MIB:-64}
for tool in mmdebstrap mkfs.ext4 mkfs.vfat mcopy sfdisk objcopy qemu-img; do
    command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing" >&2; exit 2; }
done
T0=$(date +%s)
ROOTFS=$("$HERE/build-rootfs.sh" | tail -1)
exec 8>"$ROOTFS.use" && flock -s 8  # in use until this script ends: no build removes it meanwhile
mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TREE=$WORK/tree
cp -a "$ROOTFS" "$TREE"
rm -f "$TREE/.complete"

# -- the bridge and its units
install -D -m 0755 "$ZIPAPP" "$TREE/usr/lib/satbridge/satbridge.pyz"
install -m 0644 "$TOP/build/units/satbridge.service" "$TREE/etc/systemd/system/satbridge.service"
for dropin in 'getty@tty1.service.d' 'serial-getty@ttyS0.service.d'; do
    mkdir -p "$TREE/etc/systemd/system/$dropin"
    install -m 0644 "$TOP/build/units/$dropin"/*.conf "$TREE/etc/systemd/system/$dropin/"
done
mkdir -p "$TREE/etc/systemd/system/multi-user.target.wants" "$TREE/etc/systemd/system/getty.target.wants"
ln -sf /etc/systemd/system/satbridge.service "$TREE/etc/systemd/system/multi-user.target.wants/satbridge.service"
install -m 0644 "$TOP/build/units/satbridge-firstboot.service" "$TREE/etc/systemd/system/"
mkdir -p "$TREE/etc/systemd/system/sysinit.target.wants"
ln -sf /etc/systemd/system/satbridge-firstboot.service "$TREE/etc/systemd/system/sysinit.target.wants/"
ln -sf /lib/systemd/system/serial-getty@.service "$TREE/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
# a console login for the admin's own use would be a default credential: the menu is the console
mkdir -p "$TREE/etc/satbridge/keys"
if [ -n "$KEYS" ]; then install -m 0644 "$KEYS"/*.pub "$TREE/etc/satbridge/keys/"; fi

# -- first boot: systemd makes the machine id, satbridge its identity and state
# "uninitialized", not empty: systemd treats only that (or no file) as the first boot
echo uninitialized > "$TREE/etc/machine-id"
rm -f "$TREE/var/lib/dbus/machine-id" "$TREE/var/lib/systemd/random-seed"
rm -rf "$TREE/var/lib/satbridge" "$TREE/opt/xcc"
# the clock: the rootfs masks timesyncd for the labs (they have no network); a satellite keeps time
rm -f "$TREE/etc/systemd/system/systemd-timesyncd.service"
# systemd-firstboot would stop the first boot on the console to ask for a locale and a root password
ln -sf /dev/null "$TREE/etc/systemd/system/systemd-firstboot.service"
passwd --root "$TREE" --lock root >/dev/null
printf 'LABEL=satroot / ext4 rw,errors=remount-ro 0 1\n' > "$TREE/etc/fstab"
rm -rf "$TREE"/var/cache/apt/* "$TREE"/var/lib/apt/lists/* "$TREE"/var/log/*.log

# -- the unified kernel image; the kernel and initrd live only there, so /boot is left empty
mkdir -p "$WORK/esp"
VMLINUZ=$(ls "$TREE"/boot/vmlinuz-* | head -1); INITRD=$(ls "$TREE"/boot/initrd.img-* | head -1)
printf 'root=LABEL=satroot ro console=tty0 console=ttyS0,115200 net.ifnames=0 %s\n' "${CMDLINE_EXTRA-quiet}" > "$WORK/cmdline"
python3 "$HERE/uki.py" "$TREE/usr/lib/systemd/boot/efi/linuxx64.efi.stub" "$TREE/usr/lib/os-release" \
    "$WORK/cmdline" "$VMLINUZ" "$INITRD" "$WORK/BOOTX64.EFI"
rm -f "$TREE"/boot/vmlinuz-* "$TREE"/boot/initrd.img-*

# -- the partitions, then the disk
mkfs.vfat -C -F 32 -n ESP "$WORK/esp.img" $((ESP_MIB * 1024)) >/dev/null
mmd -i "$WORK/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$WORK/esp.img" "$WORK/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
truncate -s "$ROOT_SIZE" "$WORK/root.img"
mkfs.ext4 -q -L satroot -E root_owner=0:0 -d "$TREE" "$WORK/root.img"
ROOT_MIB=$(( $(stat -c %s "$WORK/root.img") / 1048576 ))
truncate -s $(( (1 + ESP_MIB + ROOT_MIB + 1) * 1048576 )) "$WORK/disk.raw"
sfdisk -q "$WORK/disk.raw" <<EOF
label: gpt
start=1MiB, size=${ESP_MIB}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP
start=$((1 + ESP_MIB))MiB, size=${ROOT_MIB}MiB, type=4F68BCE3-E8CD-4C31-B1C7-7E1B9D5D08E5, name=satroot
EOF
dd if="$WORK/esp.img" of="$WORK/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$WORK/root.img" of="$WORK/disk.raw" bs=1M seek=$((1 + ESP_MIB)) conv=notrunc,sparse status=none
T1=$(date +%s)

# -- the formats
qemu-img convert -O qcow2 -c "$WORK/disk.raw" "$OUT/satellite.qcow2"
qemu-img convert -O vmdk -o subformat=streamOptimized "$WORK/disk.raw" "$OUT/satellite.vmdk"
qemu-img convert -O vhdx -o subformat=dynamic,block_size=1048576 "$WORK/disk.raw" "$OUT/satellite.vhdx"
(cd "$OUT" && sha256sum satellite.qcow2 satellite.vmdk satellite.vhdx > SHA256SUMS)
T2=$(date +%s)
echo "tree + partitions: $((T1 - T0)) s, conversions: $((T2 - T1)) s" >&2
(cd "$OUT" && du -h --apparent-size satellite.qcow2 satellite.vmdk satellite.vhdx) >&2
echo "$OUT/satellite.qcow2"
