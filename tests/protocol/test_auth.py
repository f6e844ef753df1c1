"""
Authentication end to end, on a real daemon over real sockets: tern-echod's
LOGIN and AUTHENTICATE commands go through the auth worker process and PAM
(the built pam_tern.so with the project's etc/pam.d/tern-virtual, in a
private PAM directory), with virtual users created by the real
`ternctl user add`. Also pam_unix with a real system user (as root).

Covered: right/wrong/unknown/disabled users, SASL PLAIN with and without
SASL-IR, SASL LOGIN, login names refused before PAM (ROBUSTNESS 19), the
growing failure delay per address and per IPv6 /48 (ROBUSTNESS 20), no
password in the log and a non-dumpable worker (ROBUSTNESS 21), hostile
SASL input and many aborted exchanges (ROBUSTNESS 22), the per-address
limit on checks in flight, checks running in parallel, a slow PAM module
not stalling other connections, the per-connection failure limit, the
request timeout, SIGHUP, and recovery from a crashed PAM process.

Durations are asserted with generous bounds (the machines are shared):
what is checked is an ordering or a factor, not a benchmark.
"""

import base64
import os
import pwd
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import Client, auth_worker_pids, proc_status

PASSWORD = "Corr3ct-h0rse!"
PLAIN_FAILED = "NO Authentication failed."


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def login(port, user, password, source=None, timeout=20):
    """Connect, LOGIN, return (reply, seconds) and the client."""
    c = Client.connect(port, source=source)
    c.greeting()
    t0 = time.monotonic()
    r = c.cmd(f"LOGIN {user} {password}", timeout=timeout)
    return r[-1], time.monotonic() - t0, c


def timed(c, line, timeout=20):
    t0 = time.monotonic()
    r = c.cmd(line, timeout=timeout)
    return r[-1], time.monotonic() - t0


@pytest.fixture
def daemon(echod, auth_env):
    """Factory: start tern-echod with auth_env's [auth] (plus overrides)."""
    def start(auth=None, extra=None, **kw):
        return echod(auth_env.conf(auth, extra), tls=False, **kw)
    return start


# ------------------------------------------------------ users and results


def test_login_right_wrong_unknown(daemon, auth_env, clients):
    auth_env.add_user("alice", PASSWORD)
    d = daemon()
    r, _, c = login(d.port, "alice", PASSWORD)
    clients.append(c)
    assert r == "OK alice"
    # Logged in: the echo protocol goes on in the same session.
    assert c.cmd("hello") == ["ECHO hello"]

    for user, pw in (("alice", "wrong"), ("alice", PASSWORD.upper()),
                     ("nobody", PASSWORD), ("alice", "")):
        c = Client.connect(d.port)
        clients.append(c)
        c.greeting()
        assert c.cmd(f"LOGIN {user} {pw}") == [PLAIN_FAILED], (user, pw)
    log = d.log()
    assert "auth user=alice remote=127.0.0.1 mech=LOGIN-CMD result=ok" in log
    assert "auth user=alice remote=127.0.0.1 mech=LOGIN-CMD result=failed" in log
    assert "auth user=nobody remote=127.0.0.1 mech=LOGIN-CMD result=failed" in log


def test_login_name_is_normalized(daemon, auth_env, clients):
    auth_env.add_user("carol@example.org", PASSWORD)
    d = daemon()
    r, _, c = login(d.port, "Carol@Example.ORG", PASSWORD)
    clients.append(c)
    assert r == "OK carol@example.org"


def test_disabled_user_refused_then_enabled(daemon, auth_env, clients):
    auth_env.add_user("dave", PASSWORD)
    auth_env.ternctl("user", "disable", "dave")
    d = daemon()
    r, _, c = login(d.port, "dave", PASSWORD)
    clients.append(c)
    assert r == "NO Account disabled."
    assert "auth user=dave remote=127.0.0.1 mech=LOGIN-CMD result=disabled" in d.log()
    auth_env.ternctl("user", "enable", "dave")
    assert c.cmd(f"LOGIN dave {PASSWORD}") == ["OK dave"]


