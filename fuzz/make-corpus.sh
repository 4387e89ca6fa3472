#!/usr/bin/env bash
# Regenerates the committed seed corpora fuzz/corpus/<harness>/ from the spec's vectors plus hostile shapes.
#
# Usage: fuzz/make-corpus.sh SPEC_DIR [OUT_DIR]   (default OUT_DIR: fuzz/corpus)
#
# The output is committed, so CI needs neither python3 nor this script; it is
# kept to document where every seed comes from and to redo them when the
# vectors change. It only adds or overwrites seed-*/vec-*/hostile-* files:
# crash-* regressions and merged long-run finds in OUT_DIR stay untouched.
# With python3's `cryptography` package it also signs a few extra valid
# HELLOs with the vectors' published seeds (keys.json); without it those are
# skipped.
set -euo pipefail
spec=${1:?usage: make-corpus.sh SPEC_DIR [OUT_DIR]}
out=${2:-$(dirname "$0")/corpus}
exec python3 - "$spec" "$out" <<'PY'
import json, os, struct, sys

spec, out = sys.argv[1], sys.argv[2]
vec = lambda n: json.load(open(os.path.join(spec, "vectors", n)))
tracker, peer, report = vec("tracker.json"), vec("peer.json"), vec("report.json")
NOW = tracker["now"]

def put(harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# ---- msgpack at the byte level: the seeds must be able to lie ----------
def skip(b, i):
    """End of the object starting at b[i] (trusts its headers)."""
    t = b[i]
    if t <= 0x7f or t >= 0xe0 or t in (0xc0, 0xc2, 0xc3): return i + 1
    if 0x80 <= t <= 0x8f: n, i, k = t & 15, i + 1, 2
    elif 0x90 <= t <= 0x9f: n, i, k = t & 15, i + 1, 1
    elif 0xa0 <= t <= 0xbf: return i + 1 + (t & 31)
    elif t in (0xc4, 0xd9): return i + 2 + b[i + 1]
    elif t in (0xc5, 0xda): return i + 3 + struct.unpack(">H", b[i + 1:i + 3])[0]
    elif t in (0xc6, 0xdb): return i + 5 + struct.unpack(">I", b[i + 1:i + 5])[0]
    elif t in (0xcc, 0xd0): return i + 2
    elif t in (0xcd, 0xd1): return i + 3
    elif t in (0xce, 0xd2, 0xca): return i + 5
    elif t in (0xcf, 0xd3, 0xcb): return i + 9
    elif t == 0xdc: n, i, k = struct.unpack(">H", b[i + 1:i + 3])[0], i + 3, 1
    elif t == 0xde: n, i, k = struct.unpack(">H", b[i + 1:i + 3])[0], i + 3, 2
    else: raise ValueError("type %02x" % t)
    for _ in range(n * k): i = skip(b, i)
    return i

def items(b, i):
    """The elements of the array or map at b[i], as byte strings."""
    t = b[i]
    n, i = (t & 15, i + 1) if t < 0xa0 else (struct.unpack(">H", b[i + 1:i + 3])[0], i + 3)
    k = 2 if 0x80 <= t <= 0x8f or t == 0xde else 1
    res = []
    for _ in range(n * k):
        j = skip(b, i); res.append(b[i:j]); i = j
    return res

def pairs(body):
    """A map body as [(key name, raw key, raw value)] in wire order."""
    el = items(body, 0)
    return [(el[i][1:].decode(), el[i], el[i + 1]) for i in range(0, len(el), 2)]

def uint(v):
    if v < 0x80: return bytes([v])
    for t, f, lim in ((0xcc, ">B", 1 << 8), (0xcd, ">H", 1 << 16), (0xce, ">I", 1 << 32), (0xcf, ">Q", 1 << 64)):
        if v < lim: return bytes([t]) + struct.pack(f, v)

def s(x):
    x = x.encode() if isinstance(x, str) else x
    if len(x) < 32: return bytes([0xa0 | len(x)]) + x
    return (b"\xd9" + bytes([len(x)]) if len(x) < 256 else b"\xda" + struct.pack(">H", len(x))) + x

def b_(x):
    if len(x) < 256: return b"\xc4" + bytes([len(x)]) + x
    return b"\xc5" + struct.pack(">H", len(x)) + x

def unbin(x):
    """The payload of a raw bin8/bin16 object."""
    return x[2:] if x[0] == 0xc4 else x[3:]

def mp_map(kv):
    n = len(kv)
    return (bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)) + b"".join(k + v for k, v in kv)

def arr(*el): return bytes([0x90 | len(el)]) + b"".join(el)

def dgram(t, body, sig):
    return b"\x95\xa2UG\x01" + bytes([t]) + b_(body) + (b_(sig) if sig is not None else b"\xc0")

def split(d):
    """datagram -> (type, body, sig or None)."""
    el = items(d, 0)
    sig = None if el[4] == b"\xc0" else el[4][2:]
    return el[2][0], unbin(el[3]), sig

def padded(kv, total, sig=b"\0" * 64):
    """kv (raw pairs, without pad) plus the pad that brings a HELLO datagram to
    `total` bytes when it can, else the nearest size below."""
    best = None
    for p in range(0, 1300):
        d = dgram(1, mp_map(kv + [(s("pad"), b_(bytes(p)))]), sig)
        if len(d) <= total: best = d
        else: break
    return best

# ---- optional signing with the vectors' seeds ---------------------------
try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    def key(n): return Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)
    def sign(n, ctx, body): return key(n).sign(ctx + b"\0" + body)
except ImportError:
    sign = None
