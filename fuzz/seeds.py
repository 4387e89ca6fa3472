#!/usr/bin/env python3
# Seed corpora for the fuzzers, made at build time from the spec's vectors plus
# the hostile shapes the project must survive: seeds.py SPEC_DIR OUT_DIR.
# fuzz/corpus/ holds what long runs found (merged, minimized) and regressions.
import hashlib
import json
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "indep"))
from verify import Reader  # noqa: E402  (our independent msgpack reader)

PREFIX = bytes.fromhex("95a2554701")


def put(out, harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def body_of(dgram):
    r = Reader(dgram)
    r.num(1)  # 95
    arr = [r.obj() for _ in range(5)]
    return arr[3]


def fixstr(s):
    return bytes([0xa0 | len(s)]) + s


def hostile(out):
    """The issue's list, on each datagram-shaped harness."""
    valid = bytes.fromhex(VALID_HELLO)
    cases = {}
    for n in (0, 1, 4, 5, 6, 511, 512, 1231, 1232, 1233):
        cases["size-%d" % n] = (valid + bytes(1300))[:n]
    for cut in range(0, len(valid), 37):
        cases["trunc-%d" % cut] = valid[:cut]
    huge = {"array32": "dd01000000", "bin32": "c6ffffffff", "map16": "deffff", "str32": "db7fffffff",
            "map32": "df7fffffff", "array16": "dcffff"}
    for k, h in huge.items():
        cases["huge-top-" + k] = bytes.fromhex(h) + bytes(8)
        cases["huge-body-" + k] = PREFIX + b"\x01" + b"\xc5\x01\xf0" + bytes.fromhex(h) + bytes(490)
    cases["reserved-c1"] = PREFIX + b"\x01\xc1" + bytes(600)
    cases["deep-nesting"] = b"\x91" * 1000 + b"\xc0"
    cases["deep-body"] = PREFIX + b"\x01\xc5\x03\xe9" + b"\x91" * 1000 + b"\xc0" + bytes(64)
    body = b"\x81" + fixstr(b"uid") + b"\x01"
    for name, val in {"uint8-5": b"\xcc\x05", "int8-5": b"\xd0\x05", "float": b"\xcb" + struct.pack(">d", 1.5),
                      "nan": b"\xcb" + struct.pack(">d", float("nan")), "nil": b"\xc0", "ext": b"\xd4\x01\x00",
                      "true": b"\xc3", "neg": b"\xff"}.items():
        cases["value-" + name] = b"\x81" + fixstr(b"uid") + val
    cases["str8-key"] = b"\x81\xd9\x03uid\x01"
    cases["dup-key"] = b"\x82" + fixstr(b"uid") + b"\x01" + fixstr(b"uid") + b"\x02"
    cases["bad-utf8"] = b"\x81" + fixstr(b"plat") + b"\xa2\xc3\x28"
    cases["nul-in-str"] = b"\x81" + fixstr(b"plat") + b"\xa3a\x00b"
    cases["body-alone"] = body
    for name, data in cases.items():
        for h in ("dgram", "hello", "hint"):
            put(out, h, name, data)
        put(out, "plugin", name, b"\x00" + data)


def from_vectors(spec, out):
    vec = lambda n: json.load(open(os.path.join(spec, "vectors", n)))
    tr, pe = vec("tracker.json"), vec("peer.json")
    for i, v in enumerate(tr["vectors"]):
        d = bytes.fromhex(v["hex"])
        name = "tracker-%02d" % i
        put(out, "dgram", name, d)
        put(out, "hello", name, d)
        put(out, "plugin", name, b"\x00" + d)
        try:
            put(out, "hello", name + "-body", body_of(d))
        except (ValueError, IndexError, TypeError, UnicodeDecodeError):
            pass
    for i, v in enumerate(pe["vectors"]):
        d = bytes.fromhex(v["hex"])
        put(out, "dgram", "peer-%02d" % i, d)
        put(out, "hint", "peer-%02d" % i, d)
        try:
            rel = Reader(body_of(d)).obj()["rel"]
            put(out, "hint", "peer-%02d-manifest" % i, rel[0])
        except (ValueError, IndexError, TypeError, KeyError, UnicodeDecodeError):
            pass
    for v in pe["unsigned_replies"]:
        put(out, "dgram", "reply-" + v["name"], bytes.fromhex(v["hex"]))
    # plugin: genuine HELLOs (mode 1) and flipped ones (mode 2) for many uids
    for i, uid in enumerate((1, 4, 7, 1001, 4242, 9999, 123456789, 2**62)):
        params = struct.pack("<Q", uid) + bytes([i | (0x80 if uid < 10000 else 0), 200, i & 1])
        put(out, "plugin", "genuine-%d" % uid, b"\x01" + params)
        put(out, "plugin", "flipped-%d" % uid, b"\x02" + params + bytes([i * 13, 0x40]))
    # policy: the embodiments and a full file, against fuzz_env's files
    head = b"keys: {hint: hint.key, issuers: [issuer.pub]}\nrelease: release.manifest\nstate: state\n"
    policies = {
        "full": head + b"targets: [\"1.4.0\", \"<1.3\", \"<= 0.9\"]\nclock_window: 300\nhint_ttl: 3600\n"
                       b"retry: 60\ncookie: auto\ncookie_threshold: 10\nsource_budget: 5\n"
                       b"shard: {index: 1, count: 3}\npaused: false\nstages:\n"
                       b"  - name: a\n    networks: [1.2.0.0/16, \"2001:db8::/32\"]\n    uid_mod: {div: 3, rem: 1}\n"
                       b"    quota: 1000000\n  - {name: b, uid_digits_max: 7, quota: 500000}\n"
                       b"  - {name: c, uids: [1001, 1002], uids_file: uids.txt}\n"
                       b"  - {name: d, percent: 1.5, salt: x, rate: 100, plat: [windows-x86_64], chan: [stable],"
                       b" start: 2026-12-01T00:00:00Z, end: 2026-12-31T00:00:00+08:00}\n",
        "embodiment-1": head + b"targets: [\"1.4\"]\nstages:\n"
                               b"  - {name: bj-third, networks: [10.0.0.0/8], uid_mod: {div: 3, rem: 1}, quota: 1000000}\n",
        "embodiment-2": head + b"targets: [\"1.4\"]\nstages:\n  - {name: short-ids, uid_digits_max: 7, quota: 500000}\n",
        "empty-stages": head + b"targets: [\"1.4\"]\nstages: []\n",
    }
    for name, text in policies.items():
        put(out, "policy", name, text)


VALID_HELLO = None  # tracker.json's first vector, the base of the hostile shapes


def main(argv):
    global VALID_HELLO
    if len(argv) != 3:
        print("usage: seeds.py SPEC_DIR OUT_DIR", file=sys.stderr)
        return 2
    spec, out = argv[1], argv[2]
    VALID_HELLO = json.load(open(os.path.join(spec, "vectors", "tracker.json")))["vectors"][0]["hex"]
    from_vectors(spec, out)
    hostile(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
