#!/usr/bin/env bash
# Install wstest (Autobahn|Testsuite 25.10.1, Python 2.7) from PyPI packages only.
#
# Usage: install.sh [--force] [PREFIX]        (PREFIX default: $HOME/.cache/wstest-py27)
#
# Needs an existing CPython 2.7 interpreter with working ssl and zlib; by default
# the one pyenv ships on the machine image: $PYENV_ROOT/versions/2.7.18 ($PYENV_ROOT defaults to ~/.pyenv).
# Override with PY27=/path/to/python2.7. Nothing here builds an interpreter; see
# conformance/README.md for what to do when no Python 2.7 is present.
# Steps: throwaway py3 venv with virtualenv==20.21.1 (last release that can create
# Python 2.7 environments) -> virtualenv for 2.7 at PREFIX -> pinned requirements
# (requirements-py27.txt) -> autobahntestsuite==25.10.1 --no-deps -> wstest -a.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
PREFIX="${1:-${WSTEST_PREFIX:-$HOME/.cache/wstest-py27}}"
PY27="${PY27:-${PYENV_ROOT:-$HOME/.pyenv}/versions/2.7.18/bin/python2.7}"
AB_VERSION="25.10.1"

if [ "$force" = 0 ] && [ -x "$PREFIX/bin/wstest" ] \
   && "$PREFIX/bin/wstest" -a 2>/dev/null | grep -q "AutobahnTestSuite $AB_VERSION"; then
  echo "install.sh: wstest already installed at $PREFIX/bin/wstest:"
  "$PREFIX/bin/wstest" -a
  exit 0
fi

if [ ! -x "$PY27" ]; then
  echo "install.sh: no Python 2.7 interpreter at $PY27 (set PY27=...)." >&2
  echo "  See conformance/README.md ('Python 2.7')." >&2
  exit 1
fi
if ! "$PY27" -c 'import sys, ssl, zlib; assert sys.version_info[:2] == (2, 7)' 2>/dev/null; then
  echo "install.sh: $PY27 is not a Python 2.7 with ssl and zlib modules." >&2
  exit 1
fi

tmp="$(mktemp -d /tmp/wstest-install.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

echo "== virtualenv tool (Python 3, throwaway) in $tmp"
python3 -m venv "$tmp/vtool"
"$tmp/vtool/bin/pip" install -q "virtualenv==20.21.1"

echo "== Python 2.7 virtualenv at $PREFIX"
rm -rf "$PREFIX"
"$tmp/vtool/bin/virtualenv" -q -p "$PY27" "$PREFIX"

echo "== pinned dependencies (requirements-py27.txt)"
"$PREFIX/bin/pip" install -q --no-warn-script-location -r "$here/requirements-py27.txt" 2>&1 \
  | grep -v -E "DEPRECATION: Python 2.7|^$" || true

echo "== autobahntestsuite==$AB_VERSION"
"$PREFIX/bin/pip" install -q --no-deps "autobahntestsuite==$AB_VERSION" 2>&1 \
  | grep -v -E "DEPRECATION: Python 2.7|^$" || true

"$PREFIX/bin/pip" check 2>/dev/null
"$PREFIX/bin/wstest" -a
echo "install.sh: done; wstest is $PREFIX/bin/wstest"
