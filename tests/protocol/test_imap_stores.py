"""
tern-imapd and tern-pop3d keep a user's store open after the session ends,
for the user's next session (storage/store-cache.c, shared with
tern-lmtpd: test_lmtp_stores.py): that it is kept (the index stays open in
the daemon after LOGOUT or QUIT), and that what changed meanwhile is seen
by the next session: a new quota, the user deleted and created again, the
index rebuilt by ternctl. A reload (SIGHUP) closes every idle store.
"""

import signal

from test_lmtp_stores import open_indexes, wait_for

USER, PASSWORD = "alice@example.org", "alice-pw"
MSG = b"From: a@example.net\r\nSubject: kept\r\n\r\nbody\r\n"


def session(server):
    """A logged-in imaplib client."""
    m = server.imaplib()
    m.login(USER, PASSWORD)
    return m


def append(server, n=1, message=MSG):
    m = session(server)
    try:
        return [m.append("INBOX", None, None, message) for _ in range(n)]
    finally:
        m.logout()


def exists(server):
    m = session(server)
    try:
        typ, data = m.select("INBOX")
        assert typ == "OK", data
        return int(data[0])
    finally:
        m.logout()


def test_store_kept_after_logout_and_reload_closes_it(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    server = imapd()
    append(server, 2)
    assert wait_for(lambda: any(f.endswith("index.sqlite")
                                for f in open_indexes(server, USER))), \
        open_indexes(server, USER)
    # The next session takes it: still one connection to the index.
    assert exists(server) == 2
    assert wait_for(lambda: sum(f.endswith("index.sqlite")
                                for f in open_indexes(server, USER)) == 1)
    server.signal(signal.SIGHUP)
    assert wait_for(lambda: not open_indexes(server, USER)), open_indexes(server, USER)
    assert exists(server) == 2


def test_new_quota_applies_to_a_kept_store(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    server = imapd()
    append(server)
    auth_env.ternctl("user", "quota", USER, "--messages", "1")
    # COPY is checked by the store itself (APPEND also by the session).
    m = session(server)
    m.select("INBOX")
    typ, data = m.copy("1", "INBOX")
    m.logout()
    assert typ == "NO" and b"[OVERQUOTA]" in data[0], (typ, data)
    assert exists(server) == 1


def test_user_deleted_and_created_again(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    server = imapd()
    append(server, 2)
    auth_env.ternctl("--yes", "user", "del", USER)
    auth_env.add_user(USER, PASSWORD)
    # A new, empty mail directory and index: not the kept store's.
    assert exists(server) == 0
    append(server)
    assert exists(server) == 1
    auth_env.ternctl("index", "check", USER)


def test_index_rebuilt_while_the_store_is_kept(imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    server = imapd()
    append(server, 2)
    auth_env.ternctl("index", "rebuild", USER)
    append(server)
    # The third message went into the index that is now in place.
    assert exists(server) == 3
    auth_env.ternctl("index", "check", USER)


def test_pop3_store_kept_and_user_created_again(pop3d, imapd, auth_env):
    auth_env.add_user(USER, PASSWORD)
    append(imapd(), 2)
    server = pop3d()
    p = server.poplib()
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 2
    p.quit()
    assert wait_for(lambda: any(f.endswith("index.sqlite")
                                for f in open_indexes(server, USER)))
    auth_env.ternctl("--yes", "user", "del", USER)
    auth_env.add_user(USER, PASSWORD)
    p = server.poplib()
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 0
    p.quit()
