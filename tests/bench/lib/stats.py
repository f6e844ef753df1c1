"""Numbers and the machine, for tests/bench/compare."""

import os
import platform
import statistics
import subprocess
import time


def fsync_rate(directory, seconds=2.0, block=4096, max_ops=1000000):
    """fdatasync()s per second: append `block` bytes to a new file in
    directory and fdatasync it, in a loop for `seconds`. The file is removed."""
    path = os.path.join(directory, "fsync-rate.tmp")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    data = b"\0" * block
    n = 0
    try:
        t0 = time.monotonic()
        end = t0 + seconds
        while n < max_ops:
            os.write(fd, data)
            os.fdatasync(fd)
            n += 1
            if time.monotonic() >= end:
                break
        elapsed = time.monotonic() - t0
    finally:
        os.close(fd)
        os.unlink(path)
    return n / elapsed


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def machine(directory):
    """A few facts about this machine and the file system of directory."""
    cpu = "?"
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = "?"
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    try:
        # findmnt names ext4 where stat -f says "ext2/ext3".
        fs, src = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", directory],
                                 capture_output=True, text=True,
                                 timeout=10).stdout.split()[:2]
    except (OSError, subprocess.TimeoutExpired, ValueError):
        fs = src = "?"
    try:
        osrel = dict(l.split("=", 1) for l in _read("/etc/os-release").splitlines()
                     if "=" in l).get("PRETTY_NAME", "?").strip('"')
    except ValueError:
        osrel = "?"
    return dict(nproc=os.cpu_count(), cpu=cpu, memory=mem,
                kernel=platform.release(), os=osrel, fs="%s on %s" % (fs, src))


def median(xs):
    return statistics.median(xs) if xs else None


def fmt_num(x):
    if x is None:
        return "?"
    ax = abs(x)
    if ax >= 1000:
        return "{:,.0f}".format(x)
    if ax >= 100:
        return "%.0f" % x
    if ax >= 10:
        return "%.1f" % x
    if ax >= 1:
        return "%.2f" % x
    return "%.3f" % x


def cell(values):
    """'median (min-max)' of a list of numbers."""
    if not values:
        return "?"
    if len(values) == 1:
        return fmt_num(values[0])
    return "%s (%s–%s)" % (fmt_num(median(values)), fmt_num(min(values)),
                           fmt_num(max(values)))


def ratio(tern, dovecot, higher_is_better):
    """Ratio oriented so that > 1 means Tern is better."""
    if not tern or not dovecot:
        return None
    t, d = median(tern), median(dovecot)
    if not t or not d:
        return None
    return t / d if higher_is_better else d / t


def markdown_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(out)