def test_bad_login_names_never_reach_pam(daemon, auth_env, clients):
    """ROBUSTNESS 19: refused before PAM (a pam_exec hook records every
    name PAM is asked about) and answered like a wrong password."""
    seen = os.path.join(auth_env.workdir, "pam-users")
    auth_env.pam_with_script(f'printf "%s\\n" "$PAM_USER" >> {seen}')
    auth_env.add_user("erin", PASSWORD)
    d = daemon(auth={"max_failures": "100"})
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    bad = ["../../etc", "a/b", "a@../../x", "a%u", "x" * 300, "a\tb", "..", "-a", "@x",
           "a@b@c", "a%2fb", "a..b"]
    for name in bad:
        assert c.cmd(f"LOGIN {name} {PASSWORD}") == [PLAIN_FAILED], repr(name)
    # A control character, and a 300-byte name, through SASL PLAIN.
    assert c.cmd("AUTHENTICATE PLAIN " + b64(b"\0er\x01in\0" + PASSWORD.encode())) == \
        [PLAIN_FAILED]
    assert c.cmd("AUTHENTICATE PLAIN " + b64("\0" + "y" * 300 + "\0" + PASSWORD)) == \
        [PLAIN_FAILED]
    assert c.cmd(f"LOGIN erin {PASSWORD}") == ["OK erin"]
    with open(seen) as f:
        assert f.read().split() == ["erin"]
    # Identical log lines are throttled after 10 repeats within a second.
    assert d.log().count("reason=invalid login name") >= 10 + 2


# ------------------------------------------------------------------ SASL


def test_sasl_plain_with_and_without_initial_response(daemon, auth_env, clients):
    auth_env.add_user("frank", PASSWORD)
    d = daemon(auth={"max_failures": "10"})
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    msg = b64("\0frank\0" + PASSWORD)
    assert c.cmd("AUTHENTICATE PLAIN " + msg) == ["OK frank"]
    assert c.cmd("AUTHENTICATE PLAIN") == ["+ "]
    assert c.cmd(msg) == ["OK frank"]
    # authzid equal to authcid is allowed; another user is not.
    assert c.cmd("AUTHENTICATE PLAIN " + b64("frank\0frank\0" + PASSWORD)) == ["OK frank"]
    assert c.cmd("AUTHENTICATE PLAIN " + b64("root\0frank\0" + PASSWORD)) == [PLAIN_FAILED]
    assert c.cmd("AUTHENTICATE PLAIN " + b64("\0frank\0nope")) == [PLAIN_FAILED]
    assert c.cmd("AUTHENTICATE plain " + msg) == ["OK frank"]
    assert "mech=PLAIN result=ok" in d.log()


def test_sasl_login(daemon, auth_env, clients):
    auth_env.add_user("grace", PASSWORD)
    d = daemon()
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    assert c.cmd("AUTHENTICATE LOGIN") == ["+ " + b64("Username:")]
    assert c.cmd(b64("grace")) == ["+ " + b64("Password:")]
    assert c.cmd(b64(PASSWORD)) == ["OK grace"]
    # The user name as initial response.
    assert c.cmd("AUTHENTICATE LOGIN " + b64("grace")) == ["+ " + b64("Password:")]
    assert c.cmd(b64("bad")) == [PLAIN_FAILED]
    assert c.cmd("AUTHENTICATE CRAM-MD5") == ["NO Unsupported mechanism"]
    assert "auth user=grace remote=127.0.0.1 mech=LOGIN result=ok" in d.log()


def test_no_password_in_log_and_worker_not_dumpable(daemon, auth_env, clients):
    """ROBUSTNESS 21: log_level is debug; every way of sending the password,
    right and wrong, leaves no trace of it or its base64 in the log."""
    auth_env.add_user("heidi", PASSWORD)
    wrong = "Wr0ng-Secret-42"
    d = daemon(auth={"max_failures": "100"})
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    for pw in (PASSWORD, wrong):
        exp = "OK heidi" if pw == PASSWORD else PLAIN_FAILED
        assert c.cmd(f"LOGIN heidi {pw}") == [exp]
        assert c.cmd("AUTHENTICATE PLAIN " + b64("\0heidi\0" + pw)) == [exp]
        assert c.cmd("AUTHENTICATE PLAIN") == ["+ "]
        assert c.cmd(b64("\0heidi\0" + pw)) == [exp]
        assert c.cmd("AUTHENTICATE LOGIN " + b64("heidi"))[0].startswith("+ ")
        assert c.cmd(b64(pw)) == [exp]
    d.stop(grace=15)
    log = d.log()
    assert "auth user=heidi" in log
    for pw in (PASSWORD, wrong):
        for secret in (pw, b64(pw), b64("\0heidi\0" + pw), b64("heidi\0heidi\0" + pw)):
            assert secret not in log, f"{secret!r} in the daemon log"


