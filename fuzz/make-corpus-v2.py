#!/usr/bin/env python3
# Seeds of the version 2 harnesses from tests/vectors-v2: every vector as is, and the bodies inside them
# (each harness also feeds the raw bytes to the body decoders).
#
#   fuzz/make-corpus-v2.py VECTORS_DIR CORPUS_DIR
#
# The output is committed; this documents where the seeds come from. It writes vec-* and body-* files
# only, so merged long-run finds and crash-* regressions stay.
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "indep"))
import verify2  # noqa: E402  (its strict reader finds the bodies)


def put(out, harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    tag = hashlib.blake2b(data, digest_size=4).hexdigest()
    with open(os.path.join(d, "%s-%s" % (name, tag)), "wb") as f:
        f.write(data)


def inner(data, depth, path):
    """The bin at path inside data (a list of indexes and keys), or None."""
    try:
        o = verify2.whole(data, depth)
        for p in path:
            o = dict((k.decode(), v) for k, v in o)[p] if isinstance(p, str) else o[p]
        return bytes(o)
    except (verify2.Refuse, KeyError, IndexError, TypeError, UnicodeDecodeError):
        return None


def main(vec, out):
    files = {n: json.load(open(os.path.join(vec, n))) for n in os.listdir(vec) if n.endswith(".json")}
    plan = {"keyring.json": ["keyring"], "cert.json": ["cert"], "manifest.json": ["manifest2"],
            "wait.json": ["token"], "peer.json": ["dgram2"], "tracker.json": ["dgram2"], "report.json": ["dgram2"]}
    for fname, harnesses in plan.items():
        for i, v in enumerate(files[fname]["vectors"]):
            data = bytes.fromhex(v["hex"])
            for h in harnesses:
                put(out, h, "vec-%s-%03d" % (fname[:-5], i), data)
            body = inner(data, 3, [0])
            if fname in ("keyring.json", "cert.json", "manifest.json") and body:
                put(out, harnesses[0], "body-%03d" % i, body)
            dbody = inner(data, 1, [3])
            if fname == "peer.json" and dbody:
                put(out, "dgram2", "body-hint-%03d" % i, dbody)
                for key, h in (("cert", "cert"), ("rel", "manifest2")):
                    obj = inner(dbody, 4, [key, 0])
                    if obj:
                        put(out, h, "body-from-hint-%03d" % i, obj)
            if fname == "wait.json" and dbody:
                put(out, "token", "body-wait-%03d" % i, dbody)
                tok = inner(dbody, 4, ["tok", 0])
                if tok:
                    put(out, "token", "body-tok-%03d" % i, tok)
    for name, hexdoc in files["peer.json"]["keyrings"].items():
        put(out, "keyring", "vec-" + name, bytes.fromhex(hexdoc))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
