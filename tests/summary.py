#!/usr/bin/python3
"""Count the test cases of a scripts/test run and print the closing line.

Reads <build>/meson-logs/testlog.json (one JSON object per line, as written
by `meson test`) for each build and counts individual test cases:

  * TAP tests (the cmocka unit tests): every `ok N` / `not ok N` line is one
    case; `# SKIP` means skipped, `not ok ... # TODO` is an expected failure
    (skipped). Cases announced by the plan (`1..N`) that never reported count
    as failed (the program died part-way).
  * pytest runs (the protocol tests): the counts in pytest's summary line,
    e.g. "1 failed, 3 passed, 2 skipped in 4.20s"; errors count as failed.
  * anything else: the meson test itself, by its result.

A meson test that failed but whose output shows no failed case (a crash, a
sanitizer report at exit, a timeout) adds one failed case, so a failure is
never lost. Extra results (build failures, fuzz runs) come from --results
files with one "build suite name result" per line, result being passed,
failed or skipped.

Prints a per-suite breakdown per build, the failed cases, and as the very
last line "N passed, N failed" (", N skipped" only if any were skipped).
Exits 1 if anything failed, else 0.

Usage: summary.py [--root DIR] [--build DIR]... [--results FILE]...
Without --build, every DIR/build*/meson-logs/testlog.json is read.
"""

import argparse
import glob
import json
import os
import re
import sys

