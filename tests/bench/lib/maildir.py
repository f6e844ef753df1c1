"""Preloading Maildirs with a corpus, for tests/bench/preload and compare.

A corpus (tests/bench/corpus) is generated once into a cache directory keyed
by its parameters (seed, count, size mix, size, generator version); each
mailbox is then filled by hard-linking the cached files into its cur/ under
Maildir names that Dovecot (and Tern, DESIGN.md "Storage") accept:

    <epoch>.M<usec>P<index>Q<seed>.tern-bench,S=<size>,W=<crlf size>:2,<flags>

<epoch> is the message's Date, which is also the file's mtime (so the IMAP
INTERNALDATE is the Date header); names sort in message order. Flags are
deterministic from the seed: most older messages are \\Seen, a few \\Flagged
and \\Answered, the newest ones mostly unseen. Hard links make 100,000
messages take seconds; where the cache is on another file system the files
are copied instead (mtime kept).

Message files are never changed in place by a Maildir server (flag changes
are renames, expunges are unlinks), so many mailboxes, and both servers, can
share the cached files. They are mode 0644 so any mail user can read them;
the Maildir directories are given to the mail user.
"""

import errno
import os
import random
import shutil
import sys
import time

import corpus_gen

DEFAULT_CACHE = os.environ.get("TERN_BENCH_CACHE", "/var/tmp/tern-bench-cache")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cache_key(seed, count, size_mix="default", size=None):
    key = "corpus-s%d-n%d-%s" % (seed, count, size_mix)
    if size:
        key += "-b%d" % size
    return key + "-v%d" % corpus_gen.GENERATOR_VERSION


def cached_corpus(seed, count, size_mix="default", size=None, cache=None,
                  jobs=None, quiet=False):
    """Directory of the cached corpus, generated first if missing. A corpus
    is complete once its directory has its final name (it is generated under
    a temporary name and renamed)."""
    cache = cache or DEFAULT_CACHE
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, cache_key(seed, count, size_mix, size))
    if os.path.exists(os.path.join(path, corpus_gen.SUMMARY_FILE)):
        return path
    tmp = "%s.tmp-%d" % (path, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.monotonic()
    if not quiet:
        log("preload: generating corpus seed=%d count=%d mix=%s%s into %s"
            % (seed, count, size_mix, " size=%d" % size if size else "", path))
    corpus_gen.write_corpus(tmp, seed, count, size_mix, size,
                            jobs or os.cpu_count() or 1, progress=not quiet)
    os.chmod(tmp, 0o755)
    try:
        os.rename(tmp, path)
    except OSError:
        # Someone else finished the same corpus first.
        shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        log("preload: corpus ready in %.1f s" % (time.monotonic() - t0))
    return path


def flags_for(seed, i, count):
    rng = random.Random("preload:%d:%d" % (seed, i))
    recent = i >= count * 0.95
    flags = ""
    if rng.random() < 0.03:
        flags += "F"
    if rng.random() < 0.10:
        flags += "R"
    if rng.random() < (0.3 if recent else 0.9):
        flags += "S"
    return flags


def maildir_name(row, i, seed, flags):
    usec = random.Random("usec:%d:%d" % (seed, i)).randrange(1000000)
    return "%d.M%06dP%dQ%d.tern-bench,S=%d,W=%d:2,%s" % (
        row["epoch"], usec, i, seed, row["size"], row["vsize"], flags)


def make_maildir(path, uid=-1, gid=-1):
    for sub in ("", "cur", "new", "tmp"):
        d = os.path.join(path, sub)
        os.makedirs(d, mode=0o700, exist_ok=True)
        if uid >= 0:
            os.chown(d, uid, gid)


# Below this much free space set_aside removes at once instead.
SET_ASIDE_MIN_FREE = 5 << 30


def set_aside(path, graveyard):
    """Take the directory path out of the way (between benchmark runs)
    by moving it into graveyard, which the caller removes once all runs are
    done. Removing it now would slow the next run: on ext4 without a
    journal, creating a file skips one at a time the free inodes of its
    block group that were freed in the last minutes (recently_deleted() in
    fs/ext4/ialloc.c), which after thousands of removals took a third of a
    delivery run's CPU. Where space runs short it is removed after all."""
    if not os.path.lexists(path):
        return
    os.makedirs(graveyard, exist_ok=True)
    if shutil.disk_usage(graveyard).free < SET_ASIDE_MIN_FREE:
        shutil.rmtree(path)
        return
    n = 0
    while os.path.lexists(os.path.join(graveyard, str(n))):
        n += 1
    os.rename(path, os.path.join(graveyard, str(n)))


def chown_parents(path, stop, uid, gid):
    """chown path and its parents up to (not including) stop."""
    path = os.path.abspath(path)
    stop = os.path.abspath(stop)
    while path.startswith(stop + os.sep):
        os.chown(path, uid, gid)
        path = os.path.dirname(path)


def fill(maildir, corpus_dir, seed, limit=None, uid=-1, gid=-1, copy=False,
         folder=None):
    """Put the corpus (its first `limit` messages) into maildir's cur/ (or
    into the Maildir++ folder .<folder>). Returns (messages, bytes)."""
    if folder:
        maildir_root = maildir
        maildir = os.path.join(maildir, "." + folder.replace("/", "."))
        make_maildir(maildir_root, uid, gid)
    make_maildir(maildir, uid, gid)
    if folder:
        # Maildir++: a folder is marked by a maildirfolder file.
        marker = os.path.join(maildir, "maildirfolder")
        open(marker, "a").close()
        if uid >= 0:
            os.chown(marker, uid, gid)
    rows = corpus_gen.read_index(corpus_dir)
    if limit is not None:
        rows = rows[:limit]
    cur = os.path.join(maildir, "cur")
    count = len(rows)
    total = 0
    link_ok = not copy
    for i, row in enumerate(rows):
        src = os.path.join(corpus_dir, row["file"])
        dst = os.path.join(cur, maildir_name(row, i, seed, flags_for(seed, i, count)))
        if link_ok:
            try:
                os.link(src, dst)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                link_ok = False
        if not link_ok:
            shutil.copy2(src, dst)
            if uid >= 0:
                os.chown(dst, uid, gid)
        total += row["size"]
    return count, total
