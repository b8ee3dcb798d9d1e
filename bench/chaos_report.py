#!/usr/bin/env python3
"""The report of bench/chaos.sh: what a series of killed workers cost and whether anything was lost.

Reads the run store with psql, the artifact store through Azure Blob Storage's REST API (Shared Key signed with the
standard library: an independent client, not the pipeline's own store code), the worker logs (compact JSON, one
event a line) and the kill log the driver wrote. Prints the tables, writes report.json beside the kill log, and
exits 1 when a run did not succeed or an artifact was lost, corrupt or duplicated.

    python3 bench/chaos_report.py --out DIR --pg-port PORT --db chaos --blobs CONNECTION_STRING --container chaos
"""
import argparse
import base64
import email.utils
import hashlib
import hmac
import json
import os
import re
import statistics
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

BLOB_API_VERSION = "2021-12-02"


class BlobClient:
    """List and read one container with a Shared Key (storage account name + key), as the REST API documents it."""

    def __init__(self, connection_string, container):
        parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
        self.account = parts["AccountName"]
        self.key = base64.b64decode(parts["AccountKey"])
        self.endpoint = parts["BlobEndpoint"].rstrip("/")
        self.container = container

    def _request(self, path, query):
        url = f"{self.endpoint}/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": BLOB_API_VERSION}
        # Path-style endpoints (the emulator's http://host:port/account) keep the account in the path, so the
        # canonicalised resource names it twice: /account/account/container/blob.
        resource = f"/{self.account}{urllib.parse.urlparse(url).path}"
        for name in sorted(query, key=str.lower):
            resource += f"\n{name.lower()}:{query[name]}"
        canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
        to_sign = "GET\n" + "\n" * 11 + canonical_headers + resource
        signature = base64.b64encode(hmac.new(self.key, to_sign.encode("utf-8"), hashlib.sha256).digest()).decode()
        headers["Authorization"] = f"SharedKey {self.account}:{signature}"
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120)

    def list(self, include):
        """Every blob of the container: name -> {bytes, sha256_metadata}."""
        blobs, marker = {}, None
        while True:
            query = {"restype": "container", "comp": "list", "include": include}
            if marker:
                query["marker"] = marker
            with self._request(self.container, query) as r:
                root = ET.fromstring(r.read())
            for b in root.iter("Blob"):
                meta = {m.tag.lower(): m.text for m in (b.find("Metadata") or [])}
                blobs[b.findtext("Name")] = {
                    "bytes": int(b.findtext("Properties/Content-Length") or 0),
                    "sha256_metadata": meta.get("sha256"),
                }
            marker = root.findtext("NextMarker")
            if not marker:
                return blobs

    def sha256(self, name):
        """(sha256 of the content, bytes), read in chunks; None for a blob that cannot be read (404)."""
        digest, size = hashlib.sha256(), 0
        try:
            with self._request(f"{self.container}/{urllib.parse.quote(name, safe='/')}", {}) as r:
                while chunk := r.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise
        return digest.hexdigest(), size


