#!/usr/bin/env python3
"""Include direction: a room includes only itself, the rooms below it and
core. Run by `make test` (ctest `layers`); prints each violation as
FILE:LINE: include "X" points up or across (ROOM -> ROOM).

A module's root holds its main file and its spine header (gw.h, broker.h):
root .c files may include anything of their module; a root header may be
included by the rooms named in SPINE and itself includes only lower rooms.
Modules never include each other; core includes no module."""
import os, re, sys

# room -> rooms it may include (besides itself and core). Lower first.
BELOW = {
    "broker/store": [],
    "broker/queue": ["broker/store"],
    "broker/aws": [],
    "broker/sqs": ["broker/aws", "broker/queue", "broker/store"],
    "broker/sns": ["broker/aws"],
    "broker/push": ["broker/aws", "broker/sns", "broker/queue", "broker/store"],
    "broker/topic": ["broker/push", "broker/sns", "broker/aws", "broker/queue", "broker/store"],
    "broker/http": ["broker", "broker/topic", "broker/push", "broker/sns", "broker/sqs",
                    "broker/aws", "broker/queue", "broker/store"],
    "gateway/limit": [],
    "gateway/resilience": [],
    "gateway/balance": ["gateway/resilience"],
    "gateway/config": ["gateway/balance", "gateway/resilience", "gateway/limit"],
    "gateway/guard": ["gateway", "gateway/config", "gateway/balance", "gateway/resilience",
                      "gateway/limit"],
    "gateway/proxy": ["gateway", "gateway/guard", "gateway/config", "gateway/balance",
                      "gateway/resilience", "gateway/limit"],
    "gateway/admin": ["gateway", "gateway/proxy", "gateway/guard", "gateway/config",
                      "gateway/balance", "gateway/resilience", "gateway/limit"],
}
# What a module's root header may include: everything but the rooms above it.
ROOT_HEADER_BELOW = {
    "broker": ["broker/topic", "broker/push", "broker/sns", "broker/sqs", "broker/aws",
               "broker/queue", "broker/store"],
    "gateway": ["gateway/config", "gateway/balance", "gateway/resilience", "gateway/limit"],
}
MODULES = ("broker", "gateway", "echo", "flood", "core")
INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"')

def allowed(room, is_header, target_room):
    if target_room == room or target_room == "core":
        return True
    mod, tmod = room.split("/")[0], target_room.split("/")[0]
    if mod != tmod:
        return False
    if "/" not in room:                 # module root
        return (not is_header) or target_room in ROOT_HEADER_BELOW.get(mod, [])
    return target_room in BELOW.get(room, [])

def main(src, allow_file):
    allow = set()
    if allow_file and os.path.exists(allow_file):
        allow = {l.split("#")[0].strip() for l in open(allow_file)} - {""}
    bad = []
    for dp, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(dp, f)
            room = os.path.relpath(dp, src)
            if room == ".":
                continue
            for n, line in enumerate(open(path, errors="replace"), 1):
                m = INC.match(line)
                if not m or "/" not in m.group(1):
                    continue
                target_room = os.path.dirname(m.group(1))
                if target_room.split("/")[0] not in MODULES:
                    continue
                if allowed(room, f.endswith(".h"), target_room):
                    continue
                key = f"{os.path.relpath(path, src)} -> {m.group(1)}"
                if key not in allow:
                    bad.append(f"src/{os.path.relpath(path, src)}:{n}: include \"{m.group(1)}\" points up or across ({room} -> {target_room})")
    for b in bad:
        print(b)
    return 1 if bad else 0

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "src"),
                  os.path.join(here, "layers.allow")))
