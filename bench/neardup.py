"""Near-duplicate clustering: accuracy, speed and memory, against baselines in the same run.

    python bench/neardup.py            # full run (a few minutes on 2 cores)
    python bench/neardup.py --quick    # smaller sizes, for a smoke test

Data: English sentences from the docstrings of Python's standard library (real prose,
reproducible offline). Some become campaign *templates*, copied with the edits that evade
filters: inserted fillers and emoji, deleted and swapped words, Cyrillic/Greek homoglyphs,
leetspeak, zero-width characters, case changes, appended links and @-handles. The rest is
background, each sentence a text of its own.

Accuracy (at the configured threshold): pairwise precision and recall of pileon's MinHash LSH
(a pair is found when it shares an LSH band and its estimated Jaccard is at or above the
threshold) against exact Jaccard of the normalised shingle sets; the adjusted Rand index of
pileon's online clusters against the true templates (Hubert & Arabie 1985), with and without
homoglyph/leetspeak folding, and for a baseline that groups exact copies of the normalised text.

Speed: mentions per second on one core for the near-duplicate step (normalise, sign, match,
record, expire) against computing the signatures alone, and against the same step built on
datasketch's ``MinHash`` and ``MinHashLSH`` objects.

Memory: one person receiving 1,000 mentions a minute for 24 hours of event time, run in a
child process: peak RSS, bytes per mention held in the window, and evictions by the cap.
"""

from __future__ import annotations

import argparse
import inspect
import pydoc
import random
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import combinations, pairwise
from pathlib import Path

import numpy as np
from scipy.special import comb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pileon.core.allocator import trim_freed_memory
from pileon.core.settings import NearDupSettings
from pileon.schema.mention import post_key
from pileon.streams.detection.neardup import (
    ClusterIndex,
    NearDupWindow,
    Signer,
    kernels,
    normalise_tokens,
)
from pileon.streams.detection.neardup.signature import _KERNEL_MULT, _KERNEL_SALTS
from pileon.streams.detection.neardup.window import new_index

KEY = b"bench-key-0123456789abcdef"
PER_MINUTE = 100  # one heavily mentioned person, for the speed run
FILLERS = ["lol", "fr", "smh", "!!!", "😂", "🤡", "seriously", "again", "period", "👀"]
HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і", "y": "у"}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


# -- data -------------------------------------------------------------------------------
def sentences(limit: int) -> list[str]:
    """Distinct sentences of 8-30 words from stdlib docstrings, in a fixed order."""
    import asyncio
    import collections
    import configparser
    import csv
    import datetime
    import decimal
    import difflib
    import email
    import ftplib
    import http.client
    import imaplib
    import json
    import logging
    import mailbox
    import os
    import pathlib
    import shutil
    import smtplib
    import socket
    import sqlite3
    import ssl
    import string
    import subprocess as sp
    import tarfile
    import tempfile
    import threading
    import typing
    import unittest
    import urllib.request
    import xml.dom.minidom
    import zipfile

    out: list[str] = []
    kept: list[set[str]] = []
    postings: dict[str, list[int]] = defaultdict(list)
    for module in (os, collections, logging, json, pathlib, threading, unittest, email,
                   http.client, urllib.request, string, sp, random, argparse, inspect, asyncio,
                   configparser, csv, datetime, decimal, difflib, ftplib, imaplib, mailbox,
                   shutil, smtplib, socket, sqlite3, ssl, tarfile, tempfile, typing,
                   xml.dom.minidom, zipfile):
        for _, obj in sorted(inspect.getmembers(module)):
            doc = pydoc.getdoc(obj) if callable(obj) or inspect.isclass(obj) else ""
            for s in re.split(r"(?<=[.!?])\s+", doc.replace("\n", " ")):
                words = re.findall(r"[A-Za-z][A-Za-z']+", s)
                if 8 <= len(words) <= 30 and _distinct(words, kept, postings):
                    out.append(" ".join(words).lower())
                    if len(out) == limit:
                        return out
    return out