ISSUER, CLIENT, STRANGER = 1, 2, 5

# ---- the vectors --------------------------------------------------------
T = [bytes.fromhex(v["hex"]) for v in tracker["vectors"]]
P = [bytes.fromhex(v["hex"]) for v in peer["vectors"]]
U = [bytes.fromhex(v["hex"]) for v in peer["unsigned_replies"]]
valid, valid1232 = T[0], T[1]
vt, vbody, vsig = split(valid)
kv_valid = [(k, v) for name, k, v in pairs(vbody) if name != "pad"]
cred_raw = dict((n, v) for n, k, v in pairs(vbody))["cred"]
cred_body, cred_sig = unbin(items(cred_raw, 0)[0]), unbin(items(cred_raw, 0)[1])
ht, hbody, hsig = split(P[0])
rel_raw = dict((n, v) for n, k, v in pairs(hbody))["rel"]
man_body = unbin(items(rel_raw, 0)[0])

for i, d in enumerate(T):
    put("dgram", "vec-tracker-%02d" % i, d)
    put("hello", "vec-tracker-%02d" % i, d)
    try:
        put("hello", "vec-tracker-%02d-body" % i, split(d)[1])
    except Exception:
        pass  # a vector too broken to split is seed enough as a datagram
for i, d in enumerate(P):
    put("dgram", "vec-peer-%02d" % i, d)
    put("hint", "vec-peer-%02d" % i, d)
    try:
        hb = split(d)[1]
        put("hint", "vec-peer-%02d-body" % i, hb)
        rr = dict((n, v) for n, k, v in pairs(hb))["rel"]
        put("hint", "vec-peer-%02d-manifest" % i, unbin(items(rr, 0)[0]))
    except Exception:
        pass
for v, d in zip(peer["unsigned_replies"], U):
    put("dgram", "vec-reply-" + v["name"], d)
    put("hint", "vec-reply-" + v["name"] + "-body", split(d)[1])
put("hello", "vec-cred-body", cred_body)
put("hello", "vec-cred-object", cred_raw)

# ---- hostile shapes -----------------------------------------------------
hostile = {}
for n in (0, 1, 4, 5, 6, 511):
    hostile["size-%d" % n] = valid[:n]
hostile["size-512"] = valid
hostile["size-1231"] = valid1232[:1231]
hostile["size-1232"] = valid1232
hostile["size-1233"] = valid1232 + b"\0"
for cut in (7, 9, 40, 100, 200, 300, 447, 448, 510):
    hostile["trunc-%d" % cut] = valid[:cut]
HUGE = {"array32": "dd01000000", "bin32": "c6ffffffff", "map16": "deffff", "str32": "db7fffffff",
        "map32": "df7fffffff", "array16": "dcffff", "bin16": "c5ffff", "str16": "daffff"}
for k, h in HUGE.items():
    hostile["huge-top-" + k] = bytes.fromhex(h) + bytes(8)
    # as the datagram's body length, then as a value inside a real body
    hostile["huge-dgram-" + k] = b"\x95\xa2UG\x01\x01" + bytes.fromhex(h) + bytes(600)
    hostile["huge-in-body-" + k] = padded([(s("uid"), bytes.fromhex(h))] + kv_valid[1:], 512)
hostile["huge-pad-bin32"] = dgram(1, mp_map(kv_valid + [(s("pad"), b"\xc6\xff\xff\xff\xff")]) + bytes(300), vsig)
hostile["reserved-c1-top"] = b"\xc1"
hostile["reserved-c1-dgram"] = b"\x95\xa2UG\x01\xc1" + bytes(600)
hostile["reserved-c1-value"] = padded([(s("uid"), b"\xc1")] + kv_valid[1:], 512)
hostile["deep-1000"] = b"\x91" * 1000 + b"\xc0"
hostile["deep-in-dgram"] = dgram(1, b"\x91" * 1000 + b"\xc0", vsig)
hostile["deep-in-value"] = padded(kv_valid[:6] + [(s("plat"), b"\x91" * 100 + b"\xa1x")], 900)
hostile["dup-uid"] = padded(kv_valid + [(s("uid"), uint(4242))], 512)
hostile["dup-pad"] = padded(kv_valid + [(s("pad"), b_(b""))], 512)
hostile["str8-key"] = padded([(b"\xd9\x03uid", uint(4242))] + kv_valid[1:], 512)
hostile["str16-key"] = padded([(b"\xda\x00\x03uid", uint(4242))] + kv_valid[1:], 512)
hostile["bin-key"] = padded([(b"\xc4\x03uid", uint(4242))] + kv_valid[1:], 512)
hostile["int-key"] = padded([(b"\x01", uint(4242))] + kv_valid[1:], 512)
hostile["map16-small"] = dgram(1, b"\xde\x00\x0a" + mp_map(kv_valid + [(s("pad"), b_(bytes(200)))])[1:], vsig)
hostile["bin16-small-body"] = b"\x95\xa2UG\x01\x01\xc5\x00\x05" + bytes(5) + b"\xc4\x40" + bytes(64)
for name, val in {"uint8-5": "cc05", "uint16-5": "cd0005", "uint32-5": "ce00000005", "uint64-5": "cf0000000000000005",
                  "int8-pos": "d005", "int8-neg1": "d0ff", "int16-neg": "d1ffe0", "float32": "ca3fc00000",
                  "float64": "cb3ff8000000000000", "nan": "cb7ff8000000000000", "inf": "cb7ff0000000000000",
                  "nil": "c0", "true": "c3", "fixext1": "d40100", "ext8": "c70101ff", "negfix": "ff",
                  "uint64-max": "cfffffffffffffffff", "uid-2^63": "cf8000000000000000", "zero": "00",
                  "str": "a3343234", "bin": "c4020042", "array": "9101", "map": "8101a0"}.items():
    hostile["uid-" + name] = padded([(s("uid"), bytes.fromhex(val))] + kv_valid[1:], 512)
    hostile["ts-" + name] = padded(kv_valid[:2] + [(s("ts"), bytes.fromhex(val))] + kv_valid[3:], 512)
