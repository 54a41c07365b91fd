#!/bin/bash
# Boot the satellite image under QEMU with UEFI (OVMF), its serial console on this terminal.
#
#   build/appliance/boot-vm.sh IMAGE.qcow2 WORKDIR [MGMT_PORT PAIRING_PORT]
#
# The image stays pristine: the VM writes to a throw-away overlay in WORKDIR, with its own copy
# of the UEFI variables. Networking is QEMU's user mode, restricted: the guest gets DHCP and can
# reach nothing outside (no NTP, no mirror), and the bridge's two ports are forwarded from
# 127.0.0.1 only (defaults 50051 and 50052), so nothing else can reach the VM. RESTRICT=off
# lets the guest out through this machine.
#
# /dev/kvm on the CI machines is PVM, which cannot boot a stock kernel in useful time, so TCG is
# the default there; ACCEL=kvm uses a real KVM. env: ACCEL, MEM (MiB, 1024), SMP (2),
# SERIAL (a -serial spec, default mon:stdio; Ctrl-A X quits).
set -euo pipefail
IMAGE=$(realpath "$1"); WORK=$(realpath -m "$2"); MGMT=${3:-50051}; PAIRING=${4:-50052}
OVMF=${OVMF:-/usr/share/OVMF}
if [ -z "${ACCEL:-}" ]; then
    ACCEL=tcg
    if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then ACCEL=kvm; fi
fi
CPU=host; [ "$ACCEL" = tcg ] && CPU=max
mkdir -p "$WORK"
qemu-img create -q -f qcow2 -b "$IMAGE" -F qcow2 "$WORK/run.qcow2"
cp "$OVMF/OVMF_VARS_4M.fd" "$WORK/vars.fd"
exec qemu-system-x86_64 -machine q35,accel="$ACCEL" -cpu "$CPU" -m "${MEM:-1024}" -smp "${SMP:-2}" \
    -nographic -nodefaults -no-reboot \
    -serial "${SERIAL:-mon:stdio}" \
    -drive if=pflash,format=raw,unit=0,readonly=on,file="$OVMF/OVMF_CODE_4M.fd" \
    -drive if=pflash,format=raw,unit=1,file="$WORK/vars.fd" \
    -drive file="$WORK/run.qcow2",if=virtio,format=qcow2,discard=unmap \
    -netdev "user,id=n0,restrict=${RESTRICT:-on},hostfwd=tcp:127.0.0.1:${MGMT}-:50051,hostfwd=tcp:127.0.0.1:${PAIRING}-:50052" \
    -device virtio-net-pci,netdev=n0 \
    -device virtio-rng-pci
