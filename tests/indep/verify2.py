#!/usr/bin/env python3
# A second implementation of docs/protocol-v2.md, written from the document and
# sharing no code with proto/: its own canonical msgpack reader, tables and
# rules; Ed25519 and the key id come from verify.py (RFC 8032 with libsodium's
# refusals). Judges every vector of tests/vectors-v2:
#
#   verify2.py vectors DIR
#
# prints one line per vector: FILE <tab> NAME <tab> accept|refuse <tab> REASON|-
# <tab> NEEDED-KEYRING|0, and exits 0 (the caller compares the verdicts).
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify import ed25519_verify, kid  # noqa: E402


class Refuse(Exception):
    def __init__(self, reason, need=0):
        super().__init__(reason)
        self.reason, self.need = reason, need


# ---- 2.1 canonical msgpack -------------------------------------------------
class Str(bytes):
    """A msgpack str, kept as its bytes (UTF-8 is judged by the type rules)."""


class Bin(bytes):
    pass


class Neg(int):
    pass


class Float:
    pass


class Map(list):
    """A msgpack map as its (key, value) pairs, in order, duplicates kept."""


class Reader:
    def __init__(self, data):
        self.b, self.i = data, 0

    def take(self, n):
        if n > len(self.b) - self.i:
            raise Refuse("msgpack")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def num(self, n):
        return int.from_bytes(self.take(n), "big")

    def obj(self, depth):
        t = self.num(1)
        if t <= 0x7f:
            return t
        if t >= 0xe0:
            return Neg(t - 0x100)
        if t <= 0x8f:
            return self.container(True, t & 0x0f, depth)
        if t <= 0x9f:
            return self.container(False, t & 0x0f, depth)
        if t <= 0xbf:
            return Str(self.take(t & 0x1f))
        if t == 0xc0:
            return None
        if t in (0xc2, 0xc3):
            return t == 0xc3
        if t in (0xc4, 0xc5, 0xc6):
            n = self.num({0xc4: 1, 0xc5: 2, 0xc6: 4}[t])
            self.least(n, {0xc4: 0, 0xc5: 256, 0xc6: 65536}[t])
            return Bin(self.take(n))
        if t in (0xca, 0xcb):
            self.take(4 if t == 0xca else 8)
            return Float()
        if t in (0xcc, 0xcd, 0xce, 0xcf):
            v = self.num({0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t])
            self.least(v, {0xcc: 128, 0xcd: 256, 0xce: 65536, 0xcf: 2**32}[t])
            return v
        if t in (0xd0, 0xd1, 0xd2, 0xd3):
            v = int.from_bytes(self.take({0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[t]), "big", signed=True)
            if v > {0xd0: -33, 0xd1: -129, 0xd2: -32769, 0xd3: -2**31 - 1}[t]:
                raise Refuse("msgpack")
            return Neg(v)
        if t in (0xd9, 0xda, 0xdb):
            n = self.num({0xd9: 1, 0xda: 2, 0xdb: 4}[t])
            self.least(n, {0xd9: 32, 0xda: 256, 0xdb: 65536}[t])
            return Str(self.take(n))
        if t in (0xdc, 0xdd):
            n = self.num(2 if t == 0xdc else 4)
            self.least(n, 16 if t == 0xdc else 65536)
            return self.container(False, n, depth)
        if t in (0xde, 0xdf):
            n = self.num(2 if t == 0xde else 4)
            self.least(n, 16 if t == 0xde else 65536)
            return self.container(True, n, depth)
        raise Refuse("msgpack")  # c1 and every ext format

    @staticmethod
    def least(v, floor):
        if v < floor:
            raise Refuse("msgpack")

    def container(self, is_map, n, depth):
        if depth < 1:
            raise Refuse("msgpack")
        if is_map:
            return Map((self.obj(depth - 1), self.obj(depth - 1)) for _ in range(n))
        return [self.obj(depth - 1) for _ in range(n)]


def whole(data, depth):
    r = Reader(data)
    o = r.obj(depth)
    if r.i != len(data):
        raise Refuse("msgpack")
    return o


# ---- 2.2 types ----------------------------------------------------------------
def is_uint(v):
    return type(v) is int


def utf8(v):
    if "\0".encode() in v:
        return False
    try:
        v.decode("utf-8")  # strict: overlongs, surrogates, > U+10FFFF refused
    except UnicodeDecodeError:
        return False
    return True


def T_uint(v):
    return is_uint(v)


def T_bin(lo, hi=None):
    hi = lo if hi is None else hi
    return lambda v: type(v) is Bin and lo <= len(v) <= hi


def T_str(lo, hi):
    return lambda v: type(v) is Str and lo <= len(v) <= hi and utf8(v)


def T_true(v):
    return v is True


def T_strarray(lo, hi):
    return lambda v: type(v) is list and lo <= len(v) <= hi and all(T_str(1, 200)(x) for x in v)


def T_array(lo, hi):
    return lambda v: type(v) is list and lo <= len(v) <= hi


def T_signed(v):
    return type(v) is list and len(v) == 2 and type(v[0]) is Bin and type(v[1]) is Bin and len(v[1]) == 64


def body(raw, table, depth=4):
    """2.2 steps 1 to 3: the value of each key present."""
    if len(raw) == 0 or len(raw) > 2048:
        raise Refuse("size")
    m = whole(raw, depth)
    if type(m) is not Map:
        raise Refuse("schema")
    out = {}
    for k, v in m:
        if type(k) is not Str or k.decode("latin-1") not in table or k.decode("latin-1") in out:
            raise Refuse("schema")
        name = k.decode("latin-1")
        if not table[name][0](v):
            raise Refuse("schema")
        out[name] = v
    for name, (_, required) in table.items():
        if required and name not in out:
            raise Refuse("schema")
    return out


# ---- 2.4 names ------------------------------------------------------------------
VERSION = re.compile(rb"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*)){0,3}")
LABEL = re.compile(rb"[A-Za-z0-9._+-]+")


def version(v):
    if len(v) > 32 or not VERSION.fullmatch(v) or any(int(p) > 0xffffffff for p in v.split(b".")):
        raise Refuse("version")
    parts = [int(p) for p in v.split(b".")]
    return tuple(parts + [0] * (4 - len(parts)))


def label(v, n):
    if not (1 <= len(v) <= n and LABEL.fullmatch(v)):
        raise Refuse("string")
    return bytes(v)


def url_ok(u):
    if not (1 <= len(u) <= 200) or any(c < 0x21 or c > 0x7e for c in u):
        return False
    low = u.lower()
    if low.startswith(b"http://") and len(u) > 7:
        start = 7
    elif low.startswith(b"https://") and len(u) > 8:
        start = 8
    else:
        return False
    end = start
    while end < len(u) and u[end:end + 1] not in (b"/", b"?", b"#"):
        end += 1
    auth = u[start:end]
    host = auth[auth.rfind(b"@") + 1:]
    if host.startswith(b"["):
        close = host.find(b"]")
        return close >= 2
    return len(host) > 0 and not host.startswith(b":")


def url(v):
    if not url_ok(v):
        raise Refuse("string")
    return bytes(v)


def keyring_url(v):
    if not url_ok(v) or not v.endswith(b"/"):
        raise Refuse("string")
    return bytes(v)


def schema(cond):
    if not cond:
        raise Refuse("schema")


# ---- 2.3 multi-signed objects ----------------------------------------------------
def ms_shape(v):
    ok = (type(v) is list and len(v) == 2 and type(v[0]) is Bin and type(v[1]) is list and 1 <= len(v[1]) <= 16 and
          all(type(e) is list and len(e) == 2 and type(e[0]) is Bin and len(e[0]) == 8 and type(e[1]) is Bin and
              len(e[1]) == 64 for e in v[1]))
    schema(ok)
    return bytes(v[0]), [(bytes(e[0]), bytes(e[1])) for e in v[1]]


def ms_decode(raw, cap):
    if len(raw) == 0 or len(raw) > cap:
        raise Refuse("size")
    return ms_shape(whole(raw, 3))


def signed_by(ms, ctx, keys, t):
    """The threshold rule: keys is a list of public keys."""
    raw, entries = ms
    by_kid = {kid(k): k for k in keys}
    seen, count = set(), 0
    for k, sig in entries:
        if k in seen:
            continue
        seen.add(k)
        if k in by_kid and ed25519_verify(by_kid[k], ctx + b"\0" + raw, sig):
            count += 1
    if t < 1 or count < t:
        raise Refuse("threshold")


# ---- 4. the signed objects ------------------------------------------------------------
def key_list(v):
    schema(all(type(x) is Bin and len(x) == 32 for x in v))
    schema(len({kid(bytes(x)) for x in v}) == len(v))
    return [bytes(x) for x in v]


KEYRING = {"kv": (T_uint, True), "exp": (T_uint, True), "root": (T_array(1, 8), True), "root_t": (T_uint, True),
           "rel": (T_array(1, 8), True), "rel_t": (T_uint, True), "cert": (T_array(1, 8), True),
           "cert_t": (T_uint, True), "min_serial": (T_uint, True), "urls": (T_strarray(1, 4), False)}


def keyring_body(raw):
    b = body(raw, KEYRING)
    schema(1 <= b["kv"] <= 2**32 - 1)
    k = {"kv": b["kv"], "exp": b["exp"], "min_serial": b["min_serial"]}
    for lst in ("root", "rel", "cert"):
        k[lst] = key_list(b[lst])
        schema(1 <= b[lst + "_t"] <= len(k[lst]))
        k[lst + "_t"] = b[lst + "_t"]
    for u in b.get("urls", []):
        keyring_url(u)
    return k


def keyring_doc(raw):
    ms = ms_decode(raw, 4096)
    return keyring_body(ms[0]), ms


CERT = {"pk": (T_bin(32), True), "kid": (T_bin(8), True), "serial": (T_uint, True), "nbf": (T_uint, True),
        "exp": (T_uint, True), "kv": (T_uint, True), "trk": (T_str(1, 32), False)}


def cert_body(raw):
    b = body(raw, CERT)
    schema(b["kid"] == kid(bytes(b["pk"])))
    schema(1 <= b["kv"] <= 2**32 - 1)
    c = dict(b)
    c["pk"] = bytes(b["pk"])
    c["trk"] = label(b["trk"], 32) if "trk" in b else b""
    return c


DELTA = {"from": (T_str(1, 32), True), "size": (T_uint, True), "hash": (T_bin(32), True),
         "urls": (T_strarray(1, 8), True)}
MANIFEST = {"to": (T_str(1, 32), True), "urls": (T_strarray(1, 8), True), "size": (T_uint, True),
            "hash": (T_bin(32), True), "exp": (T_uint, True), "app": (T_str(1, 32), True),
            "plat": (T_strarray(1, 8), True), "chan": (T_str(1, 16), True), "seq": (T_uint, True),
            "urgency": (T_uint, True), "downgrade": (T_true, False), "min_serial": (T_uint, False),
            "deltas": (T_array(1, 4), False), "keyring": (T_strarray(1, 4), False)}


def delta_item(v):
    """4.3.1: a map judged like a body read at depth 2 (its msgpack is already sound)."""
    schema(type(v) is Map)
    seen = {}
    for k, x in v:
        name = k.decode("latin-1") if type(k) is Str else None
        schema(name in DELTA and name not in seen and DELTA[name][0](x))
        seen[name] = x
    schema(all(n in seen for n in DELTA))
    d = {"from": version(seen["from"]), "size": seen["size"], "hash": bytes(seen["hash"])}
    d["urls"] = [url(u) for u in seen["urls"]]
    return d


def manifest_body(raw):
    b = body(raw, MANIFEST)
    m = {"to": version(b["to"])}
    m["urls"] = [url(u) for u in b["urls"]]
    m.update(size=b["size"], hash=bytes(b["hash"]), exp=b["exp"], app=label(b["app"], 32))
    m["plat"] = []
    for p in b["plat"]:
        m["plat"].append(label(p, 32))
        schema(m["plat"].count(m["plat"][-1]) == 1)
    m["chan"] = label(b["chan"], 16)
    schema(1 <= b["seq"] <= 2**63 - 1)
    schema(b["urgency"] in (0, 1))
    schema("min_serial" not in b or b["min_serial"] >= 1)
    m.update(seq=b["seq"], urgency=b["urgency"], downgrade="downgrade" in b, min_serial=b.get("min_serial", 0))
    m["deltas"] = []
    for item in b.get("deltas", []):
        d = delta_item(item)
        schema(d["from"] != m["to"] and all(d["from"] != e["from"] for e in m["deltas"]))
        m["deltas"].append(d)
    for u in b.get("keyring", []):
        keyring_url(u)
    return m


TOKEN = {"trk": (T_str(1, 32), True), "ts": (T_uint, True), "exp": (T_uint, True), "kv": (T_uint, True),
         "seqs": (T_array(0, 8), True)}


def token_body(raw):
    b = body(raw, TOKEN)
    t = {"trk": label(b["trk"], 32), "ts": b["ts"], "exp": b["exp"]}
    schema(1 <= b["kv"] <= 2**32 - 1)
    t["kv"], t["seqs"] = b["kv"], {}
    for e in b["seqs"]:
        schema(type(e) is list and len(e) == 3 and type(e[0]) is Str and type(e[1]) is Str and is_uint(e[2]))
        key = (label(e[0], 32), label(e[1], 16))
        schema(key not in t["seqs"] and 1 <= e[2] <= 2**63 - 1)
        t["seqs"][key] = e[2]
    return t


# ---- 3. datagrams --------------------------------------------------------------------
SIGNED_TYPES = {1, 2, 5}


def datagram(data):
    if len(data) == 0 or len(data) > 1232:
        raise Refuse("size")
    d = whole(data, 1)
    ok = (type(d) is list and len(d) == 5 and type(d[0]) is Str and d[0] == b"UG" and is_uint(d[1]) and d[1] == 2 and
          is_uint(d[2]) and 1 <= d[2] <= 5 and type(d[3]) is Bin)
    if not ok:
        raise Refuse("header")
    if d[2] in SIGNED_TYPES:
        ok = type(d[4]) is Bin and len(d[4]) == 64
    else:
        ok = d[4] is None
    if not ok:
        raise Refuse("header")
    if d[2] == 1 and len(data) < 512:
        raise Refuse("size")
    return d[2], bytes(d[3]), d[4]


CRED = {"uid": (T_uint, True), "pk": (T_bin(32), True), "exp": (T_uint, True), "kid": (T_bin(8), True)}
HELLO = {"uid": (T_uint, True), "ver": (T_str(1, 32), True), "ts": (T_uint, True), "nonce": (T_bin(16), True),
         "pk": (T_bin(32), True), "cred": (T_signed, True), "app": (T_str(1, 32), True),
         "plat": (T_str(1, 32), True), "chan": (T_str(1, 16), True), "kv": (T_uint, True),
         "cookie": (T_bin(16), False), "pad": (T_bin(0, 1232), False)}
REPORT = {"uid": (T_uint, True), "ver": (T_str(1, 32), True), "to": (T_str(1, 32), True), "res": (T_uint, True),
          "ts": (T_uint, True), "nonce": (T_bin(16), True), "pk": (T_bin(32), True), "cred": (T_signed, True),
          "app": (T_str(1, 32), True), "via": (T_uint, True), "pad": (T_bin(0, 1232), False)}
HINT = {"uid": (T_uint, True), "nonce": (T_bin(16), True), "ts": (T_uint, True), "exp": (T_uint, True),
        "mirror": (T_uint, True), "kv": (T_uint, True), "cert": (T_array(2, 2), True),
        "rel": (T_array(2, 2), True), "delta": (T_uint, False)}
WAIT = {"nonce": (T_bin(16), True), "ts": (T_uint, True), "retry": (T_uint, True), "why": (T_uint, True),
        "tok": (T_signed, False), "cert": (T_array(2, 2), False)}
COOKIE = {"nonce": (T_bin(16), True), "cookie": (T_bin(16), True), "ts": (T_uint, True)}


def hello_body(raw):
    b = body(raw, HELLO)
    schema(1 <= b["uid"] <= 2**63 - 1)
    version(b["ver"])
    for k, n in (("app", 32), ("plat", 32), ("chan", 16)):
        label(b[k], n)
    schema(b["kv"] <= 2**32 - 1)
    b["cred_body"] = body(bytes(b["cred"][0]), CRED, depth=1)
    return b


def report_body(raw):
    b = body(raw, REPORT)
    schema(1 <= b["uid"] <= 2**63 - 1)
    version(b["ver"])
    version(b["to"])
    schema(b["res"] <= 5)
    label(b["app"], 32)
    schema(b["via"] <= 2)
    b["cred_body"] = body(bytes(b["cred"][0]), CRED, depth=1)
    return b


def hint_body(raw):
    b = body(raw, HINT)
    schema(1 <= b["kv"] <= 2**32 - 1)
    cert_ms = ms_shape(b["cert"])
    cert = cert_body(cert_ms[0])
    rel_ms = ms_shape(b["rel"])
    return b, cert_ms, cert, rel_ms, manifest_body(rel_ms[0])


def wait_body(raw):
    b = body(raw, WAIT)
    schema(("tok" in b) == ("cert" in b))
    if "tok" not in b:
        return b, None
    tok = token_body(bytes(b["tok"][0]))
    cert_ms = ms_shape(b["cert"])
    return b, (tok, cert_ms, cert_body(cert_ms[0]))


# ---- 5. peer rules -----------------------------------------------------------------------
class Peer:
    def __init__(self, ctx, keyrings, anchor):
        kr = ctx["keyring"]
        if kr is None:
            a = anchor
            self.K = {"kv": a["kv"], "root": [bytes.fromhex(r) for r in a["root"]], "root_t": a["root_t"],
                      "min_serial": 0}
            self.has_keyring = False
        else:
            self.K, _ = keyring_doc(bytes.fromhex(keyrings[kr]))
            self.has_keyring = True
        self.app, self.plat, self.chan = (ctx[k].encode() for k in ("app", "plat", "chan"))
        self.tracker = ctx["tracker"].encode()
        self.V = version(ctx["current"].encode())
        self.seq_hi, self.Ms, self.F, self.now = ctx["seq_hi"], ctx["min_serial"], ctx["floor"], ctx["now"]
        self.uid, self.nonce = ctx["uid"], bytes.fromhex(ctx["nonce"])

    @property
    def N(self):
        return max(self.now, self.F)

    @property
    def M(self):
        return max(self.K["min_serial"], self.Ms)

    def next_kv(self):
        if not self.has_keyring:
            return self.K["kv"] or 1
        return self.K["kv"] + 1

    def ready(self, w):
        """5.3."""
        if not self.has_keyring or w > self.K["kv"]:
            raise Refuse("keyring", max(w, self.next_kv()))
        if self.K["exp"] <= self.N:
            raise Refuse("keyring", self.K["kv"] + 1)

    def cert_check(self, c, ms, ts):
        """5.2."""
        K = self.K
        if c["kv"] > K["kv"]:
            raise Refuse("keyring", c["kv"])
        signed_by(ms, b"UG2-CERT", K["cert"], K["cert_t"])
        if c["exp"] <= c["nbf"] or c["exp"] - c["nbf"] > 7776000:
            raise Refuse("lifetime")
        if c["serial"] < self.M:
            raise Refuse("revoked")
        if ts < c["nbf"]:
            raise Refuse("not yet valid")
        if c["exp"] <= max(self.N, ts):
            raise Refuse("expired")
        if c["trk"] and self.tracker and c["trk"] != self.tracker:
            raise Refuse("tracker")


def chain_step(held, is_anchor, raw):
    """5.1."""
    D, ms = keyring_doc(raw)
    h = held["kv"]
    same_roots = {kid(r) for r in D["root"]} == {kid(r) for r in held["root"]} and D["root_t"] == held["root_t"]
    rotation = D["kv"] == h + 1
    if not rotation and not (is_anchor and D["kv"] == h and same_roots):
        raise Refuse("chain")
    signed_by(ms, b"UG2-KEYRING", held["root"], held["root_t"])
    if rotation:
        signed_by(ms, b"UG2-KEYRING", D["root"], D["root_t"])


def hint_check(p, data):
    """5.4."""
    typ, raw, sig = datagram(data)
    if typ != 2:
        raise Refuse("header")
    b, cert_ms, cert, rel_ms, m = hint_body(raw)
    p.ready(max(b["kv"], cert["kv"]))
    p.cert_check(cert, cert_ms, b["ts"])
    if not ed25519_verify(cert["pk"], b"UG2-HINT\0" + raw, bytes(sig)):
        raise Refuse("signature")
    if b["uid"] != p.uid:
        raise Refuse("uid")
    if b["nonce"] != p.nonce:
        raise Refuse("nonce")
    n2 = max(p.N, b["ts"])
    if b["exp"] <= n2:
        raise Refuse("expired")
    signed_by(rel_ms, b"UG2-RELEASE", p.K["rel"], p.K["rel_t"])
    if m["exp"] <= n2:
        raise Refuse("expired")
    if m["min_serial"] > cert["serial"]:
        raise Refuse("revoked")
    if m["app"] != p.app:
        raise Refuse("app")
    if p.plat not in m["plat"]:
        raise Refuse("platform")
    if m["chan"] != p.chan:
        raise Refuse("channel")
    if m["seq"] < p.seq_hi:
        raise Refuse("seq")
    if m["to"] == p.V or (m["to"] < p.V and not (m["downgrade"] and m["seq"] > p.seq_hi)):
        raise Refuse("rollback")
    if b["mirror"] >= len(m["urls"]):
        raise Refuse("mirror")
    if "delta" in b and (b["delta"] >= len(m["deltas"]) or m["deltas"][b["delta"]]["from"] != p.V):
        raise Refuse("delta")


def reply_check(p, data):
    """5.5."""
    typ, raw, _ = datagram(data)
    if typ == 4:
        if body(raw, COOKIE, depth=1)["nonce"] != p.nonce:
            raise Refuse("nonce")
        return
    if typ != 3:
        raise Refuse("header")
    b, tok = wait_body(raw)
    if b["nonce"] != p.nonce:
        raise Refuse("nonce")
    if tok is None:
        return
    t, cert_ms, cert = tok
    p.ready(max(t["kv"], cert["kv"]))
    p.cert_check(cert, cert_ms, t["ts"])
    if not ed25519_verify(cert["pk"], b"UG2-TOKEN\0" + bytes(b["tok"][0]), bytes(b["tok"][1])):
        raise Refuse("signature")
    if (cert["trk"] and t["trk"] != cert["trk"]) or (p.tracker and t["trk"] != p.tracker):
        raise Refuse("tracker")
    if t["exp"] <= t["ts"] or t["exp"] - t["ts"] > 86400:
        raise Refuse("lifetime")
    if t["exp"] <= max(p.N, t["ts"]):
        raise Refuse("expired")
    if t["seqs"].get((p.app, p.chan), p.seq_hi) < p.seq_hi:
        raise Refuse("seq")


# ---- 6. tracker rules --------------------------------------------------------------------
def client_check(j, data, want_type, table_fn, ctx):
    """6.2: rule 4 and the clock window, for a HELLO or a REPORT."""
    typ, raw, sig = datagram(data)
    if typ != want_type:
        raise Refuse("header")
    b = table_fn(raw)
    c = b["cred_body"]
    issuers = {kid(bytes.fromhex(k)): bytes.fromhex(k) for k in j["trusted_issuers"]}
    if c["kid"] not in issuers:
        raise Refuse("unknown key id")
    if c["exp"] <= j["now"]:
        raise Refuse("expired")
    if c["uid"] != b["uid"] or c["pk"] != b["pk"]:
        raise Refuse("credential binding")
    if not ed25519_verify(issuers[bytes(c["kid"])], b"UG1-CRED\0" + bytes(b["cred"][0]), bytes(b["cred"][1])):
        raise Refuse("signature")
    if not ed25519_verify(bytes(b["pk"]), ctx + b"\0" + raw, bytes(sig)):
        raise Refuse("signature")
    if abs(b["ts"] - j["now"]) > j["window_s"]:
        raise Refuse("clock skew")


# ---- the vector files (section 9) -----------------------------------------------------------
def peer_of(j, v):
    ctx = dict(j["peer"])
    ctx.update(v.get("peer", {}))
    return Peer(ctx, j.get("keyrings", {}), j.get("anchor"))


def judge_keyring(j, v, data):
    if "held" in v:
        held_raw = next(x for x in j["vectors"] if x["name"] == v["held"])["hex"]
        held, _ = keyring_doc(bytes.fromhex(held_raw))
        chain_step(held, False, data)
    else:
        a = dict(j["anchor"])
        a.update(v.get("anchor", {}))
        chain_step({"kv": a["kv"], "root": [bytes.fromhex(r) for r in a["root"]], "root_t": a["root_t"]}, True, data)


def judge_cert(j, v, data):
    p = peer_of(j, v)
    ms = ms_decode(data, 2048)
    p.cert_check(cert_body(ms[0]), ms, v.get("ts", p.now))


def judge_manifest(j, v, data):
    K, _ = keyring_doc(bytes.fromhex(j["keyrings"][j["keyring"]]))
    ms = ms_decode(data, 2048)
    m = manifest_body(ms[0])
    signed_by(ms, b"UG2-RELEASE", K["rel"], K["rel_t"])
    if m["exp"] <= j["now"]:
        raise Refuse("expired")
    if m["min_serial"] > j["cert_serial"]:
        raise Refuse("revoked")


JUDGES = {
    "keyring.json": judge_keyring,
    "cert.json": judge_cert,
    "manifest.json": judge_manifest,
    "peer.json": lambda j, v, d: hint_check(peer_of(j, v), d),
    "wait.json": lambda j, v, d: reply_check(peer_of(j, v), d),
    "tracker.json": lambda j, v, d: client_check(j, d, 1, hello_body, b"UG2-HELLO"),
    "report.json": lambda j, v, d: client_check(j, d, 5, report_body, b"UG2-REPORT"),
}


def cmd_vectors(folder):
    for name in sorted(JUDGES):
        j = json.load(open(os.path.join(folder, name)))
        for v in j["vectors"]:
            try:
                JUDGES[name](j, v, bytes.fromhex(v["hex"]))
                out = ("accept", "-", 0)
            except Refuse as r:
                out = ("refuse", r.reason, r.need if r.reason == "keyring" else 0)
            print("%s\t%s\t%s\t%s\t%d" % (name, v["name"], *out))
    return 0


def main(argv):
    if len(argv) != 3 or argv[1] != "vectors":
        print("usage: verify2.py vectors DIR", file=sys.stderr)
        return 2
    return cmd_vectors(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
