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
# /etc/systemd/system; a UNITS that does not exist has no links.
#
# LIST: NUL-separated paths between a HEADER and an END record (a name may hold a newline, and
# a line-based list then named other files, which undo removed). A LIST without both, from a
# crash or an older version of this script, removes nothing: an empty or cut list would
# otherwise disable every service of the machine.
set -euo pipefail
action=${1:?snapshot or undo}
list=${2:?the list file}
units=${3:-/etc/systemd/system}
HEADER="satbridge unit-links v2"
END="end"

links() {
    [ -d "$units" ] || return 0
    find "$units" -type l -print0 | LC_ALL=C sort -z
}

case "$action" in
snapshot)
    mkdir -p "$(dirname "$list")"
    { printf '%s\0' "$HEADER"; links; printf '%s\0' "$END"; } > "$list.tmp"
    sync -- "$list.tmp"
    mv -- "$list.tmp" "$list"
    ;;
undo)
    [ -f "$list" ] || exit 0
    declare -A before=()
    records=()
    while IFS= read -r -d '' record; do records+=("$record"); done < "$list"
    n=${#records[@]}
    if ((n < 2)) || [ "${records[0]}" != "$HEADER" ] || [ "${records[n - 1]}" != "$END" ]; then
        echo "setup-labs: $list is cut or of an older version: no unit links removed" >&2
        rm -f -- "$list"
        exit 0
    fi
    for record in "${records[@]:1:n-2}"; do before["$record"]=1; done
    while IFS= read -r -d '' link; do
        if [ -z "${before["$link"]+x}" ] && [ -L "$link" ]; then
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
