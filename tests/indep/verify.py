#!/usr/bin/env python3
# An independent reading of protocol.md, sharing no code with proto/: checks
# what upgate-keys writes. Ed25519 after RFC 8032's reference code, msgpack by
# hand, BLAKE2b from hashlib. Exit 0 if every check holds, 1 with a reason.
#
#   verify.py cred FILE.cred ISSUER.pub CLIENT.pub UID
#   verify.py release FILE.manifest RELEASE.pub PACKAGE VERSION URL...
#   verify.py hello HEX ISSUER_PK_HEX      (a whole HELLO datagram)
import base64
import hashlib
import sys

P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


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


def _decompress(s):
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


G = _decompress((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))


def ed25519_verify(pk, msg, sig):
    A, R = _decompress(pk), _decompress(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if A is None or R is None or s >= Q or len(sig) != 64:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + pk + msg).digest(), "little") % Q
    return _equal(_mul(s, G), _add(R, _mul(h, A)))


def kid(pk):
    return hashlib.blake2b(pk, digest_size=32).digest()[:8]


class Reader:
    """Just enough msgpack for upgate: maps, arrays, str, bin, uint, nil."""

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

    def obj(self):
        t = self.num(1)
        if t <= 0x7f:
            return t
        if 0x80 <= t <= 0x8f:
            return self.map(t & 0x0f)
        if 0x90 <= t <= 0x9f:
            return [self.obj() for _ in range(t & 0x0f)]
        if 0xa0 <= t <= 0xbf:
            return self.take(t & 0x1f).decode("utf-8")
        if t == 0xc0:
            return None
        if t in (0xc4, 0xc5, 0xc6):
            return bytes(self.take(self.num({0xc4: 1, 0xc5: 2, 0xc6: 4}[t])))
        if t in (0xcc, 0xcd, 0xce, 0xcf):
            return self.num({0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t])
        if t in (0xd9, 0xda, 0xdb):
            return self.take(self.num({0xd9: 1, 0xda: 2, 0xdb: 4}[t])).decode("utf-8")
        if t in (0xdc, 0xdd):
            return [self.obj() for _ in range(self.num(2 if t == 0xdc else 4))]
        if t in (0xde, 0xdf):
            return self.map(self.num(2 if t == 0xde else 4))
        raise ValueError("type byte %02x not used by upgate" % t)

    def map(self, n):
        out = {}
        for _ in range(n):
            k = self.obj()
            if not isinstance(k, str) or k in out:
                raise ValueError("bad or duplicate key %r" % (k,))
            out[k] = self.obj()
        return out


def whole(data):
    r = Reader(data)
    o = r.obj()
    if r.i != len(data):
        raise ValueError("trailing bytes")
    return o


def signed(obj, ctx, pk):
    body, sig = obj
    if not ed25519_verify(pk, ctx + b"\x00" + body, sig):
        raise ValueError("%s signature does not verify" % ctx.decode())
    return whole(body)


def pubfile(path):
    data = base64.b64decode(open(path, "rb").read().strip(), validate=True)
    if len(data) != 32:
        raise ValueError("%s: not 32 bytes" % path)
    return data


def check(cond, what):
    if not cond:
        raise ValueError(what)


def cmd_cred(path, issuer_pub, client_pub, uid):
    ipk, cpk = pubfile(issuer_pub), pubfile(client_pub)
    obj = whole(base64.b64decode(open(path, "rb").read().strip(), validate=True))
    body = signed(obj, b"UG1-CRED", ipk)
    check(set(body) == {"uid", "pk", "exp", "kid"}, "credential keys %s" % sorted(body))
    check(body["uid"] == int(uid), "uid")
    check(body["pk"] == cpk, "pk")
    check(body["kid"] == kid(ipk), "kid")
    check(isinstance(body["exp"], int) and body["exp"] > 1700000000, "exp")


def cmd_release(path, release_pub, package, version, *urls):
    rpk = pubfile(release_pub)
    body = signed(whole(open(path, "rb").read()), b"UG1-RELEASE", rpk)
    check(set(body) == {"to", "urls", "size", "hash", "exp", "kid"}, "manifest keys %s" % sorted(body))
    data = open(package, "rb").read()
    check(body["to"] == version, "to")
    check(body["urls"] == list(urls), "urls")
    check(body["size"] == len(data), "size")
    check(body["hash"] == hashlib.blake2b(data, digest_size=32).digest(), "hash")
    check(body["kid"] == kid(rpk), "kid")


def cmd_hello(hexdata, issuer_hex):
    data, ipk = bytes.fromhex(hexdata), bytes.fromhex(issuer_hex)
    check(512 <= len(data) <= 1232, "size")
    dg = whole(data)
    check(len(dg) == 5 and dg[0] == "UG" and dg[1] == 1 and dg[2] == 1, "header")
    body = whole(dg[3])
    cred = signed(body["cred"], b"UG1-CRED", ipk)
    check(cred["uid"] == body["uid"] and cred["pk"] == body["pk"], "binding")
    check(ed25519_verify(body["pk"], b"UG1-HELLO\x00" + dg[3], dg[4]), "hello signature")


def main(argv):
    cmds = {"cred": cmd_cred, "release": cmd_release, "hello": cmd_hello}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__ or "usage: see the comment atop verify.py", file=sys.stderr)
        return 2
    try:
        cmds[argv[1]](*argv[2:])
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError, OSError) as e:
        print("verify.py: %s: %s" % (argv[1], e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
