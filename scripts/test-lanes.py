#!/usr/bin/env python3
"""Splits the test executables `cargo test --no-run --message-format=json` lists into two
lanes: <dir>/local (the firecamp-local package's) and <dir>/rest, a line "package dir<TAB>exe"
each, by the executables' names."""
import json
import os
import sys

out = sys.argv[1]
lanes = {"local": [], "rest": []}
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") != "compiler-artifact" or not msg.get("profile", {}).get("test") or not msg.get("executable"):
        continue
    pkg = os.path.dirname(msg["manifest_path"])
    lane = "local" if msg["package_id"].split("#")[-1].startswith("firecamp-local@") else "rest"
    lanes[lane].append(f"{pkg}\t{msg['executable']}")
for name, rows in lanes.items():
    with open(os.path.join(out, name), "w") as f:
        f.write("".join(r + "\n" for r in sorted(set(rows), key=lambda r: os.path.basename(r.split("\t")[1]))))
if not lanes["local"] or not lanes["rest"]:
    sys.exit("test-lanes: a lane is empty: cargo listed no test executables")