for name, val in {"utf8-invalid": b"\xc3\x28", "nul": b"lin\0ux", "overlong": b"\xc0\x80", "surrogate": b"\xed\xa0\x80",
                  "above-10ffff": b"\xf4\x90\x80\x80", "truncated-utf8": b"ab\xe2\x82", "empty": b"",
                  "33-bytes": b"x" * 33, "32-bytes": b"x" * 32, "emoji": "\U0001f600".encode()}.items():
    hostile["plat-" + name] = padded(kv_valid[:6] + [(s("plat"), s(val))], 512)
for name, val in {"nul": "1.4\0", "lead-zero": "01.4", "5-parts": "1.2.3.4.5", "overflow": "4294967296",
                  "max": "4294967295.4294967295.4294967295", "dot-end": "1.4.", "space": " 1.4", "33-bytes": "1." + "1" * 31,
                  "sign": "+1.4", "unicode-digit": "\u0661.4"}.items():
    hostile["ver-" + name] = padded([kv_valid[0], (s("ver"), s(val))] + kv_valid[2:], 512)
hostile["cred-3-elements"] = padded(kv_valid[:5] + [(s("cred"), b"\x93" + cred_raw[1:] + b"\xc0")], 512)
hostile["cred-sig-63"] = padded(kv_valid[:5] + [(s("cred"), arr(b_(cred_body), b_(cred_sig[:63])))], 512)
hostile["cred-body-bin16"] = padded(kv_valid[:5] + [(s("cred"), arr(b"\xc5" + struct.pack(">H", len(cred_body)) + cred_body, b_(cred_sig)))], 512)
hostile["cred-dup-key"] = padded(kv_valid[:5] + [(s("cred"), arr(b_(mp_map([(k, v) for n, k, v in pairs(cred_body)] + [(s("uid"), uint(1))])), b_(cred_sig)))], 512)
hostile["cred-huge-inner"] = padded(kv_valid[:5] + [(s("cred"), arr(b"\xc6\xff\xff\xff\xff", b_(cred_sig)))], 512)
hostile["sig-nil-hello"] = dgram(1, split(valid)[1], None)
hostile["wait-with-sig"] = dgram(3, split(U[0])[1], bytes(64))
hostile["type-0"] = b"\x95\xa2UG\x01\x00" + valid[6:]
hostile["type-5"] = b"\x95\xa2UG\x01\x05" + valid[6:]
hostile["type-uint8-1"] = b"\x95\xa2UG\x01\xcc\x01" + valid[6:]
hostile["version-uint8"] = b"\x95\xa2UG\xcc\x01\x01" + valid[6:]
hostile["magic-str8"] = b"\x95\xd9\x02UG\x01\x01" + valid[6:]
hostile["array16-5"] = b"\xdc\x00\x05\xa2UG\x01\x01" + valid[6:]
# dgram gets every shape; hello the bodies (its pipeline sees the datagrams
# through the vectors) and the size edges, to keep the corpus small
for name, d in hostile.items():
    put("dgram", "hostile-" + name, d)
    if name.startswith(("size-", "huge-top-", "deep-1000", "reserved-c1-top")):
        put("hello", "hostile-" + name, d)
    try:
        put("hello", "hostile-" + name + "-body", split(d)[1])
    except Exception:
        pass

# the same hostility on the peer's side: HINT bodies and manifests
hkv = [(k, v) for n, k, v in pairs(hbody)]
mkv = [(k, v) for n, k, v in pairs(man_body)]
man = lambda kv: arr(b_(mp_map(kv)), b_(bytes(64)))
hint_hostile = {
    "mirror-huge": mp_map(hkv[:4] + [(s("mirror"), uint(2 ** 64 - 1))] + hkv[5:]),
    "mirror-neg": mp_map(hkv[:4] + [(s("mirror"), b"\xff")] + hkv[5:]),
    "dup-rel": mp_map(hkv + [hkv[6]]),
    "rel-3": mp_map(hkv[:6] + [(s("rel"), b"\x93" + rel_raw[1:] + b"\xc0")]),
    "rel-deep": mp_map(hkv[:6] + [(s("rel"), b"\x91" * 200 + b"\xc0")]),
    "urls-0": man(mkv[:1] + [(s("urls"), b"\x90")] + mkv[2:]),
    "urls-9": man(mkv[:1] + [(s("urls"), arr(*[s("https://a/")] * 9))] + mkv[2:]),
    "urls-16": man(mkv[:1] + [(s("urls"), b"\xdc\x00\x10" + s("https://a/") * 16)] + mkv[2:]),
    "url-201": man(mkv[:1] + [(s("urls"), arr(s("https://" + "a" * 193)))] + mkv[2:]),
    "url-ftp": man(mkv[:1] + [(s("urls"), arr(s("ftp://x.example/")))] + mkv[2:]),
    "url-space": man(mkv[:1] + [(s("urls"), arr(s("https://a b/")))] + mkv[2:]),
    "url-nul": man(mkv[:1] + [(s("urls"), arr(s(b"https://a\0/")))] + mkv[2:]),
    "url-bare-scheme": man(mkv[:1] + [(s("urls"), arr(s("https://")))] + mkv[2:]),
    "url-bin": man(mkv[:1] + [(s("urls"), arr(b_(b"https://a/")))] + mkv[2:]),
    "to-lead-zero": man([(s("to"), s("02.0"))] + mkv[1:]),
    "hash-31": man(mkv[:3] + [(s("hash"), b_(bytes(31)))] + mkv[4:]),
    "size-float": man(mkv[:2] + [(s("size"), b"\xcb" + bytes(8))] + mkv[3:]),
}
for name, body in hint_hostile.items():
    if body[0] == 0x92:  # a manifest: as a body of its own and inside a HINT
        put("hint", "hostile-manifest-" + name, unbin(items(body, 0)[0]))
        body = mp_map(hkv[:6] + [(s("rel"), body)])
    put("hint", "hostile-" + name + "-body", body)
    put("hint", "hostile-" + name, dgram(2, body, hsig))
    put("dgram", "hostile-hint-" + name, dgram(2, body, hsig))
