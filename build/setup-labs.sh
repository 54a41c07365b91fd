#!/bin/bash
# The one set-up step before the tests, shared by `make test` and `.ci/run`:
#
#   build/setup-labs.sh [--packages-only]
#
# As root: installs the Debian packages the tests and labs need (never starting a daemon), then
# builds what the labs share, once, here and not inside a test's timeout: the appliance rootfs
# (build/appliance/build-rootfs.sh; about 80 s cold, cached after). Last it writes
# $SATBRIDGE_LAB_CACHE/setup.done: from then on a lab test that skips is a failure (tests/conftest.py).
# Without root: says which packages are missing and that the lab tests will skip, and exits 0.
#
# Idempotent and safe to interrupt: a second run installs and builds nothing; a killed build is
# cleaned up by the next one (see build-rootfs.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${SATBRIDGE_LAB_CACHE:-/var/cache/satbridge-lab}

# What each package is for: python3-venv for .venv; gcc, libc6-dev, python3-dev to build
# python-iptables; iptables for its xtables extensions and the firewall lab; dbus-daemon for the
# private test buses; mmdebstrap + systemd-container for the appliance lab (a real systemd in
# nspawn); network-manager + dnsmasq-base for the network lab (both only inside namespaces we
# make); tmux for the console tests; for the VM image and its QEMU smoke test: qemu, UEFI
# firmware, FAT/GPT tools, objcopy; openssh-server and -client for the benchmark's scp reference
# (bench/upload.py runs its own sshd on 127.0.0.1, never the machine's ssh service).
PACKAGES=(python3-venv python3-dev gcc libc6-dev make iproute2 util-linux iptables dbus-daemon
          systemd-container mmdebstrap network-manager dnsmasq-base tmux
          qemu-system-x86 qemu-utils ovmf dosfstools mtools fdisk binutils e2fsprogs
          openssh-server openssh-client)
PACKAGES_ONLY=
if [ "${1:-}" = "--packages-only" ]; then PACKAGES_ONLY=1; fi  # `make bench`: no rootfs

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ "$(id -u)" != 0 ]; then
    if ((${#missing[@]})); then
        echo "setup-labs: not root, so nothing installed; missing: ${missing[*]}"
    fi
    echo "setup-labs: not root: the lab tests (nspawn, firewall, NetworkManager, QEMU) will skip; 'sudo make test' runs them"
    exit 0
fi

T_START=$(date +%s)
POLICY=/usr/sbin/policy-rc.d
POLICY_MARK="# made by satbridge build/setup-labs.sh while it installs"
# A policy of ours left by a run killed with SIGKILL (no trap ran) would keep every service on
# this machine from starting: it is recognised by its marker and removed. A policy of the
# machine's own is never touched.
if [ -e "$POLICY" ] && grep -qx "$POLICY_MARK" "$POLICY"; then rm -f "$POLICY"; fi
# apt enables the services it installs (NetworkManager, sshd): build/unit-links.sh removes the
# links it adds, this run's and those of a run killed mid-install.
ENABLED_BEFORE=$CACHE/enabled-before.list
undo_enabling() { "$HERE/unit-links.sh" undo "$ENABLED_BEFORE"; }
undo_enabling
if ((${#missing[@]})); then
    echo "setup-labs: installing ${missing[*]}"
    # Installing must never START a daemon on this machine (NetworkManager would take over its
    # network): deny every service start while apt runs, unless a policy already does.
    made_policy=
    "$HERE/unit-links.sh" snapshot "$ENABLED_BEFORE"
    trap 'if [ -n "$made_policy" ]; then rm -f "$POLICY"; fi; undo_enabling' EXIT
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n%s\nexit 101\n' "$POLICY_MARK" > "$POLICY"
        chmod +x "$POLICY"
        made_policy=1
    else
        # The machine's own policy stays as it is, but it must deny starts (invoke-rc.d's
        # interface: exit 101 is "action forbidden"), or apt would start NetworkManager here.
        policy_rc=0
        "$POLICY" NetworkManager start >/dev/null 2>&1 || policy_rc=$?
        if [ "$policy_rc" != 101 ]; then
            echo "setup-labs: $POLICY allows service starts (exit $policy_rc, not 101): not installing," \
                 "since apt would start NetworkManager and sshd on this machine; install by hand: ${missing[*]}" >&2
            exit 1
        fi
    fi
    # an install killed mid-way leaves packages unpacked but not configured: finish them first
    DEBIAN_FRONTEND=noninteractive dpkg --configure -a
    for attempt in 1 2 3; do  # a mirror that hiccups once should not fail CI
        apt-get update -qq && break
        [ "$attempt" = 3 ] && exit 1
        sleep 5
    done
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    undo_enabling
    if [ -n "$made_policy" ]; then rm -f "$POLICY"; fi
    trap - EXIT
fi
T_PACKAGES=$(date +%s)
echo "setup-labs: packages ready ($((T_PACKAGES - T_START)) s)"
if [ -n "$PACKAGES_ONLY" ]; then exit 0; fi

ROOTFS=$("$HERE/appliance/build-rootfs.sh" "$CACHE" | tail -1)
T_ROOTFS=$(date +%s)
echo "setup-labs: appliance rootfs ready: $ROOTFS ($((T_ROOTFS - T_PACKAGES)) s)"

date -u +%FT%TZ > "$CACHE/setup.done"
echo "setup-labs: done in $((T_ROOTFS - T_START)) s; from now on a lab test that skips fails"
