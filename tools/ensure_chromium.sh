#!/usr/bin/env bash
# The page tests' browser: Debian's headless Chromium (Playwright drives it; no browser is ever downloaded).
# `make test` and `.ci/run` both call this, so a fresh machine's `make test` passes: when the browser is missing,
# root installs the Debian packages (apt-get update first, non-interactive); anyone else is stopped at once with the
# one command to run. The page tests never skip: without a browser they fail (testkit/browser.py).
#
# CHROMIUM_BIN: the browser the page tests use (testkit.browser reads the same variable), /usr/bin/chromium by default.
set -euo pipefail

CHROMIUM_BIN=${CHROMIUM_BIN:-/usr/bin/chromium}
PACKAGES="chromium chromium-driver fonts-dejavu-core"

[ -x "$CHROMIUM_BIN" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "the page tests need Debian's Chromium ($CHROMIUM_BIN is missing); install it with:" >&2
    echo "  sudo sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES'" >&2
    exit 2
fi

echo "$CHROMIUM_BIN is missing: installing Debian's $PACKAGES (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # the package list is words
apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
if [ ! -x "$CHROMIUM_BIN" ]; then
    echo "apt-get installed $PACKAGES, but $CHROMIUM_BIN is still missing: set CHROMIUM_BIN to the browser's path" >&2
    exit 2
fi