def test_worker_is_unprivileged_not_dumpable_and_holds_no_listener(daemon, auth_env):
    auth_env.add_user("ivan", PASSWORD)
    d = daemon()
    sup, chk = auth_worker_pids(d)
    tern_uid = pwd.getpwnam("tern").pw_uid
    listen_inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for line in f.read().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "0A":
                    listen_inodes.add(parts[9])
    for pid in (sup, chk):
        st = proc_status(pid)
        assert st["Uid"] == [tern_uid] * 4, st["Uid"]
        # Not dumpable: the kernel gives its /proc files to root.
        assert os.stat(f"/proc/{pid}/status").st_uid == 0
        fds = os.listdir(f"/proc/{pid}/fd")
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds]
        sockets = [t for t in targets if t.startswith("socket:[")]
        assert len(fds) <= 5, targets  # stdio and its socketpair end(s)
        for s in sockets:
            assert s[len("socket:["):-1] not in listen_inodes, f"listener leaked into {pid}"
    # Neither can be debugged or read by the mail user either.
    r = subprocess.run(["setpriv", "--reuid=tern", "--regid=tern", "--clear-groups",
                        "cat", f"/proc/{chk}/environ"], capture_output=True, timeout=30)
    assert r.returncode != 0


# --------------------------------------------------- failure delay (R20)


def test_failure_delay_doubles_and_success_clears_it(daemon, auth_env, clients):
    """ROBUSTNESS 20 with delays of 400, 800, 1600 ms (cap 1600)."""
    auth_env.add_user("judy", PASSWORD)
    d = daemon(auth={"failure_delay": "400ms", "failure_delay_max": "1600ms",
                     "max_failures": "10"})
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    times = []
    for _ in range(4):
        r, t = timed(c, "LOGIN judy wrong")
        assert r == PLAIN_FAILED
        times.append(t)
    assert 0.35 <= times[0] < 0.4 + 3, times
    assert 0.75 <= times[1] < 0.8 + 3, times
    assert 1.5 <= times[2] < 1.6 + 3, times
    assert 1.5 <= times[3] < 1.6 + 3, times   # capped
    assert times[0] < times[1] < times[2], times
    assert "delay=400ms" in d.log() and "delay=1600ms" in d.log()
    # Another connection from the same address shares the penalty.
    r, t, c2 = login(d.port, "judy", "wrong")
    clients.append(c2)
    assert r == PLAIN_FAILED and t >= 1.5, t
    # The right password works, without delay, and clears the penalty.
    r, t = timed(c, f"LOGIN judy {PASSWORD}")
    assert r == "OK judy" and t < 1.4, t
    r, t = timed(c, "LOGIN judy wrong")
    assert r == PLAIN_FAILED and 0.35 <= t < 1.4, t


PROXY_PROBE = "127.0.0.2"


def proxied(port, src_ip):
    c = Client.connect(port)
    fam = "TCP6" if ":" in src_ip else "TCP4"
    dst = "::1" if fam == "TCP6" else "127.0.0.1"
    c.send(f"PROXY {fam} {src_ip} {dst} 40000 {port}\r\n")
    c.greeting()
    return c


def test_failure_delay_shared_by_ipv6_48(daemon, auth_env, clients):
    auth_env.add_user("ken", PASSWORD)
    d = daemon(auth={"failure_delay": "400ms", "failure_delay_max": "3200ms"},
               extra={"imap": {"trusted_proxies": "127.0.0.1/32"}},
               probe_source=PROXY_PROBE)

    def fail_from(ip):
        c = proxied(d.port, ip)
        clients.append(c)
        r, t = timed(c, "LOGIN ken wrong")
        assert r == PLAIN_FAILED
        return t

    t1 = fail_from("2001:db8:1:2::5")
    t2 = fail_from("2001:db8:1:ffff::9")     # same /48: second failure
    t3 = fail_from("2001:db8:1:0:1::1")      # same /48: third
    t_other = fail_from("2001:db8:2::1")     # another /48: first again
    t_v4a = fail_from("192.0.2.10")
    t_v4b = fail_from("192.0.2.11")          # IPv4: per address
    assert 0.35 <= t1 < 2.5 and 0.75 <= t2 < 3 and 1.5 <= t3 < 4.5, (t1, t2, t3)
    assert t1 < t2 < t3
    assert 0.35 <= t_other < 1.5, t_other
    assert 0.35 <= t_v4a < 1.5 and 0.35 <= t_v4b < 1.5, (t_v4a, t_v4b)
    log = d.log()
    assert "remote=2001:db8:1:ffff::9 mech=LOGIN-CMD result=failed delay=800ms" in log
    # The right password from the /48 still works.
    c = proxied(d.port, "2001:db8:1:2::77")
    clients.append(c)
    assert c.cmd(f"LOGIN ken {PASSWORD}") == ["OK ken"]


