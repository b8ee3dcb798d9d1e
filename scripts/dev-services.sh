#!/usr/bin/env bash
# Starts the test services (PostgreSQL 15, Azurite blob) for development, prints the exports for another shell, and
# keeps them running until Ctrl-C. Then e.g.: eval "$(…printed lines…)"; dotnet test --filter …
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/services.sh
source "$REPO_ROOT/scripts/lib/services.sh"
trap services_stop EXIT
trap 'exit 0' INT TERM

services_install_packages
services_install_node_modules
services_start
printf "export PIPELINE_TEST_POSTGRES='%s'\nexport PIPELINE_TEST_BLOBS='%s'\nexport PIPELINE_TEST_CHROMIUM='%s'\n" "$PIPELINE_TEST_POSTGRES" "$PIPELINE_TEST_BLOBS" "$PIPELINE_TEST_CHROMIUM"
services_log "running; Ctrl-C stops and removes them"
while kill -0 "$AZURITE_PID" 2>/dev/null; do sleep 1; done
services_log "Azurite exited"; exit 1