for name in ("size-0", "size-1", "size-5", "huge-top-bin32", "huge-top-map16", "huge-top-array32", "reserved-c1-top", "deep-1000"):
    put("hint", "hostile-" + name, hostile[name])

# ---- REPORT (fuzz_report): the vectors, then hostile shapes ---------------
R = [bytes.fromhex(v["hex"]) for v in report["vectors"]]
for i, d in enumerate(R):
    put("report", "vec-report-%02d" % i, d)
    put("dgram", "vec-report-%02d" % i, d)
rt, rbody, rsig = split(R[0])
rkv = [(k, v) for n, k, v in pairs(rbody)]  # uid ver to res ts nonce pk cred
def rdgram(kv, sig=rsig): return dgram(5, mp_map(kv), sig)
report_hostile = {
    "res-6": rdgram(rkv[:3] + [(s("res"), uint(6))] + rkv[4:]),
    "res-uint64-max": rdgram(rkv[:3] + [(s("res"), uint(2 ** 64 - 1))] + rkv[4:]),
    "res-neg": rdgram(rkv[:3] + [(s("res"), b"\xff")] + rkv[4:]),
    "res-uint8-5": rdgram(rkv[:3] + [(s("res"), b"\xcc\x05")] + rkv[4:]),
    "uid-0": rdgram([(s("uid"), uint(0))] + rkv[1:]),
    "uid-2^63": rdgram([(s("uid"), uint(2 ** 63))] + rkv[1:]),
    "to-lead-zero": rdgram(rkv[:2] + [(s("to"), s("02.0"))] + rkv[3:]),
    "ver-5-parts": rdgram([rkv[0], (s("ver"), s("1.2.3.4.5"))] + rkv[2:]),
    "dup-res": rdgram(rkv + [rkv[3]]),
    "unknown-why": rdgram(rkv + [(s("why"), uint(1))]),
    "missing-cred": rdgram(rkv[:7]),
    "cred-3-elements": rdgram(rkv[:7] + [(s("cred"), b"\x93" + rkv[7][1][1:] + b"\xc0")]),
    "cred-nested": rdgram(rkv[:7] + [(s("cred"), b"\x92\x91\xc4\x00" + b_(bytes(64)))]),
    "pad-bin16-small": rdgram(rkv + [(s("pad"), b"\xc5\x00\x05" + bytes(5))]),
    "pad-1232": rdgram(rkv + [(s("pad"), b_(bytes(1232)))]),
    "pad-nonzero": rdgram(rkv + [(s("pad"), b_(b"\x55" * 40))]),
    "sig-nil": dgram(5, rbody, None),
    "sig-63": b"\x95\xa2UG\x01\x05" + b_(rbody) + b_(rsig[:63]),
    "as-hello-type": dgram(1, rbody, rsig),
    "map16-small": dgram(5, b"\xde\x00\x08" + mp_map(rkv)[1:], rsig),
    "str8-key": rdgram([(b"\xd9\x03uid", rkv[0][1])] + rkv[1:]),
    "trailing": R[0] + b"\xc0",
    "body-trailing": dgram(5, rbody + b"\xc0", rsig),
}
for cut in (5, 6, 9, 40, 120, len(R[0]) - 65, len(R[0]) - 1):
    report_hostile["trunc-%d" % cut] = R[0][:cut]
for name, d in report_hostile.items():
    put("report", "hostile-" + name, d)
    put("dgram", "hostile-report-" + name, d)
put("report", "vec-report-body", rbody)
if sign:
    def report_signed(kv, pad=None):
        body = mp_map(kv + ([(s("pad"), b_(bytes(pad)))] if pad is not None else []))
        return dgram(5, body, sign(CLIENT, b"UG1-REPORT", body))
    rsigned = {
        "reversed-keys": report_signed(list(reversed(rkv))),
        "pad-0": report_signed(rkv, 0),
        "pad-to-1232": report_signed(rkv, 1232 - len(R[0]) - 8),  # pad key, bin16 header, bin16 body
        "res-5-ver-2.0.0.1": report_signed(rkv[:1] + [(s("ver"), s("2.0.0.1")), rkv[2], (s("res"), uint(5))] + rkv[4:]),
        "ts-far": report_signed(rkv[:4] + [(s("ts"), uint(2 ** 40))] + rkv[5:]),
    }
    assert len(rsigned["pad-to-1232"]) == 1232
    for name, d in rsigned.items():
        put("report", "seed-signed-" + name, d)
        put("dgram", "seed-signed-report-" + name, d)

