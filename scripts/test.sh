#!/usr/bin/env bash
# The test command: installs what is missing, starts PostgreSQL and Azurite on free loopback ports, runs
# `dotnet test Pipeline.sln "$@"` against them, and stops them again whatever happens. Exit code = dotnet test's.
#   ./scripts/test.sh                                        everything
#   ./scripts/test.sh --filter FullyQualifiedName~Artifacts  a subset (arguments go to dotnet test)
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/services.sh
source "$REPO_ROOT/scripts/lib/services.sh"
trap services_stop EXIT
trap 'exit 130' INT TERM

t0=$SECONDS
services_install_packages
services_install_node_modules
t1=$SECONDS
services_start
t2=$SECONDS

rc=0
(cd "$REPO_ROOT" && dotnet test Pipeline.sln "$@") 2>&1 | tee "$SERVICES_DIR/dotnet-test.log" || rc=$?
t3=$SECONDS
services_log "install $((t1 - t0))s, services start $((t2 - t1))s, dotnet test $((t3 - t2))s, exit code $rc"
# One closing line over all test assemblies, in the plain "N passed, N failed" form that CI logs are read for.
awk '/(Passed|Failed)! +- +Failed: +[0-9]+, +Passed: +[0-9]+, +Skipped: +[0-9]+/ {
       gsub(",", ""); for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) }
     } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$SERVICES_DIR/dotnet-test.log"
exit "$rc"