def _distinct(words: list[str], kept: list[set[str]], postings: dict[str, list[int]]) -> bool:
    """Keep a sentence only if it shares under 25% of its words and word pairs (Jaccard) with
    every sentence kept so far: distinct labels must mean dissimilar texts (docstrings repeat
    phrasing such as "Return a new ... of the ...")."""
    lower = [w.lower() for w in words]
    grams = set(lower) | {f"{a} {b}" for a, b in pairwise(lower)}
    near = {i for g in grams if " " in g for i in postings.get(g, ())}
    if any(len(grams & kept[i]) / len(grams | kept[i]) >= 0.25 for i in near):
        return False
    for g in grams:
        if " " in g:
            postings[g].append(len(kept))
    kept.append(grams)
    return True


def evade(text: str, rng: random.Random) -> str:
    """One to four filter-evading edits."""
    words = text.split()
    for _ in range(rng.randint(1, 4)):
        op, i = rng.randrange(9), rng.randrange(len(words))
        if op == 0:
            words.insert(i, rng.choice(FILLERS))
        elif op == 1 and len(words) > 8:
            del words[i]
        elif op == 2 and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op == 3:
            words[i] = "".join(HOMOGLYPHS.get(c, c) for c in words[i])
        elif op == 4:
            words[i] = "".join(LEET.get(c, c) if rng.random() < 0.5 else c for c in words[i])
        elif op == 5:
            words[i] = words[i][:1] + "\u200b" + words[i][1:]
        elif op == 6:
            words[i] = words[i].upper()
        elif op == 7:
            words.append(f"https://t.example/{rng.randrange(10**6)}")
        else:
            words.insert(0, f"@user{rng.randrange(10**4)}")
    return " ".join(words)


def labelled_set(n_templates: int, copies: int, background: int, seed: int = 1):  # type: ignore[no-untyped-def]
    pool = sentences(n_templates + background)
    rng = random.Random(seed)
    texts, labels = [], []
    for k, template in enumerate(pool[:n_templates]):
        for _ in range(copies):
            texts.append(evade(template, rng))
            labels.append(k)
    for j, text in enumerate(pool[n_templates:]):
        texts.append(text)
        labels.append(n_templates + j)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


# -- accuracy ---------------------------------------------------------------------------
def adjusted_rand_index(truth: list[int], found: list[object]) -> float:
    """ARI from the contingency table (Hubert & Arabie 1985)."""
    pairs = Counter(zip(truth, found, strict=True))
    sum_ij = sum(comb(n, 2) for n in pairs.values())
    sum_a = sum(comb(n, 2) for n in Counter(truth).values())
    sum_b = sum(comb(n, 2) for n in Counter(found).values())
    expected = sum_a * sum_b / comb(len(truth), 2)
    return float((sum_ij - expected) / ((sum_a + sum_b) / 2 - expected))


def exact_pairs(shingles: list[set[str]], threshold: float) -> set[tuple[int, int]]:
    """Pairs whose exact Jaccard is at or above ``threshold`` (via an inverted index)."""
    postings: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(shingles):
        for sh in s:
            postings[sh].append(i)
    shared: Counter[tuple[int, int]] = Counter()
    for ids in postings.values():
        if len(ids) < 400:  # a shingle in hundreds of texts: counted by the pairs below
            shared.update(combinations(ids, 2))
    out = set()
    for (i, j), _ in shared.items():
        a, b = shingles[i], shingles[j]
        if len(a & b) / len(a | b) >= threshold:
            out.add((i, j))
    return out


def lsh_pairs(signatures: np.ndarray, index: ClusterIndex) -> set[tuple[int, int]]:
    """Pairs that share an LSH band and whose estimated Jaccard reaches the threshold."""
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for i, sig in enumerate(signatures):
        for band, key in enumerate(index.band_keys(sig)):  # keys carry their band already
            buckets[band, key].append(i)
    candidates = {p for ids in buckets.values() for p in combinations(ids, 2)}
    return {
        (i, j) for i, j in candidates
        if np.count_nonzero(signatures[i] == signatures[j]) / signatures.shape[1]
        >= index.threshold
    }


def cluster_online(texts: list[str], fold: bool, settings: NearDupSettings) -> list[object]:
    signer = Signer(KEY, settings.num_perm, settings.shingle_words)
    index = new_index(settings, settings.num_perm)
    labels: list[object] = []
    for i, text in enumerate(texts):
        sig = signer.signature(normalise_tokens(text, fold_confusables=fold))
        cluster = index.match(sig) or f"c{i}"
        index.add(str(i), cluster, float(i), "a", False, sig)
        labels.append(cluster)
    return labels


