#!/usr/bin/env bash
# The page tests' browser: Debian's headless Chromium (Playwright drives it; no browser is ever downloaded).
# `make test` and `.ci/run` both call this, so a fresh machine's `make test` passes: when the browser is missing,
# root installs the Debian packages; anyone else is stopped at once with the one command to run
# (tools/ensure_debian_tool.sh). The page tests never skip: without a browser they fail (testkit/browser.py).
#
# CHROMIUM_BIN: the browser the page tests use (testkit.browser reads the same variable), /usr/bin/chromium by default.
set -euo pipefail

exec bash "$(dirname "$0")/ensure_debian_tool.sh" "${CHROMIUM_BIN:-/usr/bin/chromium}" \
    "the page tests need Debian's Chromium" "set CHROMIUM_BIN to the browser's path" \
    chromium chromium-driver fonts-dejavu-core
