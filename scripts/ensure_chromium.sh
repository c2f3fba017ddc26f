#!/bin/sh
# Make Debian's headless Chromium available for the browser tests (tests/test_explorer_browser.py).
# Idempotent; never fails its caller: when Chromium cannot be installed it says why and exits 0, and the browser
# tests then skip with that reason. Installs only as root with apt-get (apt-get update first, quiet).
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then
    echo "ensure_chromium: $(command -v "$b") is installed"
    exit 0
  fi
done
if [ "$(id -u)" != 0 ]; then
  echo "ensure_chromium: chromium is missing and we are not root: the browser tests will skip (apt-get install chromium)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: chromium is missing and there is no apt-get: the browser tests will skip"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
  echo "ensure_chromium: installed $(command -v chromium)"
else
  echo "ensure_chromium: apt-get could not install chromium (offline or no such package): the browser tests will skip"
fi
exit 0