def psql_json(args, sql):
    """Rows of a query as a list of dicts (json_agg on the server, so values keep their types)."""
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(args.pg_port), "-U", "postgres", "-d", args.db, "-AtqX", "-v", "ON_ERROR_STOP=1",
         "-c", f"SELECT coalesce(json_agg(t), '[]') FROM ({sql}) t"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def read_kills(path):
    """The driver's kill log: one tab-separated line per kill, the first line naming the fields."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if not lines:
        return []
    header, rows = lines[0], lines[1:]
    kills = [dict(zip(header, row)) for row in rows]
    for k in kills:
        for field in ("at", "started_at", "heartbeat_at", "exited_after", "load1"):
            k[field] = float(k[field]) if k.get(field) not in (None, "") else None
        for field in ("n", "stage_id", "run_id", "attempt", "exit_code"):
            k[field] = int(k[field]) if k.get(field) not in (None, "") else None
    return kills


def parse_time(text):
    """ISO-8601 UTC (the logs' @t, PostgreSQL's json timestamps) to seconds since the epoch."""
    from datetime import datetime, timezone
    text = text.replace("Z", "+00:00")
    m = re.match(r"^(.*\.\d{6})\d*(.*)$", text)  # Python wants at most 6 fraction digits
    if m:
        text = m.group(1) + m.group(2)
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def log_events(log_folder):
    """Per worker log (workers/NAME.log, compact JSON): (NAME, an iterator over its parsed events; other lines skipped)."""
    def events(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("{"):
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue
    for name in sorted(os.listdir(log_folder)):
        if name.endswith(".log"):
            yield name[:-4], events(os.path.join(log_folder, name))


def read_log_problems(log_folder):
    """Errors and fatal events in the worker logs, counted per worker and rendered message (first line, ids kept)."""
    counts = {}
    for worker, events in log_events(log_folder):
        for e in events:
            if e.get("@l") in ("Error", "Fatal"):
                text = e.get("State") or e.get("@mt", "")
                cause = (e.get("@x") or "").split("\n", 1)[0]
                key = f'{worker}: {text[:90]}{" / " + cause[:110] if cause else ""}'
                counts[key] = counts.get(key, 0) + 1
    return counts


def read_training_starts(log_folder):
    """Per stage id, each delivery's start of training: (time, resumed-from step, worker file), from the worker logs."""
    starts, handback_checkpoints = {}, {}
    for worker, events in log_events(log_folder):
        resuming = {}
        for e in events:
            stage, template = e.get("StageId"), e.get("@mt", "")
            if stage is None:
                continue
            if template.startswith("Resuming {Model} from the checkpoint at step"):
                resuming[stage] = e.get("Step")
            elif template.startswith("Training {Model} ("):
                starts.setdefault(stage, []).append((parse_time(e["@t"]), resuming.pop(stage, None) or 0, worker))
            elif template.startswith("Stopping at step {Step}: writing a checkpoint"):
                handback_checkpoints.setdefault(stage, []).append((parse_time(e["@t"]), e.get("Step")))
    return starts, handback_checkpoints


