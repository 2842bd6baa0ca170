#!/usr/bin/env bash
# Screenshot the HTML timeline of a failing run at 1280x800 in headless
# Chromium, to check by eye that the page explains itself (title with the
# planted bug, reproduce command, violations, faults, nothing cut off).
#
# Usage: ci/timeline-shot.sh [OUT.png] [MUTANT] [SCENARIO]   (EXACTSIM_SHOT_HEIGHT: window height, default 800)
#   defaults: docs/timeline.png, no-recommit-on-recovery, word_count.
# Runs seeds from 0 until one fails with the planted bug, writes its
# timeline to target/exactsim/timeline-shot.html and screenshots it. Installs
# Debian's `chromium` package when no chromium is on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/timeline.png}"
mutant="${2:-no-recommit-on-recovery}"
scenario="${3:-word_count}"
html="target/exactsim/timeline-shot.html"
mkdir -p "$(dirname "$out")" target/exactsim

chrome="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$chrome" ]; then
  echo "installing Debian's chromium package" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  chrome="$(command -v chromium)"
fi

cargo build --quiet
bin=target/debug/exactsim
seed=""
for s in $(seq 0 200); do
  if ! "$bin" run --scenario "$scenario" --seed "$s" --mutant "$mutant" >/dev/null; then
    seed="$s"
    break
  fi
done
if [ -z "$seed" ]; then
  echo "error: no seed in 0..200 fails with mutant $mutant on $scenario" >&2
  exit 1
fi
"$bin" run --scenario "$scenario" --seed "$seed" --mutant "$mutant" --timeline "$html" | head -1 || true

profile_dir="$(mktemp -d)"
trap 'rm -rf "$profile_dir"' EXIT
"$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile_dir" --window-size=1280,"${EXACTSIM_SHOT_HEIGHT:-800}" \
  --screenshot="$(realpath "$out")" "file://$(realpath "$html")" 2>/dev/null
echo "wrote $out ($scenario seed $seed, mutant $mutant) from $html"