def test_failure_delay_applied_after_reload(daemon, auth_env, clients):
    auth_env.add_user("lena", PASSWORD)
    d = daemon(auth={"max_failures": "10"})
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    r, t = timed(c, "LOGIN lena wrong")
    assert r == PLAIN_FAILED and t < 1.0, t
    # SIGHUP with a delay configured.
    with open(d.config_path) as f:
        text = f.read()
    text = text.replace("failure_delay = 0", "failure_delay = 900ms")
    with open(d.config_path, "w") as f:
        f.write(text)
    d.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "configuration reloaded" not in d.log():
        assert time.monotonic() < deadline, d.log_tail()
        time.sleep(0.05)
    r, t = timed(c, "LOGIN lena wrong")
    assert r == PLAIN_FAILED and t >= 0.85, t


def test_max_failures_disconnects(daemon, auth_env, clients):
    auth_env.add_user("mia", PASSWORD)
    d = daemon(auth={"max_failures": "2"})
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    assert c.cmd("LOGIN mia wrong1") == [PLAIN_FAILED]
    assert c.cmd("AUTHENTICATE PLAIN " + b64("\0mia\0wrong2")) == [PLAIN_FAILED]
    assert c.readline() == "* BYE Too many authentication failures"
    c.expect_eof()
    # Malformed and cancelled exchanges are no failures; a new connection
    # starts from zero.
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    for _ in range(3):
        assert c.cmd("AUTHENTICATE PLAIN ====")[0].startswith("BAD")
    assert c.cmd("LOGIN mia wrong3") == [PLAIN_FAILED]
    assert c.cmd(f"LOGIN mia {PASSWORD}") == ["OK mia"]


# ------------------------------------------------- hostile SASL (R22)


def test_hostile_sasl_input_refused_memory_flat(daemon, auth_env, clients):
    auth_env.add_user("nina", PASSWORD)
    d = daemon(auth={"max_failures": "100"}, measure_rss=True)
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    garbage = b64(os.urandom(7500))   # 10,000 characters of base64
    assert len(garbage) == 10000
    cases = [
        ("AUTHENTICATE PLAIN ====", None),
        ("AUTHENTICATE PLAIN " + garbage, None),
        ("AUTHENTICATE PLAIN " + b64("no NULs in here at all"), None),
        ("AUTHENTICATE PLAIN " + b64("\0only-one-nul"), None),
        ("AUTHENTICATE PLAIN " + b64("a\0b\0c\0d"), None),
        ("AUTHENTICATE PLAIN *", None),
        ("AUTHENTICATE PLAIN", "*"),
        ("AUTHENTICATE PLAIN", "===="),
        ("AUTHENTICATE PLAIN", garbage),
        ("AUTHENTICATE LOGIN", "*"),
        ("AUTHENTICATE LOGIN " + b64("nina"), "*"),
        ("AUTHENTICATE LOGIN", "not base64!"),
    ]
    for first, second in cases:
        r = c.cmd(first)
        if second is not None:
            assert r[0].startswith("+ "), (first, r)
            r = c.cmd(second)
        assert r[-1].startswith("BAD ") or r[-1].startswith("NO "), (first, second, r)
    # Nothing above reached a check.
    assert "auth user=" not in d.log()

    # Many aborted exchanges, pipelined in batches, while a real login
    # runs on another connection.
    def batch(n):
        c.send("".join("AUTHENTICATE PLAIN\r\n*\r\n" for _ in range(n)))
        for _ in range(n):
            assert c.readline() == "+ "
            assert c.readline().startswith("BAD ")

    batch(200)
    rss_before = proc_status(d.pid)["VmRSS"][0]
    result = {}

    def real_login():
        r, _, c2 = login(d.port, "nina", PASSWORD)
        result["r"] = r
        c2.close()

    th = threading.Thread(target=real_login)
    th.start()
    for _ in range(9):
        batch(200)
    th.join(30)
    assert result.get("r") == "OK nina"
    rss_after = proc_status(d.pid)["VmRSS"][0]
    assert rss_after - rss_before < 2048, (rss_before, rss_after)
    assert c.cmd("ping") == ["ECHO ping"]