TAP_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?([^#]*?)\s*(#\s*(\w+).*)?$")
TAP_PLAN = re.compile(r"^1\.\.(\d+)")
# "1 failed, 3 passed, 2 skipped in 4.20s", "== 5 passed in 0.1s ==",
# "no tests ran in 0.01s"; the time may be followed by "(0:01:05)".
PYTEST_SUMMARY = re.compile(
    r"^=*\s*((?:\d+ [a-z]+(?:, )?)+|no tests ran) in [\d.]+s\b.*$")
PYTEST_COUNT = re.compile(r"(\d+) ([a-z]+)")
PYTEST_FAILED_HEADER = re.compile(r"^_{3,} (.+?) _{3,}$")
PYTEST_WORDS = {
    "passed": "passed", "xpassed": "passed",
    "failed": "failed", "error": "failed", "errors": "failed",
    "skipped": "skipped", "xfailed": "skipped",
    # "deselected", "warning(s)", "rerun": not test outcomes.
}
MESON_RESULTS = {
    "OK": "passed", "EXPECTEDFAIL": "passed",
    "SKIP": "skipped",
    # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, INTERRUPT ...: failed
}
MAX_FAILED_LISTED = 30


class Counts:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def add(self, other):
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped

    def line(self, always_skipped=False):
        s = f"{self.passed} passed, {self.failed} failed"
        if self.skipped or always_skipped:
            s += f", {self.skipped} skipped"
        return s


def parse_tap(out):
    """Counts and names of failed cases from TAP output, or None if none."""
    c = Counts()
    failed = []
    plan = None
    seen = 0
    for line in out.splitlines():
        line = line.rstrip()
        m = TAP_PLAN.match(line)
        if m:
            plan = int(m.group(1))
            continue
        m = TAP_RESULT.match(line)
        if not m:
            continue
        seen += 1
        ok = m.group(1) == "ok"
        directive = (m.group(5) or "").upper()
        if directive.startswith("SKIP"):
            c.skipped += 1
        elif directive == "TODO":
            if ok:
                c.passed += 1
            else:
                c.skipped += 1
        elif ok:
            c.passed += 1
        else:
            c.failed += 1
            failed.append(line)
    if seen == 0 and plan is None:
        return None
    if plan is not None and seen < plan:
        c.failed += plan - seen
        failed.append(f"{plan - seen} of {plan} planned cases never reported")
    return c, failed


def parse_pytest(out):
    """Counts and names of failed tests from pytest's output, or None."""
    summary = None
    for line in out.splitlines():
        m = PYTEST_SUMMARY.match(line.strip())
        if m:
            summary = m.group(1)
    if summary is None:
        return None
    c = Counts()
    for n, word in PYTEST_COUNT.findall(summary):
        kind = PYTEST_WORDS.get(word)
        if kind:
            setattr(c, kind, getattr(c, kind) + int(n))
    failed = []
    for line in out.splitlines():
        m = PYTEST_FAILED_HEADER.match(line.strip())
        if m and not m.group(1).startswith(("warnings summary", "short test summary")):
            failed.append(m.group(1))
    for line in out.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            failed.append(line)
    if c.failed and not failed:
        failed.append(f"{c.failed} failed (see the log)")
    return c, failed


def load_test_meta(build_dir):
    """name -> (suite, protocol) from meson's introspection data."""
    meta = {}
    try:
        with open(os.path.join(build_dir, "meson-info", "intro-tests.json"),
                  encoding="utf-8") as f:
            for t in json.load(f):
                suites = t.get("suite") or []
                # "project:suite"; a test without a suite has just "project".
                suite = suites[0].split(":", 1)[1] if suites and ":" in suites[0] else ""
                meta[t["name"]] = (suite, t.get("protocol", ""))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return meta


def split_name(name, meta):
    """(suite, test name) for a testlog name like 'tern:unit / arena'."""
    test = name.split(" / ", 1)[-1]
    suite = meta.get(test, ("", ""))[0]
    if not suite and " / " in name:
        prefix = name.split(" / ", 1)[0]     # "project:suite" or "project"
        suite = prefix.split(":", 1)[1] if ":" in prefix else ""
    return suite or "tests", test


def count_test(entry, meta):
    """Counts and failed-case descriptions for one testlog.json entry."""
    name = entry.get("name", "?")
    result = str(entry.get("result", "")).upper()
    out = (entry.get("stdout") or "") + "\n" + (entry.get("stderr") or "")
    suite, test = split_name(name, meta)
    protocol = meta.get(test, ("", ""))[1]

    parsed = None
    tap = False
    if protocol == "tap":
        parsed = parse_tap(entry.get("stdout") or "")
        tap = parsed is not None
    if parsed is None:
        parsed = parse_pytest(out)
    if parsed is None and protocol != "tap":
        parsed = parse_tap(entry.get("stdout") or "")
        tap = parsed is not None
    # meson's verdict on the program as a whole. For TAP, FAIL only says
    # that a case failed (or that cmocka wrote "not ok N # SKIP", which
    # meson 1.0 takes for a failure): the cases say it better.
    program_failed = result not in MESON_RESULTS and not (tap and result == "FAIL")
    if parsed is not None and (parsed[0].passed or parsed[0].failed
                               or parsed[0].skipped):
        c, failed = parsed
        if program_failed and c.failed == 0:
            # The program failed although no case did: a crash, a leak
            # report at exit, a timeout. Count it.
            c.failed += 1
            failed.append(f"the test program itself: {result}, exit status "
                          f"{entry.get('returncode')}")
    else:
        # No cases found (or none ran): the meson test counts as one.
        c = Counts()
        kind = MESON_RESULTS.get(result, "failed")
        setattr(c, kind, 1)
        failed = [f"{result or 'no result'}, exit status "
                  f"{entry.get('returncode')}"] if kind == "failed" else []
    return suite, test, c, failed


class Build:
    def __init__(self, label):
        self.label = label
        self.suites = {}      # suite -> Counts, in order of appearance
        self.failed = []      # "suite / test: case"
        self.notes = []
        self.log = None       # the testlog.txt next to a testlog.json read

    def suite(self, name):
        return self.suites.setdefault(name, Counts())

    def total(self):
        t = Counts()
        for c in self.suites.values():
            t.add(c)
        return t


def read_testlog(build, build_dir):
    path = os.path.join(build_dir, "meson-logs", "testlog.json")
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError:
        build.notes.append("no test log: the tests did not run")
        return
    meta = load_test_meta(build_dir)
    build.log = os.path.join(os.path.dirname(path), "testlog.txt")
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                build.suite("meson").failed += 1
                build.failed.append(f"meson / testlog.json line {n}: unreadable")
                continue
            suite, test, c, failed = count_test(entry, meta)
            build.suite(suite).add(c)
            build.failed.extend(f"{suite} / {test}: {f}" for f in failed)


def read_results(path, builds, order):
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 4:
                parts = parts + ["failed"] * (4 - len(parts))
            label, suite, name, result = parts[:4]
            b = builds.get(label)
            if b is None:
                b = builds[label] = Build(label)
                order.append(label)
            kind = result if result in ("passed", "failed", "skipped") else "failed"
            c = b.suite(suite)
            setattr(c, kind, getattr(c, kind) + 1)
            if kind == "failed":
                b.failed.append(f"{suite} / {name}: failed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=".", help="source tree (default: .)")
    ap.add_argument("--build", action="append", default=[],
                    help="build directory, relative to --root (repeatable)")
    ap.add_argument("--results", action="append", default=[],
                    help='file of "build suite name result" lines (repeatable)')
    args = ap.parse_args()

    build_dirs = args.build
    if not build_dirs:
        build_dirs = sorted(
            os.path.relpath(os.path.dirname(os.path.dirname(p)), args.root)
            for p in glob.glob(os.path.join(args.root, "build*", "meson-logs",
                                            "testlog.json")))

    builds = {}
    order = []
    for d in build_dirs:
        label = os.path.normpath(d)
        b = builds[label] = Build(label)
        order.append(label)
        read_testlog(b, os.path.join(args.root, d))
    for path in args.results:
        read_results(path, builds, order)

    total = Counts()
    failed_lines = []
    for label in order:
        b = builds[label]
        t = b.total()
        total.add(t)
        print(f"{label}: {t.line()}" + "".join(f" ({n})" for n in b.notes))
        width = max((len(s) for s in b.suites), default=0)
        for suite, c in b.suites.items():
            print(f"  {suite:<{width}}  {c.line()}")
        failed_lines.extend(f"{label}: {f}" for f in b.failed)

    if failed_lines:
        print("Failed:")
        for f in failed_lines[:MAX_FAILED_LISTED]:
            print(f"  {f}")
        if len(failed_lines) > MAX_FAILED_LISTED:
            print(f"  ... and {len(failed_lines) - MAX_FAILED_LISTED} more")
        logs = [os.path.relpath(b.log, args.root) for b in builds.values()
                if b.failed and b.log and os.path.exists(b.log)]
        if logs:
            print("Full output: " + "  ".join(logs))
    sys.stdout.flush()
    print(total.line())
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main())
