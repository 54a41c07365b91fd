#!/bin/bash
# Keep apt from enabling services on this machine (build/setup-labs.sh).
#
#   unit-links.sh snapshot LIST [UNITS]   list the unit links under UNITS in LIST
#   unit-links.sh undo LIST [UNITS]       remove every link added since LIST, then LIST
#
# Installing a package with a service also ENABLES it: deb-systemd-helper links it into
# multi-user.target.wants and friends (and adds aliases such as sshd.service), so a machine with
# systemd would start NetworkManager and sshd at its next boot, and they would take over its
# network. Removing the links is what `systemctl disable` does (systemctl(1)); deb-systemd-helper's
# `was-enabled` then reports the unit disabled, so a later upgrade keeps it so. LIST stays on disk
# until `undo`, so a run killed between the two is undone by the next one. UNITS defaults to
# /etc/systemd/system.
set -euo pipefail
action=${1:?snapshot or undo}
list=${2:?the list file}
units=${3:-/etc/systemd/system}

links() { find "$units" -type l 2>/dev/null | LC_ALL=C sort; }

case "$action" in
snapshot)
    mkdir -p "$(dirname "$list")"
    links > "$list.tmp"
    mv "$list.tmp" "$list"
    ;;
undo)
    [ -f "$list" ] || exit 0
    while IFS= read -r link; do
        if ! grep -qxF -- "$link" "$list"; then
            echo "setup-labs: left disabled on this machine: ${link#"$units"/}"
            rm -f -- "$link"
        fi
    done < <(links)
    rm -f -- "$list"
    ;;
*)
    echo "unit-links.sh: snapshot or undo, not $action" >&2
    exit 2
    ;;
esac