def template_pair_scores(truth: list[int], found: list[object]) -> tuple[float, float]:
    """Precision and recall of 'same cluster' against 'same template'."""
    same_found = Counter(found)
    pairs_found = sum(comb(n, 2) for n in same_found.values())
    pairs_true = sum(comb(n, 2) for n in Counter(truth).values())
    both = sum(comb(n, 2) for n in Counter(zip(truth, found, strict=True)).values())
    return float(both / pairs_found) if pairs_found else 1.0, float(both / pairs_true)


def accuracy(quick: bool) -> dict[str, float]:
    settings = NearDupSettings()
    texts, truth = labelled_set(30 if quick else 60, 20 if quick else 30,
                                500 if quick else 1300)
    signer = Signer(KEY, settings.num_perm, settings.shingle_words)
    tokens = [normalise_tokens(t) for t in texts]
    shingles = [signer.shingles(t) for t in tokens]
    sigs = signer.signatures(tokens)
    exact = exact_pairs(shingles, settings.threshold)
    found = lsh_pairs(sigs, new_index(settings, settings.num_perm))
    tp = len(exact & found)
    results = {
        "texts": len(texts), "threshold": settings.threshold,
        "pair_precision": tp / len(found) if found else 1.0,
        "pair_recall": tp / len(exact) if exact else 1.0,
    }
    print(f"\naccuracy on {len(texts)} texts ({len(set(truth))} true groups), "
          f"threshold {settings.threshold}, {len(exact)} pairs at or above it (exact Jaccard)")
    print(f"  pileon MinHash LSH vs exact Jaccard: precision {results['pair_precision']:.4f} "
          f"recall {results['pair_recall']:.4f}")
    print(f"  {'clustering':<38} {'ARI':>7} {'tmpl-prec':>10} {'tmpl-recall':>12}")
    exact_copy = [" ".join(t) for t in tokens]
    rows = [
        ("pileon (folding on)", cluster_online(texts, True, settings)),
        ("pileon without homoglyph/leet folding", cluster_online(texts, False, settings)),
        ("baseline: exact copies after folding", exact_copy),
    ]
    for name, labels in rows:
        ari = adjusted_rand_index(truth, labels)
        p, r = template_pair_scores(truth, labels)
        print(f"  {name:<38} {ari:7.3f} {p:10.3f} {r:12.3f}")
        results[name] = ari
    results["ari"] = results.pop("pileon (folding on)")
    results["ari_nofold"] = results.pop("pileon without homoglyph/leet folding")
    results["ari_exact"] = results.pop("baseline: exact copies after folding")
    return results


