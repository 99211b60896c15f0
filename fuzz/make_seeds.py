#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/pool_fuzz.cpp (fuzz/corpus/pool/*).

Each seed is a short, meaningful program in the harness's input language (see Reader and
Session::step in pool_fuzz.cpp): the fuzzer starts from these and mutates them. Run from
the repository root: python3 fuzz/make_seeds.py
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "pool")

RO, WR, AUTO, SEAL, NO_GUARD = 0x0, 0x1, 0x2, 0x4, 0x8


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


class Prog:
    def __init__(self):
        self.b = bytearray()

    def create(self, flags, keep_seal=True):
        self.b += bytes([0, flags])
        if flags & SEAL:
            self.b += bytes([0 if keep_seal else 1])
        return self

    def size(self, n=None, kind=None):
        if kind == "zero":
            self.b += bytes([0])
        elif kind == "max":
            self.b += bytes([1, 3])
        elif kind == "huge":
            self.b += bytes([2])
        elif kind == "pages":
            self.b += bytes([3]) + u16(n - 1)
        elif kind == "region":
            self.b += bytes([4, 0])
        else:
            self.b += bytes([5]) + u16(n - 1)

    def alloc(self, pool, n=None, kind=None, seed=7, ok=True):
        self.b += bytes([1]) + u16(pool)
        self.size(n, kind)
        if ok:
            self.b += bytes([seed])
        return self

    def aligned(self, pool, n, align_log2, seed=9, ok=True):
        self.b += bytes([4]) + u16(pool)
        self.size(n)
        self.b += bytes([align_log2])
        if ok:
            self.b += bytes([seed])
        return self

    def free(self, pool, index):
        self.b += bytes([5]) + u16(pool) + bytes([0]) + u16(index)
        return self

    def bad_free(self, pool, kind, a=0, b=0):
        self.b += bytes([5]) + u16(pool) + bytes([kind])
        if kind == 4:
            self.b += u16(a)
        elif kind == 5:
            self.b += u16(a) + u16(b)
        return self

    def write(self, pool, index, seed=3):
        self.b += bytes([7]) + u16(pool) + u16(index) + bytes([seed])
        return self

    def protect(self, pool):
        self.b += bytes([8]) + u16(pool)
        return self

    def wr(self, pool, index, off, n, over=False, c=0x5A, memset=False):
        self.b += bytes([10 if memset else 9]) + u16(pool) + u16(index) + u16(off) + u16(n)
        self.b += bytes([0 if over else 1])
        if over:
            self.b += u16(5)
        self.b += bytes([c])
        return self

    def make_ro(self, pool):
        self.b += bytes([11]) + u16(pool)
        return self

    def prealloc(self, pool, n=None, kind=None):
        self.b += bytes([12]) + u16(pool)
        self.size(n, kind)
        return self

    def check(self, pool, index, off, n):
        self.b += bytes([13]) + u16(pool) + u16(index) + u16(off) + u16(n)
        return self

    def destroy(self, pool):
        self.b += bytes([14]) + u16(pool)
        return self


def seeds():
    p = Prog().create(RO)
    for i in range(8):
        p.alloc(0, 24 + 40 * i, seed=i)
    p.write(0, 2).free(0, 3).free(0, 6).alloc(0, 100).protect(0).alloc(0, 50).check(0, 1, 4, 10).destroy(0)
    yield "lifecycle", p

    p = Prog().create(WR)
    for i in range(4):
        p.alloc(0, 64, seed=i)
    p.protect(0).wr(0, 1, 8, 16).wr(0, 2, 0, 64, memset=True).wr(0, 3, 60, 4, over=True)
    p.make_ro(0).wr(0, 0, 0, 8).check(0, 0, 0, 64)
    yield "write_rare", p

    p = Prog().create(AUTO)
    for i in range(40):
        p.alloc(0, 200 + 37 * i, seed=i)
    p.free(0, 5).free(0, 20).alloc(0, 300).protect(0)
    yield "auto_protect", p

    p = Prog().create(0x10).create(RO).alloc(0, kind="zero", ok=False).alloc(0, kind="max", ok=False)
    p.alloc(0, kind="huge", ok=False).alloc(0, 48).aligned(0, 32, 14, ok=False).aligned(0, 32, 6)
    p.bad_free(0, 5, 0, 7).bad_free(0, 6).free(0, 0).bad_free(0, 4, 0).prealloc(0, kind="zero")
    yield "bad_input", p

    p = Prog().create(SEAL | WR).alloc(0, 128).alloc(0, 256).protect(0).wr(0, 0, 0, 32).alloc(0, 64).protect(0)
    yield "sealed", p

    p = Prog().create(RO).create(NO_GUARD).alloc(0, kind="region").prealloc(1, kind="pages", n=40)
    p.alloc(1, kind="pages", n=3).alloc(0, 10).protect(0).alloc(0, kind="region").bad_free(1, 7).destroy(0).destroy(1)
    yield "regions", p

    p = Prog()
    for k in range(4):
        p.create(WR if k % 2 else RO)
        p.alloc(k, 32 + k)
    p.bad_free(0, 7).protect(1).destroy(2).create(AUTO).alloc(2, 64).check(3, 0, 0, 35)
    yield "many_pools", p

    # Zero-length wr_* calls one past the end of an allocation name the byte there: the
    # neighbour's first byte (a valid target, of its own pool's kind) or a free granule.
    p = Prog().create(WR).create(RO)
    for k in range(2):
        p.alloc(k, 32, seed=k).alloc(k, 32, seed=k + 2)
    p.protect(0).wr(0, 0, 32, 0).wr(0, 1, 32, 0).wr(1, 0, 32, 0, memset=True).wr(1, 1, 32, 0)
    yield "zero_length_edges", p

    # An auto-protected pool at the harness's live-bytes cap: the sixth 1.5 MiB allocation
    # is freed at once, but the fifth was protected when allocation moved past it.
    p = Prog().create(AUTO)
    for i in range(5):
        p.alloc(0, kind="region", seed=i)
    p.alloc(0, kind="region", ok=False).write(0, 4)  # over the cap: freed, not filled
    yield "auto_rollback_at_cap", p


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, prog in seeds():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes(prog.b))
    print("wrote", len(list(seeds())), "seeds to", OUT)


if __name__ == "__main__":
    main()
