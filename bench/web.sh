#!/usr/bin/env bash
# Dashboard load benchmark (issue 13, requirement 7): the real web host (src/Web, Release build) as a process on
# PostgreSQL and Azurite, its store filled with 500 runs of which one is running, then 50 HTTP clients watching that run
# (GET /api/runs, GET /api/runs/{id}, GET /runs/{id}) while Chromium pages hold Blazor circuits on its page. Prints p50,
# p95 and p99 client-side latency, request counts and errors per kind of request, and whether p95 < 200 ms. Exit code 1
# when a request or a circuit failed, 2 for bad arguments. See bench/README.md, "Dashboard under load".
#
#   bench/web.sh                              50 clients (1 s think time), 500 runs, 5 circuits, 60 s after 15 s warm-up
#   bench/web.sh --think-ms 0 --duration 30   clients without pauses: what the host serves flat out
#
# Options: --clients N [50]  --runs N [500]  --duration S [60]  --warm-up S [15]  --think-ms MS [1000]  --circuits N [5]
#          --no-build (use the last Release build of bench/WebLoad and src/Web)
# PostgreSQL and Azurite are started on free loopback ports (scripts/lib/services.sh) and stopped on exit, unless
# PIPELINE_TEST_POSTGRES and PIPELINE_TEST_BLOBS name running ones (./scripts/dev-services.sh prints them).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../scripts/lib/services.sh
source "$REPO_ROOT/scripts/lib/services.sh"

BUILD=1
ARGS=()
usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case $1 in
    --no-build) BUILD=0; shift ;;
    -h | --help) usage ;;
    --clients | --runs | --duration | --warm-up | --think-ms | --circuits)
      (($# >= 2)) || { echo "$1 needs a value" >&2; usage; }
      ARGS+=("$1" "$2"); shift 2 ;;
    *) echo "unknown argument '$1'" >&2; usage ;;
  esac
done

trap services_stop EXIT
trap 'exit 130' INT TERM
if [[ -z ${PIPELINE_TEST_POSTGRES:-} || -z ${PIPELINE_TEST_BLOBS:-} ]]; then
  services_install_packages
  services_install_node_modules
  services_start
fi
if ((BUILD)); then
  log=$(mktemp /tmp/pipeline-bench-web-build.XXXXXX)
  dotnet build "$REPO_ROOT/bench/WebLoad" -c Release -nologo -v q >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  rm -f "$log"
fi
DLL="$REPO_ROOT/bench/WebLoad/bin/Release/net10.0/linux-x64/Pipeline.Bench.WebLoad.dll"
[[ -f $DLL ]] || { echo "$DLL is missing: run without --no-build" >&2; exit 1; }
# Not exec: the EXIT trap stops the services afterwards.
dotnet "$DLL" "${ARGS[@]}"