# -- speed --------------------------------------------------------------------------------
class Traffic:
    """A person's mentions: one third copies of 20 campaign templates, two thirds unique
    texts (the first half of one sentence and the second half of another, so background is
    as unrelated and as unrepeated as real chatter, yet shares its vocabulary)."""

    def __init__(self, seed: int) -> None:
        self.pool = sentences(3000)
        self.rng = random.Random(seed)

    def next(self) -> str:
        rng, pool = self.rng, self.pool
        if rng.random() < 1 / 3:
            return evade(rng.choice(pool[:20]), rng)
        a, b = rng.choice(pool[20:]).split(), rng.choice(pool[20:]).split()
        return " ".join(a[: len(a) // 2] + b[len(b) // 2 :])


def stream(n: int, seed: int = 2) -> list[str]:
    traffic = Traffic(seed)
    return [traffic.next() for _ in range(n)]


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def best_rate(n: int, run: Callable[[], object], repeats: int = 3) -> float:
    """Best of a few runs: the figure least disturbed by the rest of the machine."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = max(best, rate(n, time.perf_counter() - t0))
    return best


def numpy_signature(signer: Signer, tokens: list[str]) -> np.ndarray:
    """The same signature in numpy array operations (pileon's implementation until the
    compiled kernel): ~25 calls on tiny arrays per text."""
    units, n = signer.units(tokens)
    out = np.empty(signer.num_perm, dtype=np.uint32)
    kernels.sign_reference(signer._keyed(units), n, _KERNEL_MULT, _KERNEL_SALTS,
                           *signer.permutations, out)
    return out


def datasketch_signature(signer: Signer, tokens: list[str]) -> np.ndarray:
    """The same signature through datasketch's own ``MinHash.update_batch``."""
    from datasketch import MinHash  # here: the memory child must not load what it won't use
    m = MinHash(num_perm=signer.num_perm, permutations=signer.permutations, scheme="affine32",
                hashfunc=int)
    m.update_batch(signer.shingle_hashes(tokens).tolist())
    return m.hashvalues


def speed(quick: bool) -> dict[str, float]:
    settings = NearDupSettings()
    texts = stream(20_000 if quick else 60_000)
    n = len(texts)
    signer = Signer(KEY, settings.num_perm, settings.shingle_words)
    tokens = [normalise_tokens(t) for t in texts]

    assert kernels.COMPILED, "build the package (pip install -e .) for the compiled kernels"
    for tk in tokens[:100]:  # the three signing paths agree bit for bit
        assert np.array_equal(signer.signature(tk), datasketch_signature(signer, tk))
        assert np.array_equal(signer.signature(tk), numpy_signature(signer, tk))
    sign_one = best_rate(n, lambda: [signer.signature(tk) for tk in tokens])
    sign_numpy = best_rate(n, lambda: [numpy_signature(signer, tk) for tk in tokens])
    sign_datasketch = best_rate(n, lambda: [datasketch_signature(signer, tk) for tk in tokens])

    windows: list[NearDupWindow] = []

    def run_step() -> None:
        window = NearDupWindow(settings, signer, {})
        windows.append(window)
        gap = 60.0 / PER_MINUTE
        for i, text in enumerate(texts):
            tk = window.tokens(text)
            sig = signer.signature(tk) if tk is not None else None
            window.add("p", f"m{i}", i * gap, f"a{i % 5000}", False, sig)
            window.expire("p", i * gap)

    step = best_rate(n, run_step)
    index = windows[-1].index("p")
    candidates = 0
    for tk in tokens[-2000:]:
        candidates += len(index.candidates(signer.signature(tk)))

    from datasketch import MinHash, MinHashLSH

    fn = settings.lsh_false_negative_weight
    lsh = MinHashLSH(threshold=settings.threshold, num_perm=settings.num_perm,
                     weights=(1 - fn, fn))
    reference: dict[int, MinHash] = {}
    t0 = time.perf_counter()
    for i, text in enumerate(texts):
        tk = normalise_tokens(text)
        m = MinHash(num_perm=settings.num_perm, permutations=signer.permutations,
                    scheme="affine32", hashfunc=int)
        m.update_batch(signer.shingle_hashes(tk).tolist())
        best = max(lsh.query(m), key=lambda k: m.jaccard(reference[k]), default=None)
        if best is None or m.jaccard(reference[best]) < settings.threshold:
            lsh.insert(i, m)
            reference[i] = m
    datasketch_step = rate(n, time.perf_counter() - t0)

    print(f"\nspeed on {n:,} tweet-length texts (mean {np.mean([len(t) for t in texts]):.0f} "
          f"characters) of one person at {PER_MINUTE}/min, one core, mentions/s")
    print(f"  signatures alone, pileon (compiled kernel)  {sign_one:>10,.0f}")
    print(f"  signatures alone, numpy array operations    {sign_numpy:>10,.0f}")
    print(f"  signatures alone, datasketch update_batch   {sign_datasketch:>10,.0f}")
    print(f"  pileon near-dup step (normalise..expire)    {step:>10,.0f}"
          f"   = {step / sign_one:.2f} x pileon's signatures alone,"
          f" {step / sign_datasketch:.2f} x datasketch's")
    print(f"  same step on datasketch MinHash+MinHashLSH  {datasketch_step:>10,.0f}"
          "   (no window expiry: a lower bound of its cost)")
    print(f"  at the end: {len(index.clusters):,} templates searchable, "
          f"{candidates / 2000:.1f} LSH candidates per query")
    return {"step_per_s": step, "sign_per_s": sign_one, "numpy_sign_per_s": sign_numpy,
            "datasketch_sign_per_s": sign_datasketch, "step_vs_sign": step / sign_one,
            "step_vs_datasketch_sign": step / sign_datasketch,
            "datasketch_step_per_s": datasketch_step}


# -- memory -------------------------------------------------------------------------------
# Keys of the posts that half the mentions reply to (the focus signal keeps one per record).
POST_KEYS = [post_key(f"at://did:plc:person/app.bsky.feed.post/{n}") for n in range(40)]


def memory_child(per_minute: int, hours: float) -> None:
    """Run in a child process: print peak RSS and window figures as key=value."""
    trim_freed_memory()  # as `pileon worker` does at start-up
    settings = NearDupSettings()
    signer = Signer(KEY, settings.num_perm, settings.shingle_words)
    traffic = Traffic(seed=3)
    store: dict[bytes, bytes] = {}
    window = NearDupWindow(settings, signer, store)
    rss0 = _proc_status("VmRSS")
    started = time.perf_counter()
    n = int(per_minute * 60 * hours)
    step = 60.0 / per_minute
    at_cap_rss = 0
    for i in range(n):
        tk = window.tokens(traffic.next())
        sig = signer.signature(tk) if tk is not None else None
        post = POST_KEYS[i % len(POST_KEYS)] if i % 2 else None  # half answer a post
        window.add("p", f"m{i}", i * step, f"a{i % 20_000}", i % 3 == 0, sig, post=post)
        window.expire("p", i * step)
        if i == n // 2:
            at_cap_rss = _proc_status("VmRSS")
    peak = _proc_status("VmHWM")
    held = window.store.count("p")
    print(f"mentions={n} held={held} peak_rss={peak} base_rss={rss0} at_cap_rss={at_cap_rss} "
          f"clusters={len(window.index('p').clusters)} seconds={time.perf_counter() - started}")


def _proc_status(field: str) -> int:
    """A size from /proc/self/status in bytes. (getrusage's ru_maxrss survives execve, so a
    child would report its parent's peak.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def memory(quick: bool) -> dict[str, float]:
    hours = 4.0 if quick else 24.0
    out = subprocess.run(  # noqa: S603 - this very script
        [sys.executable, __file__, "--memory-child", "1000", str(hours)],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    figures = {k: float(v) for k, v in (item.split("=") for item in out)}
    cap = NearDupSettings().max_per_person
    per_mention = (figures["peak_rss"] - figures["base_rss"]) / max(figures["held"], 1)
    print(f"\nmemory: one person, 1,000 mentions/min for {hours:g} h of event time "
          f"({figures['mentions']:,.0f} mentions), cap {cap:,} per person")
    print(f"  held in window at the end  {figures['held']:>12,.0f}")
    print(f"  peak RSS                   {figures['peak_rss'] / 2**20:>12,.1f} MiB "
          f"(interpreter, libraries and text generator: {figures['base_rss'] / 2**20:.1f} MiB)")
    print(f"  RSS half-way               {figures['at_cap_rss'] / 2**20:>12,.1f} MiB")
    print(f"  bytes per held mention     {per_mention:>12,.0f}")
    print(f"  clusters at the end        {figures['clusters']:>12,.0f}")
    print(f"  wall time                  {figures['seconds']:>12,.1f} s "
          f"({figures['mentions'] / figures['seconds']:,.0f} mentions/s)")
    return {"peak_rss_mib": figures["peak_rss"] / 2**20, "bytes_per_mention": per_mention,
            "held": figures["held"], "cap": cap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--memory-child", nargs=2, metavar=("PER_MIN", "HOURS"))
    args = parser.parse_args()
    if args.memory_child:
        memory_child(int(args.memory_child[0]), float(args.memory_child[1]))
        return
    acc = accuracy(args.quick)
    spd = speed(args.quick)
    mem = memory(args.quick)
    print(
        f"\nRESULT pair_precision={acc['pair_precision']:.4f} "
        f"pair_recall={acc['pair_recall']:.4f} ari={acc['ari']:.3f} "
        f"ari_nofold={acc['ari_nofold']:.3f} ari_exact_baseline={acc['ari_exact']:.3f} "
        f"step_per_s={spd['step_per_s']:.0f} sign_per_s={spd['sign_per_s']:.0f} "
        f"step_vs_sign={spd['step_vs_sign']:.2f} "
        f"datasketch_sign_per_s={spd['datasketch_sign_per_s']:.0f} "
        f"step_vs_datasketch_sign={spd['step_vs_datasketch_sign']:.2f} "
        f"numpy_sign_per_s={spd['numpy_sign_per_s']:.0f} "
        f"datasketch_step_per_s={spd['datasketch_step_per_s']:.0f} "
        f"peak_rss_mib={mem['peak_rss_mib']:.0f} bytes_per_mention={mem['bytes_per_mention']:.0f} "
        f"held={mem['held']:.0f}"
    )


if __name__ == "__main__":
    main()