# ---- extra valid HELLOs, signed with the published seeds ------------------
signed = {}
if sign:
    def cred(uid, pk=None, exp=NOW + 86400, issuer=ISSUER):
        from cryptography.hazmat.primitives import serialization
        raw = lambda n: key(n).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        import hashlib
        kid = hashlib.blake2b(raw(issuer), digest_size=32).digest()[:8]
        body = mp_map([(s("uid"), uint(uid)), (s("pk"), b_(pk or raw(CLIENT))), (s("exp"), uint(exp)), (s("kid"), b_(kid))])
        return arr(b_(body), b_(sign(issuer, b"UG1-CRED", body)))
    def hello(kv, total=600, signer=CLIENT, pad=True):
        d = padded(kv, total) if pad else dgram(1, mp_map(kv), bytes(64))
        t, body, _ = split(d)
        return dgram(1, body, sign(signer, b"UG1-HELLO", body))
    base = kv_valid[1:5]  # ver, ts, nonce, pk of the valid vector
    signed["uid-1001"] = hello([(s("uid"), uint(1001))] + base + [(s("cred"), cred(1001))])
    signed["uid-7-win-beta"] = hello([(s("uid"), uint(7))] + base + [(s("cred"), cred(7)), (s("plat"), s("windows-x86_64")), (s("chan"), s("beta"))])
    signed["uid-max"] = hello([(s("uid"), uint(2 ** 63 - 1))] + base + [(s("cred"), cred(2 ** 63 - 1))], 1232)
    signed["ver-0.9-cookie"] = hello([kv_valid[0], (s("ver"), s("0.9"))] + kv_valid[2:6] + [(s("cookie"), b_(b"\xaa" * 16))])
    signed["ver-2.0.0"] = hello([kv_valid[0], (s("ver"), s("2.0.0"))] + kv_valid[2:])
    signed["ts-skew-400"] = hello(kv_valid[:2] + [(s("ts"), uint(NOW + 400))] + kv_valid[3:])
    signed["reversed-keys"] = dgram(1, mp_map(list(reversed(kv_valid + [(s("pad"), b_(bytes(200)))]))), None)
    t, rb, _ = split(signed["reversed-keys"])
    signed["reversed-keys"] = dgram(1, rb, sign(CLIENT, b"UG1-HELLO", rb))
    signed["pad-first"] = hello([(s("pad"), b_(bytes(200)))] + kv_valid, pad=False)
    signed["undersized-signed"] = hello(kv_valid, pad=False)
    signed["cred-stranger-issuer"] = hello([kv_valid[0]] + base + [(s("cred"), cred(4242, issuer=STRANGER))])
    signed["cred-expired"] = hello([kv_valid[0]] + base + [(s("cred"), cred(4242, exp=NOW))])
    for name, d in signed.items():
        put("dgram", "seed-signed-" + name, d)
        put("hello", "seed-signed-" + name, d)

# ---- plugin: two header bytes (see fuzz_plugin.c), then the payload --------
def hdr(src=0, worker=0, mode=0, inst=0, tick=0, clock=0, reload=False):
    return bytes([src | worker << 3 | mode << 4 | inst << 6 | tick << 7, (0xa4 if reload else 0) | clock])
