#!/usr/bin/env python3
# An independent reading of protocol.md, sharing no code with proto/: checks
# what upgate-keys and the encoders write, and judges the spec's vectors.
# Ed25519 after RFC 8032's reference code with libsodium's extra refusals
# (protocol.md section 1), msgpack by hand, BLAKE2b from hashlib. Exit 0 if
# every check holds, 1 with a reason.
#
#   verify.py cred FILE.cred ISSUER.pub CLIENT.pub UID
#   verify.py release FILE.manifest RELEASE.pub PACKAGE VERSION URL...
#   verify.py hello HEX ISSUER_PK_HEX [NOW]   (a whole HELLO datagram)
#   verify.py report HEX ISSUER_PK_HEX [NOW]  (a whole REPORT datagram)
#   verify.py batch    (one of the above per stdin line, a verdict per line)
# With NOW (Unix seconds) the credential must be unexpired and `ts` within
# 300 s of NOW, as a tracker at that clock decides (tracker rules 4, 5, 11).
import base64
import hashlib
import re
import sys

P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493  # the group order L
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
WINDOW = 300


def _add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    A, B = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    C, Dd = t1 * 2 * D * t2 % P, z1 * 2 * z2 % P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F % P, G * H % P, F * G % P, E * H % P)


def _mul(s, pt):
    acc = (0, 1, 1, 0)
    while s:
        if s & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        s >>= 1
    return acc


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


IDENTITY = (0, 1, 1, 0)