STEP = re.compile(r"step (\d+)/(\d+)")


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the driver's output folder (kills.tsv, workers/*.log)")
    ap.add_argument("--pg-port", required=True, type=int)
    ap.add_argument("--db", required=True)
    ap.add_argument("--blobs", required=True, help="the blob store's connection string")
    ap.add_argument("--container", required=True)
    args = ap.parse_args()

    kills = read_kills(os.path.join(args.out, "kills.tsv"))
    starts, handback_checkpoints = read_training_starts(os.path.join(args.out, "workers"))
    runs = psql_json(args, 'SELECT "Id" AS id, "Status" AS status, "CreatedAt" AS created, "FinishedAt" AS finished FROM pipeline.runs ORDER BY "Id"')
    stages = psql_json(args, 'SELECT "Id" AS id, "RunId" AS run, "Name" AS name, "Kind" AS kind, "Status" AS status, "Attempt" AS attempt, '
                             '"SummaryJson" AS summary, "Error" AS error FROM pipeline.stages ORDER BY "Id"')
    transitions = psql_json(args, 'SELECT "Id" AS id, "StageId" AS stage, "Attempt" AS attempt, "From" AS "from", "To" AS "to", "At" AS at, '
                                  '"Reason" AS reason FROM pipeline.stage_transitions ORDER BY "Id"')
    records = psql_json(args, 'SELECT "Id" AS id, "RunId" AS run, "StageId" AS stage, "Path" AS path, "Bytes" AS bytes, "Sha256" AS sha256 '
                              'FROM pipeline.artifacts ORDER BY "Id"')
    for name, rows in (("stages.json", stages), ("transitions.json", transitions), ("artifacts.json", records), ("runs.json", runs)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    history = {}
    for t in transitions:
        t["at_s"] = parse_time(t["at"])
        history.setdefault(t["stage"], []).append(t)

    report = {"kills": [], "runs": {}, "attempts": {}, "artifacts": {}, "problems": [], "observations": []}
    problems, observations = report["problems"], report["observations"]

    # Runs.
    status_counts = {}
    for r in runs:
        status_counts[r["status"]] = status_counts.get(r["status"], 0) + 1
        if r["status"] != "Succeeded":
            bad = [f'{s["name"]}={s["status"]}#{s["attempt"]} {s["error"] or ""}'.strip() for s in stages if s["run"] == r["id"] and s["status"] != "Succeeded"]
            problems.append(f'run {r["id"]} is {r["status"]}: {"; ".join(bad)}')
    wall = None
    if runs and all(r["finished"] for r in runs):
        wall = max(parse_time(r["finished"]) for r in runs) - min(parse_time(r["created"]) for r in runs)
    report["runs"] = {"launched": len(runs), "by_status": status_counts, "wall_seconds": wall}

    # Attempts per stage kind: the engine's attempt counter, and the deliveries that actually started the stage.
    kinds = {}
    for s in stages:
        k = kinds.setdefault(s["kind"], {"stages": 0, "attempts": 0, "starts": 0, "recovered": 0, "handed_back": 0})
        k["stages"] += 1
        k["attempts"] += s["attempt"]
        for t in history.get(s["id"], []):
            if t["to"] == "Running":
                k["starts"] += 1
            if t["from"] == "Running" and t["to"] == "Queued":
                if "lost: no heartbeat" in t["reason"]:
                    k["recovered"] += 1
                elif "shut down" in t["reason"]:
                    k["handed_back"] += 1
    report["attempts"] = kinds

    # Per kill: what it hit, what the engine did next, and the work it cost.
    for k in kills:
        entry = dict(k)
        sid = k["stage_id"]
        entry["lost_steps"] = entry["lost_seconds"] = entry["next_start_after"] = entry["resumed_from"] = entry["step_at_kill"] = None
        entry["engine"] = ""
        if sid is not None:
            later = [t for t in history.get(sid, []) if t["at_s"] >= k["at"]]
            back = next((t for t in later if t["from"] == "Running" and t["to"] in ("Queued", "Pending", "Failed", "Cancelled")), None)
            restart = next((t for t in later if t["to"] == "Running" and (back is None or t["id"] > back["id"])), None)
            if back:
                what = ("re-queued (lost)" if "lost: no heartbeat" in back["reason"] else
                        "handed back" if "shut down" in back["reason"] else f'{back["to"]}: {back["reason"][:50]}')
                entry["engine"] = f'{what} as #{back["attempt"]} after {back["at_s"] - k["at"]:.1f} s'
            if restart:
                entry["next_start_after"] = restart["at_s"] - k["at"]
            entry["lost_seconds"] = k["at"] - k["started_at"] if k["started_at"] else None
            # A claim resets the heartbeat but not the progress message: until this delivery's first beat (one heartbeat
            # interval after it started) the message is the previous attempt's.
            own_beat = k["heartbeat_at"] is not None and k["started_at"] is not None and k["heartbeat_at"] - k["started_at"] >= 0.5
            entry["progress_at_kill"] = (k.get("progress") or "-") if own_beat else "(no heartbeat of its own yet)"
            if k["kind"] == "train":
                m = STEP.search(k.get("progress") or "") if own_beat else None
                nxt = next((s for s in sorted(starts.get(sid, [])) if s[0] > k["at"]), None)
                if nxt:
                    entry["resumed_from"] = nxt[1]
                    # Not training yet (loading, or no heartbeat of its own): this attempt had trained nothing to lose.
                    entry["step_at_kill"] = int(m.group(1)) if m else None
                    entry["lost_steps"] = max(0, entry["step_at_kill"] - nxt[1]) if m else 0
                else:
                    problems.append(f'kill {k["n"]}: stage {sid} ({k["stage"]}) never started training again')
            if k["signal"] == "TERM" and (k.get("forced") or k["exit_code"] != 0):
                observations.append(f'kill {k["n"]} (SIGTERM to {k["worker"]}): exit code {k["exit_code"]}'
                                    + (", did not exit in time and was killed" if k.get("forced") else ""))
            if k["signal"] == "TERM" and back and "lost: no heartbeat" in back["reason"]:
                observations.append(f'kill {k["n"]} (SIGTERM, {k["stage"]} of run {k["run_id"]}): not handed back; another worker re-queued it as lost '
                                    f'{back["at_s"] - k["at"]:.1f} s after the signal, while the stopping worker was still within its grace period '
                                    f'(it exited after {k["exited_after"]:.1f} s)')
            if not back:
                problems.append(f'kill {k["n"]}: stage {sid} ({k["stage"]}) has no transition out of Running after the kill')
        report["kills"].append(entry)

    # Artifacts: every blob read back and hashed by this client.
    client = BlobClient(args.blobs, args.container)
    committed = client.list("metadata")
    try:
        with_uncommitted = client.list("metadata,uncommittedblobs")
    except urllib.error.HTTPError:
        with_uncommitted = committed
    uncommitted = sorted(set(with_uncommitted) - set(committed))
    hashes, unreadable, metadata_mismatch, no_metadata = {}, [], [], []
    for name, info in sorted(committed.items()):
        got = client.sha256(name)
        if got is None:
            unreadable.append(name)
            continue
        hashes[name] = got
        if info["sha256_metadata"] is None:
            no_metadata.append(name)
        elif info["sha256_metadata"] != got[0] or info["bytes"] != got[1]:
            metadata_mismatch.append(name)

    lost = [r["path"] for r in records if r["path"] not in hashes]
    corrupt = [r["path"] for r in records if r["path"] in hashes and (hashes[r["path"]][0] != r["sha256"] or hashes[r["path"]][1] != r["bytes"])]
    seen, duplicated = {}, []
    for r in records:
        key = (r["stage"], r["path"].rsplit("/", 1)[-1])
        if key in seen:
            duplicated.append(f'stage {r["stage"]}: {r["path"]} (records {seen[key]} and {r["id"]})')
        seen.setdefault(key, r["id"])
    # A succeeded stage must hold every file its kind's other succeeded stages hold (same preset, other seeds).
    files_of = {}
    for r in records:
        files_of.setdefault(r["stage"], set()).add(r["path"].rsplit("/", 1)[-1])
    expected = {}
    for s in stages:
        if s["status"] == "Succeeded":
            expected.setdefault(s["kind"], set()).update(files_of.get(s["id"], set()))
    missing_records = [f'stage {s["id"]} ({s["name"]}, run {s["run"]}): no record of {", ".join(sorted(expected[s["kind"]] - files_of.get(s["id"], set())))}'
                       for s in stages if s["status"] == "Succeeded" and expected[s["kind"]] - files_of.get(s["id"], set())]
    recorded = {r["path"] for r in records}
    orphans = sorted(n for n in hashes if n.startswith("runs/") and n not in recorded)
    state = sorted(n for n in hashes if n.startswith("state/"))
    other = sorted(n for n in hashes if not n.startswith(("runs/", "state/")))
    report["artifacts"] = {
        "records": len(records), "blobs": len(committed), "blobs_hashed": len(hashes), "bytes_hashed": sum(h[1] for h in hashes.values()),
        "lost": lost, "corrupt": corrupt, "duplicated": duplicated, "missing_records": missing_records, "orphans": orphans,
        "state_blobs": len(state), "other_blobs": other, "unreadable": unreadable, "metadata_mismatch": metadata_mismatch,
        "no_metadata": no_metadata, "uncommitted": uncommitted,
    }
    for what, items in (("lost (record without its blob)", lost), ("corrupt (blob differs from its record)", corrupt),
                        ("duplicated (two records of one file name in one stage)", duplicated),
                        ("missing from a succeeded stage", missing_records), ("unreadable blobs", unreadable),
                        ("blobs whose content differs from their sha256 metadata", metadata_mismatch)):
        if items:
            problems.append(f"artifacts {what}: {len(items)}: " + "; ".join(items[:5]))

    # Print.
    machine = open(os.path.join(args.out, "machine.txt"), encoding="utf-8").read().strip() if os.path.exists(os.path.join(args.out, "machine.txt")) else ""
    print(machine)
    print()
    print(f'runs: {len(runs)} launched; ' + ", ".join(f"{v} {k.lower()}" for k, v in sorted(status_counts.items()))
          + (f"; {wall / 60:.1f} min from the first launch to the last finish" if wall else ""))
    print()
    print(table(["stage kind", "stages", "attempts", "starts", "re-queued (lost worker)", "handed back (SIGTERM)"],
                [[k, v["stages"], v["attempts"], v["starts"], v["recovered"], v["handed_back"]] for k, v in sorted(kinds.items())]))
    print()
    print("progress at kill: the stage's last heartbeat (at most 1 s before the signal); resumed: the step the next start of\n"
          "training loaded from its checkpoint (worker logs); lost steps = progress at kill - resumed (train stages);\n"
          "lost s = seconds the killed attempt had run; restarted after: signal -> the stage's next Running transition\n"
          "(including any wait for a free worker)")
    print(table(["#", "signal", "worker", "run", "stage", "attempt", "progress at kill", "engine after the kill", "restarted after s", "exit s", "lost steps", "lost s"],
                [[e["n"], e["signal"], e["worker"], fmt(e["run_id"]), f'{e["stage"]} ({e["stage_id"]})' if e["stage_id"] else "(idle)", fmt(e["attempt"]),
                  (f'step {e["step_at_kill"]}' if e["step_at_kill"] is not None else (e.get("progress_at_kill") or "")[:30]) +
                  (f', resumed {e["resumed_from"]}' if e["resumed_from"] is not None else ""),
                  e["engine"], fmt(e["next_start_after"]), fmt(e["exited_after"]), fmt(e["lost_steps"]), fmt(e["lost_seconds"])]
                 for e in report["kills"]]))
    print()
    summary = {}
    for signal in sorted({e["signal"] for e in report["kills"]}):
        mine = [e for e in report["kills"] if e["signal"] == signal]
        steps = [e["lost_steps"] for e in mine if e["lost_steps"] is not None]
        secs = [e["lost_seconds"] for e in mine if e["kind"] != "train" and e["lost_seconds"] is not None]
        restarts = [e["next_start_after"] for e in mine if e["next_start_after"] is not None]
        summary[signal] = {
            "kills": len(mine), "hit_a_stage": sum(1 for e in mine if e["stage_id"]),
            "train_kills": len(steps), "lost_steps_median": statistics.median(steps) if steps else None, "lost_steps_max": max(steps) if steps else None,
            "other_kills": len(secs), "lost_seconds_median": statistics.median(secs) if secs else None, "lost_seconds_max": max(secs) if secs else None,
            "restart_seconds_median": statistics.median(restarts) if restarts else None, "restart_seconds_max": max(restarts) if restarts else None,
        }
        s = summary[signal]
        print(f'{signal}: {s["kills"]} kills ({s["hit_a_stage"]} hit a stage); train stages: {s["train_kills"]}, steps lost median {fmt(s["lost_steps_median"])} max {fmt(s["lost_steps_max"])}; '
              f'other stages: {s["other_kills"]}, seconds lost median {fmt(s["lost_seconds_median"])} max {fmt(s["lost_seconds_max"])}; '
              f'stage running again after median {fmt(s["restart_seconds_median"])} s, max {fmt(s["restart_seconds_max"])} s')
    loads = [k["load1"] for k in kills if k["load1"] is not None]
    if loads:
        print(f"load average (1 min) at the kills: median {statistics.median(loads):.1f}, max {max(loads):.1f}")
    report["summary"] = summary
    a = report["artifacts"]
    print()
    print(f'artifacts: {a["records"]} records, {a["blobs"]} blobs ({a["state_blobs"]} under state/), {a["bytes_hashed"] / 1e6:.1f} MB read back and hashed by the REST client')
    print(f'  lost {len(lost)}, corrupt {len(corrupt)}, duplicated {len(duplicated)}, missing from a succeeded stage {len(missing_records)}, '
          f'orphans under runs/ {len(orphans)}, other blobs {len(other)}, staged but never committed {len(uncommitted)}')
    print(f'  sha256: {len(hashes) - len(metadata_mismatch) - len(no_metadata)} of {len(committed)} blobs match their recorded sha256 metadata; '
          f'{len(records) - len(lost) - len(corrupt)} of {len(records)} artifact records match their blob'
          + (f"; {len(no_metadata)} without sha256 metadata" if no_metadata else "") + (f"; {len(unreadable)} unreadable" if unreadable else ""))
    for name in orphans[:10]:
        print(f"  orphan: {name}")
    for name in uncommitted[:10]:
        print(f"  uncommitted: {name}")
    unexpected = os.path.join(args.out, "unexpected-exits.log")
    if os.path.exists(unexpected):
        with open(unexpected, encoding="utf-8") as f:
            observations.extend(line.strip() for line in f if line.strip())
    log_problems = read_log_problems(os.path.join(args.out, "workers"))
    report["worker_log_errors"] = log_problems
    print()
    print(f"worker logs: {sum(log_problems.values())} error events" + (":" if log_problems else ""))
    for text, n in sorted(log_problems.items()):
        print(f"  {n} x {text}")
    print()
    if observations:
        print("observations (not failures):")
        for o in observations:
            print(f"  - {o}")
        print()
    if problems:
        print("PROBLEMS:")
        for p in problems:
            print(f"  - {p}")
    else:
        print("OK: every run succeeded; no artifact lost, corrupt or duplicated; every blob's sha256 checked")
    with open(os.path.join(args.out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, default=str)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