for i, d in enumerate(T):
    put("plugin", "vec-tracker-%02d" % i, hdr(src=i % 8, worker=i & 1, inst=(i // 8) & 1) + d)
for src in range(8):
    put("plugin", "vec-valid-src%d" % src, hdr(src=src) + valid)
    put("plugin", "vec-valid1232-src%d-guarded" % src, hdr(src=src, inst=1, clock=src & 3) + valid1232)
put("plugin", "vec-valid-retransmit", hdr(mode=3) + valid)
put("plugin", "vec-valid-retransmit-guarded", hdr(mode=3, inst=1) + valid)
put("plugin", "vec-valid-tick-reload", hdr(tick=1, reload=True, clock=3) + valid)
put("plugin", "vec-hint-to-tracker", hdr() + P[0])
put("plugin", "foreign-dns", hdr() + bytes.fromhex("12340100000100000000000003777777076578616d706c6503636f6d0000010001"))
put("plugin", "empty", hdr())
for name, d in signed.items():
    put("plugin", "seed-signed-" + name, hdr(src=len(name) % 8) + d)
for name, d in hostile.items():  # the decoder's own harness has them all
    if name.startswith(("size-", "huge-top-", "huge-dgram-bin32", "reserved-c1-dgram", "deep-in-dgram", "dup-uid",
                        "uid-uint8-5", "plat-nul", "ver-nul", "sig-nil-hello", "type-")):
        put("plugin", "hostile-" + name, hdr(src=len(name) % 8) + d)
# mode 1: HELLO bodies the harness signs with the client key
for i, d in enumerate((valid, valid1232)):
    put("plugin", "body-valid-%d" % i, hdr(mode=1, src=i) + split(d)[1])
for name, kv in {"ver-0.9": [kv_valid[0], (s("ver"), s("0.9"))] + kv_valid[2:],
                 "ver-1.4.1-beta": [kv_valid[0], (s("ver"), s("1.4.1"))] + kv_valid[2:6] + [(s("chan"), s("beta"))],
                 "plat-win": kv_valid[:6] + [(s("plat"), s("windows-x86_64")), (s("chan"), s("stable"))],
                 "cookie": kv_valid + [(s("cookie"), b_(bytes(16)))],
                 "reversed": list(reversed(kv_valid))}.items():
    d = padded(kv, 700)
    put("plugin", "body-" + name, hdr(mode=1, src=2) + split(d)[1])
# mode 2: recipes (flags, uid, ver, ts offset, exp offset, size, nonce, plat, chan, cookie)
def recipe(flags, uid, ver, ts_off=0, exp_off=0, size=0xff - 1, plat=b"", chan=b"", nonce=bytes(range(16))):
    vb = bytes([ver]) if isinstance(ver, int) else bytes([0x80, len(ver)]) + ver
    return (bytes([flags]) + struct.pack("<Q", uid) + vb + struct.pack("<hb", ts_off, exp_off) + bytes([size]) +
            nonce + (bytes([len(plat)]) + plat if flags & 1 else b"") + (bytes([len(chan)]) + chan if flags & 2 else b"") +
            b"\x5a" * 16)
recipes = {
    "4242-linux-stable": recipe(3, 4242, 0, plat=b"linux-x86_64", chan=b"stable"),
    "77-0.9": recipe(0, 77, 1),
    "1001-canary": recipe(0, 1001, 0),
    "lan-mod3": recipe(0, 7, 0),
    "beta": recipe(2, 123456789, 2, chan=b"beta"),
    "win-short": recipe(3 | 128, 9876, 0, plat=b"windows-x86_64", chan=b"stable"),
    "not-targeted": recipe(0, 5, 5),
    "skew-plus": recipe(0, 4242, 0, ts_off=301),
    "skew-minus": recipe(0, 4242, 0, ts_off=-300),
    "cred-expired": recipe(0, 4242, 0, exp_off=-24),
    "stranger-cred": recipe(8, 4242, 0),
    "stranger-hello": recipe(16, 4242, 0),
    "stranger-pk": recipe(32, 4242, 0),
    "uid-mismatch": recipe(64, 4242, 0),
    "uid-0": recipe(0, 0, 0),
    "uid-2^63": recipe(0, 2 ** 63, 0),
    "unpadded": recipe(0, 4242, 0, size=0xff),
    "min-size": recipe(0, 4242, 0, size=0),
    "ver-raw-bad": recipe(0, 4242, b"01.4"),
    "ver-raw-long": recipe(0, 4242, b"1." * 20),
    "plat-bad-utf8": recipe(1, 4242, 0, plat=b"\xc3\x28"),
    "cookie-dance": recipe(4, 4242, 0),
}
for name, r in recipes.items():
    put("plugin", "recipe-" + name, hdr(mode=2, src=len(name) % 8) + r)
    put("plugin", "recipe-" + name + "-guarded", hdr(mode=2, inst=1, src=(len(name) + 3) % 8, tick=1) + r)

# ---- policy files: valid ones first, then hostile ones ------------------------
HEAD = "keys:\n  hint: hint.key\n  issuers: [issuer.pub]\nrelease: release.manifest\nstate: state\n"
policies = {
    "full": HEAD + 'targets: ["1.4.0", "1.4.1", "<1.3", "<=0.9"]\nclock_window: 300\nhint_ttl: 3600\nretry: 3600\n'
            "cookie: auto\ncookie_threshold: 1000\nsource_budget: 1000\nshard: {index: 0, count: 1}\npaused: false\n"
            "stages:\n"
            "  - name: beijing-third\n    networks: [1.2.0.0/16, \"2001:db8::/32\"]\n    uid_mod: {div: 3, rem: 1}\n    quota: 1000000\n"
            "  - name: short-ids\n    uid_digits_max: 7\n    quota: 500000\n"
            "  - name: canary\n    uids: [1001, 1002, 1003]\n    uids_file: uids.txt\n"
            "  - name: one-percent\n    percent: 1.5\n    salt: one-percent\n    rate: 100\n    plat: [windows-x86_64]\n"
            "    chan: [stable]\n    start: 2026-12-01T00:00:00Z\n    end: 2026-12-31T00:00:00Z\n",
    "embodiment-1": HEAD + 'targets: ["1.4"]\nstages:\n  - {name: bj-third, networks: [1.2.0.0/16, 10.0.0.0/8], uid_mod: {div: 3, rem: 1}, quota: 1000000}\n',
    "embodiment-2": HEAD + 'targets: ["1.4"]\nstages:\n  - {name: short-ids, uid_digits_max: 7, quota: 500000}\n',
    "embodiment-3": HEAD + 'targets: ["1.4"]\nstages:\n  - {name: third-bj, uid_mod: {div: 3, rem: 1}, networks: [1.2.0.0/16], quota: 1000000}\n',
    "flow": '{keys: {hint: hint.key, issuers: [issuer.pub, stranger.pub]}, release: release.manifest, state: state, '
            'targets: ["<2"], cookie: never, retry: 0, shard: {index: 2, count: 3}, stages: []}\n',
    "paused-quoted": HEAD + 'targets: ["1.4.2"]\npaused: true\ncookie: "always"\nstages:\n  - name: "all"\n    quota: 0\n',
    "stale-manifest": HEAD.replace("release.manifest", "stale.manifest") + 'targets: ["1"]\nstages: []\n',
    "v6-and-mapped": HEAD + 'targets: ["1"]\nstages:\n  - {name: v6, networks: ["::/0", "::ffff:1.2.3.0/120", "fe80::1"]}\n'
                     '  - {name: pct100, percent: 100}\n  - {name: pct0, percent: 0, salt: ""}\n',
    "times": HEAD + 'targets: ["1"]\nstages:\n  - {name: t, start: 2026-01-01T00:00:00.5+08:00, end: 2027-01-01T00:00:00-23:59}\n',
}
hostile_pol = {
    "huge-manifest": HEAD.replace("release.manifest", "huge.manifest") + 'targets: ["1"]\nstages: []\n',
    "garbage-manifest": HEAD.replace("release.manifest", "garbage.manifest") + 'targets: ["1"]\nstages: []\n',
    "key-as-manifest": HEAD.replace("release.manifest", "issuer.pub") + 'targets: ["1"]\nstages: []\n',
    "manifest-as-key": HEAD.replace("hint: hint.key", "hint: release.manifest") + 'targets: ["1"]\nstages: []\n',
    "dir-as-file": HEAD.replace("hint: hint.key", "hint: state") + 'targets: ["1"]\nstages: []\n',
    "missing-file": HEAD.replace("issuer.pub", "nope.pub") + 'targets: ["1"]\nstages: []\n',
    "escape-dir": HEAD.replace("issuer.pub", "../../../../etc/passwd") + 'targets: ["1"]\nstages: []\n',
    "bad-uids-file": HEAD + 'targets: ["1"]\nstages:\n  - {name: c, uids_file: bad-uids.txt}\n',
    "alias-self": HEAD + 'targets: &a [*a]\nstages: []\n',
    "alias-stage": HEAD + 'targets: ["1"]\nstages:\n  - &s {name: a}\n  - *s\n',
    "merge-key": HEAD + 'targets: ["1"]\nstages:\n  - &s {name: a, quota: 5}\n  - {<<: *s, name: b}\n',
    "laughs": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
              "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n" + HEAD + 'targets: *d\nstages: [*d]\n',
    "deep": HEAD + "targets: " + "[" * 1000 + "]" * 1000 + "\nstages: []\n",
    "dup-key": HEAD + 'targets: ["1"]\ntargets: ["2"]\nstages: []\n',
    "dup-stage": HEAD + 'targets: ["1"]\nstages:\n  - {name: a}\n  - {name: a}\n',
    "unknown-key": HEAD + 'targets: ["1"]\nstages: []\nfoo: 1\n',
    "ints": HEAD + 'targets: ["1"]\nclock_window: 01\nretry: -1\nhint_ttl: 0\nstages: []\n',
    "int-overflow": HEAD + 'targets: ["1"]\nstages:\n  - {name: a, quota: 18446744073709551616}\n',
    "float-forms": HEAD + 'targets: ["1"]\nstages:\n  - {name: a, percent: 1e1, rate: .nan}\n  - {name: b, percent: 100.001, rate: .inf}\n',
    "bad-cidr": HEAD + 'targets: ["1"]\nstages:\n  - {name: a, networks: [1.2.3.4/33, "::1/129", 1.2.3.4/24]}\n',
    "bad-mod": HEAD + 'targets: ["1"]\nstages:\n  - {name: a, uid_mod: {div: 0, rem: 0}}\n',
    "bad-times": HEAD + 'targets: ["1"]\nstages:\n  - {name: a, start: 2027-01-01T00:00:00Z, end: 2026-01-01T00:00:00Z}\n',
    "bad-shard": HEAD + 'targets: ["1"]\nshard: {index: 3, count: 3}\nstages: []\n',
    "bad-target": HEAD + 'targets: ["01.4", ">1", "<", "1.2.3.4.5"]\nstages: []\n',
    "bad-name": HEAD + 'targets: ["1"]\nstages:\n  - {name: "Upper Case"}\n',
    "two-docs": HEAD + 'targets: ["1"]\nstages: []\n---\nx: 1\n',
    "empty": "",
    "scalar": "hello\n",
    "tabs": HEAD + 'targets:\t["1"]\nstages: []\n',
    "nul-byte": HEAD + 'targets: ["1\0"]\nstages: []\n',
    "bom": "\ufeff" + HEAD + 'targets: ["1"]\nstages: []\n',
    "tags": HEAD + 'targets: !!str ["1"]\nstages: !!map {}\n',
}
# version 2: rollouts, and what version 1 files may use of it
HEAD2 = "keys: {hint: hint.key, issuers: [issuer.pub]}\nstate: state\n"
R = "release: release.manifest"
policies.update({
    "v2-full": HEAD2 + "geoip: geo.mmdb\nverify: always\n"
               "fleet: {redis: \"sentinel://10.0.0.1:26379,[::1]:26379/m/1\", tracker: eu-1, password_file: pw.txt, lease: 64, lease_timeout: 10}\n"
               "rollouts:\n"
               "  - name: desktop\n    " + R + "\n    targets: [\"1.4.0\", \"<1.3\"]\n    plat: [windows-x86_64, linux-x86_64]\n"
               "    chan: [stable]\n    salt: desk\n    paused: false\n    halt_when: {failed: 0.05, rolled_back: 0.01, min_outcomes: 200}\n"
               "    outcome_window: 3600\n    hold_when_unhealthy: true\n    stages:\n"
               "      - {name: bj, regions: [CN-BJ, de, US-CA], uid_mod: {div: 3, rem: 1}, quota: 1000}\n"
               "      - name: ramp\n        percent:\n          - {at: 2026-12-01T00:00:00Z, percent: 1}\n"
               "          - {at: 2026-12-02T00:00:00Z, percent: 5}\n        rate: 20\n        fleet_rate: 100\n"
               "  - name: rest\n    release: stale.manifest\n    targets: [\"<2\"]\n    stages:\n"
               "      - {name: linear, percent: {from: 1, to: 100, start: 2026-12-01T00:00:00Z, end: 2026-12-08T00:00:00Z}}\n",
    "v2-min": HEAD2 + "rollouts: [{name: a, " + R + ", targets: [\"1\"], stages: []}]\n",
    "v1-v2-keys": HEAD + 'targets: ["1"]\ngeoip: geo.mmdb\nverify: always\nfleet: {redis: "redis://h", tracker: t}\nstages:\n'
                  '  - {name: r, regions: [DE, GB-LND], fleet_rate: 1.5}\n  - {name: s, percent: [{at: 2026-01-01T00:00:00Z, percent: 50}]}\n',
    "v2-shared": HEAD2 + "rollouts:\n  - name: a\n    " + R + "\n    targets: &t [\"1\", \"<0.9\"]\n    stages: &s\n"
                 "      - {name: x, uids: &u [1, 2, 3, 4242], networks: &n [10.0.0.0/8]}\n      - {name: y, uids: *u, networks: *n, chan: [beta]}\n"
                 "  - {name: b, " + R + ", targets: *t, plat: [x], stages: *s}\n",
    "v2-overlap": HEAD2 + "rollouts:\n  - {name: a, " + R + ", targets: [\"<3\"], stages: [{name: all}, {name: never}]}\n"
                  "  - {name: b, " + R + ", targets: [\"1.0\", \"<=2\"], chan: [x], stages: []}\n",
})
hostile_pol.update({
    "v1-and-v2": HEAD + 'targets: ["1"]\nstages: []\nrollouts: [{name: a, ' + R + ', targets: ["1"], stages: []}]\n',
    "fleet-password": HEAD + 'targets: ["1"]\nfleet: {redis: "redis://h", tracker: t, password: hunter2}\nstages: []\n',
    "fleet-cred-url": HEAD + 'targets: ["1"]\nfleet: {redis: "redis://u:hunter2@h:1/0", tracker: t}\nstages: []\n',
    "fleet-fifo": HEAD + 'targets: ["1"]\nfleet: {redis: "redis://h", tracker: t, password_file: fifo}\nstages: []\n',
    "geoip-fifo": HEAD + 'targets: ["1"]\ngeoip: fifo\nstages: []\n',
    "geoip-not-a-db": HEAD + 'targets: ["1"]\ngeoip: uids.txt\nstages: []\n',
    "regions-no-geoip": HEAD + 'targets: ["1"]\nstages: [{name: a, regions: [DE]}]\n',
    "uids-fifo": HEAD + 'targets: ["1"]\nstages: [{name: a, uids_file: fifo}]\n',
    "manifest-fifo": HEAD.replace("release.manifest", "fifo") + 'targets: ["1"]\nstages: []\n',
    "key-dev-zero": HEAD.replace("hint: hint.key", "hint: /dev/zero") + 'targets: ["1"]\nstages: []\n',
    "steps-down": HEAD + 'targets: ["1"]\nstages: [{name: a, percent: [{at: 2026-01-01T00:00:00Z, percent: 5}, {at: 2026-01-02T00:00:00Z, percent: 4}]}]\n',
    "steps-back": HEAD + 'targets: ["1"]\nstages: [{name: a, percent: [{at: 2026-01-02T00:00:00Z, percent: 1}, {at: 2026-01-01T00:00:00Z, percent: 4}]}]\n',
    "linear-back": HEAD + 'targets: ["1"]\nstages: [{name: a, percent: {from: 9, to: 1, start: 2026-01-01T00:00:00Z, end: 2025-01-01T00:00:00Z}}]\n',
    "halt-fractions": HEAD2 + "rollouts: [{name: a, " + R + ", targets: [\"1\"], stages: [], halt_when: {failed: 1.0000001, rolled_back: 0, min_outcomes: 0}}]\n",
    "dup-rollout": HEAD2 + "rollouts: [{name: a, " + R + ", targets: [\"1\"], stages: []}, {name: a, " + R + ", targets: [\"1\"], stages: []}]\n",
    "deep-40": HEAD + "targets: " + "[" * 40 + "]" * 40 + "\nstages: []\n",
    "aliases-1001": HEAD + 'targets: ["1"]\nstages: [{name: a, uids: [&a 1,' + "*a," * 1001 + '2]}]\n',
    "alias-loop": HEAD + 'targets: ["1"]\nstages: &s [{name: a, x: *s}]\n',
    "alias-unknown": HEAD + 'targets: *nope\nstages: []\n',
})
for name, text in policies.items():
    put("policy", "seed-" + name + ".yaml", text.encode())
for name, text in hostile_pol.items():
    put("policy", "hostile-" + name + ".yaml", text.encode("utf-8", "surrogatepass"))
put("policy", "hostile-invalid-utf8.yaml", HEAD.encode() + b'targets: ["\xc3\x28"]\nstages: []\n')

# ---- client (fuzz_client): the replies a peer reads, and state-file lines ---
for i, v in enumerate(peer["vectors"]):
    put("client", "vec-peer-%02d" % i, bytes.fromhex(v["hex"]))
for v in peer["unsigned_replies"]:
    put("client", "vec-reply-" + v["name"], bytes.fromhex(v["hex"]))
for name, text in (("ok", b"version=2.0.0\n"), ("4parts", b"version=1.2.3.4\n"), ("no-newline", b"version=2.0.0"),
                   ("leading-zero", b"version=02.0\n"), ("crlf", b"version=1\r\n"), ("two-lines", b"version=1\nversion=2\n")):
    put("client", "seed-state-" + name, text)
for name, text in (("whole", b"bytes 0-9/10"), ("star", b" bytes 2500-4999/*"), ("zeros", b"bytes 007-9/10")):
    put("client", "seed-range-" + name, text)
PY
