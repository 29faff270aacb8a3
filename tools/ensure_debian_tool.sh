#!/usr/bin/env bash
# A tool a make target needs from Debian, installed when it is missing: root installs the packages (apt-get update
# first, non-interactive); anyone else is stopped at once with the one command to run. `make test` and `.ci/run` use
# it for the page tests' Chromium (tools/ensure_chromium.sh), `make bench` for wrk.
#
# usage: ensure_debian_tool.sh BINARY NEED HINT PACKAGE...
#   BINARY  the path that must exist and be executable
#   NEED    who needs it, in words ("the page tests need Debian's Chromium")
#   HINT    what to do when the packages install but BINARY is still missing (may be empty)
set -euo pipefail

BINARY=$1 NEED=$2 HINT=$3
shift 3
PACKAGES="$*"

[ -x "$BINARY" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "$NEED ($BINARY is missing); install it with:" >&2
    echo "  sudo sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES'" >&2
    exit 2
fi

echo "$BINARY is missing: installing Debian's $PACKAGES (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # the package list is words
apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
if [ ! -x "$BINARY" ]; then
    echo "apt-get installed $PACKAGES, but $BINARY is still missing${HINT:+: $HINT}" >&2
    exit 2
fi
