# shellcheck shell=bash
# Shared by scripts/test.sh and scripts/dev-services.sh (source it; needs REPO_ROOT set). Installs what the services
# need when it is missing, starts a throw-away PostgreSQL 15 and an in-memory Azurite blob service on free loopback
# ports, and stops exactly what it started. See docs ENVIRONMENT.md, "Services for tests".

PG_BIN=/usr/lib/postgresql/15/bin
AZURITE_ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
SERVICES_DIR=""
AZURITE_PID=""
PG_STARTED=""

services_log() { printf '[services] %s\n' "$*" >&2; }

# Debian packages: postgresql (the test server), dataset-fashion-mnist (real data for the data tests), and
# python3-torch + python3-numpy (the checkpoint test reads a C#-written ResNet-18 back in Python), python3-xarray +
# python3-netcdf4 + python3-h5py (the neural-data tests exchange Brain-Score-style NetCDF assemblies with xarray), and
# python3-sklearn (the neural-fit tests compare PLS and ridge predictions with scikit-learn's), and chromium (the
# browser of tests/Pipeline.E2E.Tests).
# 'apt-get update' runs once, and only when something is missing, so a second run costs nothing.
services_install_packages() {
  local missing=()
  [[ -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_ctl" ]] || missing+=(postgresql)
  [[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] || missing+=(dataset-fashion-mnist)
  /usr/bin/python3 -c 'import numpy, torch' 2>/dev/null || missing+=(python3-torch python3-numpy)
  /usr/bin/python3 -c 'import xarray, netCDF4, h5py' 2>/dev/null || missing+=(python3-xarray python3-netcdf4 python3-h5py)
  /usr/bin/python3 -c 'import sklearn' 2>/dev/null || missing+=(python3-sklearn)
  # The training-curve figures draw their text with it (SkiaSharp's Linux build reads fonts from /usr/share/fonts).
  [[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
  # The end-to-end tests drive Debian's Chromium with Playwright (never `playwright install`).
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  if ((${#missing[@]})); then
    services_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another test run on this machine may be installing too: wait for its dpkg lock instead of failing.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Azurite, pinned by package.json + package-lock.json.
services_install_node_modules() {
  if [[ ! -x "$REPO_ROOT/node_modules/.bin/azurite-blob" ]]; then
    services_log "npm ci (azurite)"
    (cd "$REPO_ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# Prints N distinct free loopback ports, one a line. The OS picks them (bind to port 0); the listeners are closed just
# before the services bind, which leaves a small window that the start-up checks below catch.
services_free_ports() {
  node -e '
    const net = require("net"); const n = +process.argv[1]; const servers = [];
    (function next() {
      if (servers.length === n) { for (const s of servers) { console.log(s.address().port); s.close(); } return; }
      const s = net.createServer(); s.listen(0, "127.0.0.1", () => { servers.push(s); next(); });
    })();' "$1"
}

services_wait_tcp() { # port seconds
  local deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.1
  done
}

# Runs a command as the postgres user (initdb and pg_ctl refuse root); as a non-root user, as that user.
services_as_postgres() {
  if ((EUID == 0)); then su postgres -s /bin/bash -c "$1"; else bash -c "$1"; fi
}

# Starts both services and exports PIPELINE_TEST_POSTGRES and PIPELINE_TEST_BLOBS (and PIPELINE_TEST_CHROMIUM, the
# browser the end-to-end tests launch). Call services_stop on EXIT.
services_start() {
  SERVICES_DIR=$(mktemp -d /tmp/pipeline-services.XXXXXX)
  chmod 755 "$SERVICES_DIR"
  local ports pg_port blob_port
  ports=$(services_free_ports 2)
  pg_port=$(sed -n 1p <<<"$ports")
  blob_port=$(sed -n 2p <<<"$ports")

  # Azurite first: it starts in the background while PostgreSQL initialises.
  mkdir -p "$SERVICES_DIR/azurite"
  (cd "$SERVICES_DIR/azurite" && exec "$REPO_ROOT/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$blob_port" \
    --inMemoryPersistence --disableTelemetry --skipApiVersionCheck --silent) >"$SERVICES_DIR/azurite.log" 2>&1 &
  AZURITE_PID=$!

  mkdir -p "$SERVICES_DIR/pg"
  if ((EUID == 0)); then chown postgres:postgres "$SERVICES_DIR/pg"; fi
  services_as_postgres "'$PG_BIN/initdb' -D '$SERVICES_DIR/pg/data' -U postgres --auth=trust -E UTF8 --no-sync" \
    >"$SERVICES_DIR/initdb.log" 2>&1 || { cat "$SERVICES_DIR/initdb.log" >&2; return 1; }
  PG_STARTED=1
  services_as_postgres "'$PG_BIN/pg_ctl' -D '$SERVICES_DIR/pg/data' -l '$SERVICES_DIR/pg/pg.log' \
    -o \"-c listen_addresses=127.0.0.1 -p $pg_port -k '$SERVICES_DIR/pg' -c fsync=off\" -w -t 30 start" >/dev/null \
    || { cat "$SERVICES_DIR/pg/pg.log" >&2; return 1; }

  if ! services_wait_tcp "$blob_port" 30 || ! kill -0 "$AZURITE_PID" 2>/dev/null; then
    services_log "Azurite did not start on port $blob_port:"; cat "$SERVICES_DIR/azurite.log" >&2; return 1
  fi

  export PIPELINE_TEST_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=postgres"
  export PIPELINE_TEST_BLOBS="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_ACCOUNT_KEY;BlobEndpoint=http://127.0.0.1:$blob_port/devstoreaccount1;"
  export PIPELINE_TEST_CHROMIUM=${PIPELINE_TEST_CHROMIUM:-/usr/bin/chromium}
  services_log "PostgreSQL on 127.0.0.1:$pg_port, Azurite blob on 127.0.0.1:$blob_port (logs in $SERVICES_DIR)"
}

# Stops only what services_start started; safe to call twice and after a partial start.
services_stop() {
  if [[ -n "$PG_STARTED" ]]; then
    services_as_postgres "'$PG_BIN/pg_ctl' -D '$SERVICES_DIR/pg/data' -m immediate -w stop" >/dev/null 2>&1 || true
    PG_STARTED=""
  fi
  if [[ -n "$AZURITE_PID" ]]; then
    kill "$AZURITE_PID" 2>/dev/null || true
    wait "$AZURITE_PID" 2>/dev/null || true
    AZURITE_PID=""
  fi
  if [[ -n "$SERVICES_DIR" && -d "$SERVICES_DIR" ]]; then
    rm -rf "$SERVICES_DIR"
    SERVICES_DIR=""
  fi
}