# ------------------------------------------- slow PAM and concurrency


def slow_pam(auth_env, seconds):
    """Users whose name starts with "slow" take that long in PAM."""
    auth_env.pam_with_script(f'case "$PAM_USER" in slow*) sleep {seconds};; esac')


def start_logins(port, users_pw, source=None):
    """Send LOGIN on one connection each, all at once; returns a list of
    (reply, seconds from the common start) in order."""
    conns = []
    for user, pw in users_pw:
        c = Client.connect(port, source=source)
        c.greeting()
        conns.append(c)
    t0 = time.monotonic()
    for c, (user, pw) in zip(conns, users_pw):
        c.sendline(f"LOGIN {user} {pw}")
    out = [None] * len(conns)

    def wait(i):
        r = conns[i].response(timeout=30)
        out[i] = (r[-1], time.monotonic() - t0)

    ths = [threading.Thread(target=wait, args=(i,)) for i in range(len(conns))]
    for th in ths:
        th.start()
    for th in ths:
        th.join(40)
    for c in conns:
        c.close()
    return out


def test_checks_run_in_parallel(daemon, auth_env):
    slow_pam(auth_env, 1.5)
    for i in range(4):
        auth_env.add_user(f"slow{i}", PASSWORD)
    d = daemon(auth={"worker_threads": "4", "max_concurrent_per_ip": "10"})
    t0 = time.monotonic()
    res = start_logins(d.port, [(f"slow{i}", PASSWORD) for i in range(4)])
    total = time.monotonic() - t0
    assert [r for r, _ in res] == [f"OK slow{i}" for i in range(4)], res
    # One after the other would take 6 s.
    assert 1.4 <= total < 4.5, res


def test_concurrent_attempts_per_address_limited(daemon, auth_env, clients):
    slow_pam(auth_env, 1.5)
    for i in range(4):
        auth_env.add_user(f"slow{i}", PASSWORD)
    auth_env.add_user("quick", PASSWORD)
    d = daemon(auth={"worker_threads": "4", "max_concurrent_per_ip": "2"})
    res = start_logins(d.port, [(f"slow{i}", PASSWORD) for i in range(4)])
    oks = [r for r, _ in res if r.startswith("OK")]
    limited = [(r, t) for r, t in res if r.startswith("NO [UNAVAILABLE]")]
    assert len(oks) == 2 and len(limited) == 2, res
    for r, t in limited:
        assert "Too many login attempts" in r
        assert t < 1.2, res   # answered at once, not after PAM
    assert d.log().count("result=limited") == 2

    # While two slow checks from 127.0.0.1 run, that address gets no
    # third, but another address (127.0.0.3) is not affected.
    result = {}
    th = threading.Thread(target=lambda: result.update(
        slow=start_logins(d.port, [("slow0", PASSWORD), ("slow1", PASSWORD)])))
    th.start()
    time.sleep(0.5)
    r, t, c = login(d.port, "quick", PASSWORD, source="127.0.0.3")
    clients.append(c)
    assert r == "OK quick" and t < 1.0, (r, t)
    r, t, c = login(d.port, "quick", PASSWORD)
    clients.append(c)
    assert r.startswith("NO [UNAVAILABLE]"), r
    th.join(30)
    assert [r for r, _ in result["slow"]] == ["OK slow0", "OK slow1"]


def test_disconnecting_keeps_the_slot_until_the_check_ends(daemon, auth_env, clients):
    slow_pam(auth_env, 2)
    auth_env.add_user("slowpoke", PASSWORD)
    auth_env.add_user("quick", PASSWORD)
    d = daemon(auth={"max_concurrent_per_ip": "1"})
    c = Client.connect(d.port)
    c.greeting()
    c.sendline(f"LOGIN slowpoke {PASSWORD}")
    time.sleep(0.3)
    c.close()
    r, _, c2 = login(d.port, "quick", PASSWORD)
    clients.append(c2)
    assert r.startswith("NO [UNAVAILABLE]"), r
    deadline = time.monotonic() + 15
    while True:
        r = c2.cmd(f"LOGIN quick {PASSWORD}")[-1]
        if r == "OK quick":
            break
        assert r.startswith("NO [UNAVAILABLE]") and time.monotonic() < deadline, r
        time.sleep(0.2)


