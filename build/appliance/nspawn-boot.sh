#!/bin/bash
# Boot the appliance rootfs under systemd-nspawn, on a private network, for the lab tests.
#
#   build/appliance/nspawn-boot.sh ROOTFS NAME [--veth] [extra nspawn args]
#
# - --register=no --keep-unit: required here, the host has no systemd/machined as PID 1.
# - --volatile=overlay: the cached rootfs stays pristine; every boot starts clean.
# - --private-network: the container sees only its own loopback; nothing of the machine's
#   network is shared or changed.
# - --veth: a link instead, whose far end ve-NAME lives in a netns lab-NAME made here (nspawn is
#   started inside it with `nsenter --net`, which unlike `ip netns exec` does not remount /sys).
#   So the far end is never in the machine's own namespace. The caller addresses ve-NAME, runs
#   its clients in lab-NAME and deletes that netns afterwards.
# - nspawn makes payload/supervisor cgroups under the cgroup it starts in, so this script first
#   moves ITSELF (only $$) into a dedicated cgroup nspawn-NAME; the caller removes it afterwards.
set -euo pipefail
ROOT=$1; NAME=$2; shift 2
ENTER=(); NET=(--private-network)
if [ "${1:-}" = --veth ]; then
    shift
    ip netns add "lab-$NAME"
    ip -n "lab-$NAME" link set lo up
    ENTER=(nsenter "--net=/run/netns/lab-$NAME" --); NET=(--network-veth)
fi
for h in systemd unified; do
    if [ -d /sys/fs/cgroup/$h ]; then
        mkdir -p /sys/fs/cgroup/$h/nspawn-$NAME
        echo $$ > /sys/fs/cgroup/$h/nspawn-$NAME/cgroup.procs
    fi
done
exec "${ENTER[@]}" systemd-nspawn -q -D "$ROOT" -M "$NAME" --volatile=overlay --register=no --keep-unit \
    "${NET[@]}" "$@" -b
