#!/bin/bash
# What `make run` and `make test` need before they can make .venv, checked with a one-line
# message naming the Debian package that is missing (python-iptables compiles a C extension).
#
#   build/check-prereqs.sh PYTHON
set -uo pipefail
PY=${1:-python3}
fail() { echo "satbridge: $1 (apt-get install $2)" >&2; exit 1; }
command -v "$PY" >/dev/null || fail "no $PY" python3
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || fail "$PY is older than 3.11" python3
"$PY" -c 'import ensurepip, venv' 2>/dev/null || fail "$PY cannot make a venv" python3-venv
command -v gcc >/dev/null || fail "no C compiler, which python-iptables needs" gcc
printf '#include <stdio.h>\nint main(void){return 0;}\n' | gcc -x c - -o /dev/null 2>/dev/null ||
    fail "gcc cannot build a program: no C library headers" libc6-dev
INCLUDE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$INCLUDE/Python.h" ] || fail "no Python.h in $INCLUDE, which python-iptables needs" python3-dev