def test_slow_pam_does_not_stall_other_connections(daemon, auth_env, clients):
    slow_pam(auth_env, 3)
    auth_env.add_user("slowest", PASSWORD)
    d = daemon()
    a = Client.connect(d.port)
    clients.append(a)
    a.greeting()
    a.sendline(f"LOGIN slowest {PASSWORD}")
    time.sleep(0.2)
    b = Client.connect(d.port)
    clients.append(b)
    t0 = time.monotonic()
    b.greeting()
    for i in range(20):
        assert b.cmd(f"ping {i}") == [f"ECHO ping {i}"]
    assert time.monotonic() - t0 < 1.5
    assert a.response(timeout=20) == ["OK slowest"]


def test_request_timeout_is_a_temporary_failure(daemon, auth_env, clients):
    slow_pam(auth_env, 4)
    auth_env.add_user("slowtimeout", PASSWORD)
    d = daemon(auth={"request_timeout": "1s"})
    r, t, c = login(d.port, "slowtimeout", PASSWORD)
    clients.append(c)
    assert r == "NO [UNAVAILABLE] Temporary authentication failure, try again later."
    assert 0.9 <= t < 3.5, t
    assert "result=tempfail reason=timeout" in d.log()


def test_pam_process_crash_is_temporary(daemon, auth_env, clients):
    slow_pam(auth_env, 3)
    auth_env.add_user("slowcrash", PASSWORD)
    auth_env.add_user("olga", PASSWORD)
    d = daemon()
    sup, chk = auth_worker_pids(d)
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    c.sendline(f"LOGIN slowcrash {PASSWORD}")
    time.sleep(0.5)
    os.kill(chk, signal.SIGKILL)
    t0 = time.monotonic()
    r = c.response(timeout=10)
    assert r == ["NO [UNAVAILABLE] Temporary authentication failure, try again later."]
    assert time.monotonic() - t0 < 2
    # A new PAM process serves the next logins; the supervisor is the same.
    sup2, chk2 = auth_worker_pids(d)
    assert sup2 == sup and chk2 != chk
    deadline = time.monotonic() + 10
    while True:
        r = c.cmd(f"LOGIN olga {PASSWORD}")[-1]
        if r == "OK olga":
            break
        assert r.startswith("NO [UNAVAILABLE]") and time.monotonic() < deadline, r
        time.sleep(0.1)
    assert "killed by signal 9" in d.log()
    assert d.running()


# -------------------------------------------------- pam_unix, system users


@pytest.fixture
def system_user():
    """A real system account with a password, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating a system user needs root")
    name = f"ternt{os.getpid() % 100000}"
    subprocess.run(["userdel", name], capture_output=True, timeout=60)
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, timeout=60)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{PASSWORD}\n".encode(), check=True,
                       timeout=60)
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True, timeout=60)


def test_system_user_through_pam_unix(daemon, auth_env, system_user, clients):
    with open(os.path.join(os.environ["TERN_SOURCE_DIR"], "etc", "pam.d", "tern-system")) as f:
        auth_env.set_pam(f.read())
    d = daemon(auth={"users": "system", "max_failures": "10"})
    c = Client.connect(d.port)
    clients.append(c)
    c.greeting()
    assert c.cmd(f"LOGIN {system_user} {PASSWORD}", timeout=30) == [f"OK {system_user}"]
    assert c.cmd(f"LOGIN {system_user} wrong", timeout=30) == [PLAIN_FAILED]
    assert c.cmd(f"LOGIN nosuchuser{os.getpid()} {PASSWORD}", timeout=30) == [PLAIN_FAILED]
    assert c.cmd("AUTHENTICATE PLAIN " + b64(f"\0{system_user}\0{PASSWORD}"),
                 timeout=30) == [f"OK {system_user}"]
    assert f"auth user={system_user} remote=127.0.0.1 mech=LOGIN-CMD result=ok" in d.log()