def _decompress(s):
    """The point s encodes, or None when s is not the canonical encoding of
    a curve point (y >= p, or x = 0 with the sign bit set)."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        if sign:
            return None
        x = 0
    else:
        x = pow(x2, (P + 3) // 8, P)
        if (x * x - x2) % P:
            x = x * SQRT_M1 % P
        if (x * x - x2) % P:
            return None
        if x & 1 != sign:
            x = P - x
    return (x, y, 1, x * y % P)


def _small_order(pt):
    """One of the 8 points of order dividing 8: [8]P is the identity."""
    return _equal(_mul(8, pt), IDENTITY)


G = _decompress((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))


def ed25519_verify(pk, msg, sig):
    """RFC 8032 verification, refusing what libsodium's
    crypto_sign_verify_detached refuses: S >= L, and R or A non-canonically
    encoded or of small order."""
    if len(sig) != 64 or len(pk) != 32:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= Q:
        return False
    A, R = _decompress(pk), _decompress(sig[:32])
    if A is None or R is None or _small_order(A) or _small_order(R):
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + pk + msg).digest(), "little") % Q
    return _equal(_mul(s, G), _add(R, _mul(h, A)))


def kid(pk):
    return hashlib.blake2b(pk, digest_size=32).digest()[:8]


class Neg(int):
    """A negative msgpack int: never a valid upgate value, kept so the
    schema, not the reader, says why."""


class Reader:
    """msgpack as upgate uses it: maps (str keys, no duplicates), arrays, str
    (UTF-8), bin, ints, nil, bools, floats; ext and 0xc1 are refused."""

    def __init__(self, data):
        self.b, self.i = data, 0

    def take(self, n):
        if self.i + n > len(self.b):
            raise ValueError("truncated")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def num(self, n):
        return int.from_bytes(self.take(n), "big")

    def obj(self, depth=0):
        if depth > 8:
            raise ValueError("nested too deep")
        t = self.num(1)
        if t <= 0x7f:
            return t
        if t >= 0xe0:
            return Neg(t - 0x100)
        if 0x80 <= t <= 0x8f:
            return self.map(t & 0x0f, depth)
        if 0x90 <= t <= 0x9f:
            return [self.obj(depth + 1) for _ in range(t & 0x0f)]
        if 0xa0 <= t <= 0xbf:
            return self.text(t & 0x1f)
        if t == 0xc0:
            return None
        if t in (0xc2, 0xc3):
            return t == 0xc3
        if t in (0xc4, 0xc5, 0xc6):
            return bytes(self.take(self.num({0xc4: 1, 0xc5: 2, 0xc6: 4}[t])))
        if t in (0xca, 0xcb):
            self.take(4 if t == 0xca else 8)
            return float("nan")
        if t in (0xcc, 0xcd, 0xce, 0xcf):
            return self.num({0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t])
        if t in (0xd0, 0xd1, 0xd2, 0xd3):
            n = {0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[t]
            v = int.from_bytes(self.take(n), "big", signed=True)
            return Neg(v) if v < 0 else v
        if t in (0xd9, 0xda, 0xdb):
            return self.text(self.num({0xd9: 1, 0xda: 2, 0xdb: 4}[t]))
        if t in (0xdc, 0xdd):
            return [self.obj(depth + 1) for _ in range(self.num(2 if t == 0xdc else 4))]
        if t in (0xde, 0xdf):
            return self.map(self.num(2 if t == 0xde else 4), depth)
        raise ValueError("type byte %02x not used by upgate" % t)

    def text(self, n):
        s = self.take(n).decode("utf-8")  # strict: no overlongs, no surrogates
        if "\0" in s:
            raise ValueError("NUL in a str")
        return s

    def map(self, n, depth):
        out = {}
        for _ in range(n):
            k = self.obj(depth + 1)
            if not isinstance(k, str) or k in out:
                raise ValueError("bad or duplicate key %r" % (k,))
            out[k] = self.obj(depth + 1)
        return out


def whole(data):
    r = Reader(data)
    o = r.obj()
    if r.i != len(data):
        raise ValueError("trailing bytes")
    return o


def check(cond, what):
    if not cond:
        raise ValueError(what)


# ---- the schema of protocol.md section 4 ---------------------------------
def is_uint(v):
    return type(v) is int and v >= 0  # bool and Neg are other types


def uint(v):
    return is_uint(v)


def uid(v):
    return is_uint(v) and 1 <= v <= 2**63 - 1


def binn(lo, hi=None):
    hi = lo if hi is None else hi
    return lambda v: type(v) is bytes and lo <= len(v) <= hi


def strn(lo, hi):
    return lambda v: type(v) is str and lo <= len(v.encode()) <= hi


VERSION = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*)){0,3}", re.ASCII)


def version(v):
    return (type(v) is str and len(v.encode()) <= 32 and VERSION.fullmatch(v) is not None and
            all(int(p) <= 0xffffffff for p in v.split(".")))


def signed_obj(v):
    return type(v) is list and len(v) == 2 and type(v[0]) is bytes and type(v[1]) is bytes and len(v[1]) == 64


def res(v):
    return is_uint(v) and v <= 5


def body(raw, schema, what):
    """Decodes a body and holds it to its table: every key listed once, every
    required key present, every value of its type and length."""
    m = whole(raw)
    check(type(m) is dict, "%s body is not a map" % what)
    for k, v in m.items():
        check(k in schema, "%s: unknown key %r" % (what, k))
        check(schema[k][0](v), "%s: bad value for %r" % (what, k))
    for k, (_, required) in schema.items():
        check(not required or k in m, "%s: missing key %r" % (what, k))
    return m


CRED = {"uid": (uint, True), "pk": (binn(32), True), "exp": (uint, True), "kid": (binn(8), True)}
HELLO = {"uid": (uid, True), "ver": (version, True), "ts": (uint, True), "nonce": (binn(16), True),
         "pk": (binn(32), True), "cred": (signed_obj, True), "plat": (strn(1, 32), False),
         "chan": (strn(1, 16), False), "cookie": (binn(16), False), "pad": (binn(0, 1232), False)}
REPORT = {"uid": (uid, True), "ver": (version, True), "to": (version, True), "res": (res, True),
          "ts": (uint, True), "nonce": (binn(16), True), "pk": (binn(32), True), "cred": (signed_obj, True),
          "pad": (binn(0, 1232), False)}
MANIFEST_KEYS = {"to", "urls", "size", "hash", "exp", "kid"}


def signed(obj, ctx, pk):
    check(signed_obj(obj), "not a signed object")
    raw, sig = obj
    if not ed25519_verify(pk, ctx + b"\x00" + raw, sig):
        raise ValueError("%s signature does not verify" % ctx.decode())
    return raw


def pubfile(path):
    lines = open(path, "rb").read().split(b"\n")
    if lines and lines[0].startswith(b"#"):
        lines = lines[1:]  # the kind comment; upgate's own readers judge it
    data = base64.b64decode(b"\n".join(lines).strip(), validate=True)
    if len(data) != 32:
        raise ValueError("%s: not 32 bytes" % path)
    return data


def cmd_cred(path, issuer_pub, client_pub, uid_):
    ipk, cpk = pubfile(issuer_pub), pubfile(client_pub)
    obj = whole(base64.b64decode(open(path, "rb").read().strip(), validate=True))
    cred = body(signed(obj, b"UG1-CRED", ipk), CRED, "credential")
    check(cred["uid"] == int(uid_), "uid")
    check(cred["pk"] == cpk, "pk")
    check(cred["kid"] == kid(ipk), "kid")
    check(cred["exp"] > 1700000000, "exp")


def cmd_release(path, release_pub, package, version_, *urls):
    rpk = pubfile(release_pub)
    m = whole(signed(whole(open(path, "rb").read()), b"UG1-RELEASE", rpk))
    check(type(m) is dict and set(m) == MANIFEST_KEYS, "manifest keys %s" % sorted(m))
    data = open(package, "rb").read()
    check(m["to"] == version_ and version(m["to"]), "to")
    check(m["urls"] == list(urls) and 1 <= len(urls) <= 8, "urls")
    for u in m["urls"]:
        check(re.fullmatch(r"https?://[\x21-\x7e]+", u, re.ASCII | re.IGNORECASE) and len(u) <= 200, "url %r" % u)
    check(m["size"] == len(data), "size")
    check(m["hash"] == hashlib.blake2b(data, digest_size=32).digest(), "hash")
    check(m["kid"] == kid(rpk), "kid")


def datagram(data, want_type, min_len):
    """The outer array of section 3 for a signed type: (body bytes, sig)."""
    check(min_len <= len(data) <= 1232, "datagram of %d bytes" % len(data))
    check(data[:5] == b"\x95\xa2UG\x01", "prefix")
    dg = whole(data)
    check(type(dg) is list and len(dg) == 5 and dg[0] == "UG" and dg[1] == 1 and type(dg[1]) is int, "header")
    check(type(dg[2]) is int and dg[2] == want_type, "type")
    check(type(dg[3]) is bytes, "body is not bin")
    check(type(dg[4]) is bytes and len(dg[4]) == 64, "sig is not bin(64)")
    return dg[3], dg[4]


def signed_by_client(data, want_type, min_len, schema, ctx, issuer_hex, now):
    """Tracker rule 4 (and 5 with a clock) for a HELLO or a REPORT."""
    raw, sig = datagram(data, want_type, min_len)
    ipk = bytes.fromhex(issuer_hex)
    b = body(raw, schema, ctx.decode())
    cred = body(b["cred"][0], CRED, "credential")
    check(cred["kid"] == kid(ipk), "credential from an untrusted issuer")
    if now is not None:
        check(cred["exp"] > int(now), "credential expired")
    check(cred["uid"] == b["uid"] and cred["pk"] == b["pk"], "binding")
    signed(b["cred"], b"UG1-CRED", ipk)
    check(ed25519_verify(b["pk"], ctx + b"\x00" + raw, sig), "%s signature" % ctx.decode())
    if now is not None:
        check(abs(b["ts"] - int(now)) <= WINDOW, "clock skew")


def cmd_hello(hexdata, issuer_hex, now=None):
    signed_by_client(bytes.fromhex(hexdata), 1, 512, HELLO, b"UG1-HELLO", issuer_hex, now)


def cmd_report(hexdata, issuer_hex, now=None):
    signed_by_client(bytes.fromhex(hexdata), 5, 0, REPORT, b"UG1-REPORT", issuer_hex, now)


CMDS = {"cred": cmd_cred, "release": cmd_release, "hello": cmd_hello, "report": cmd_report}


def run(args):
    """None if the command's checks hold, else the reason."""
    try:
        CMDS[args[0]](*args[1:])
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError, OSError) as e:
        return "%s: %s" % (args[0], e)
    return None


def batch():
    """One command per stdin line, one verdict per stdout line ("ok" or
    "refused: why"): a vector file costs one interpreter, not one each."""
    for line in sys.stdin:
        args = line.split()
        if not args or args[0] not in CMDS:
            print("refused: unknown command")
            continue
        why = run(args)
        print("ok" if why is None else "refused: " + why)
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == "batch":
        return batch()
    if len(argv) < 2 or argv[1] not in CMDS:
        print("usage: see the comment atop verify.py", file=sys.stderr)
        return 2
    why = run(argv[1:])
    if why is not None:
        print("verify.py: " + why, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
