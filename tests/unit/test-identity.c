/* Unit tests for auth/identity.c: plain logins, master logins by separator
 * and by SASL authzid, with master users off and on, listed and not, other
 * separators, and names that do not normalize. The configurations are real
 * tern.conf text, parsed as the daemons parse it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "auth/auth.h"

#define SIZE (AUTH_NAME_MAX + 1)

static struct cfg *load(const char *text)
{
	struct cfg *cfg = NULL;
	char *error = NULL;

	assert_int_equal(cfg_load_string("test.conf", text, &cfg, &error), 1);
	assert_null(error);
	return cfg;
}

static struct cfg *cfg_off;   /* no master users */
static struct cfg *cfg_on;    /* masters "admin" and "Support@Example.org" */
static struct cfg *cfg_bang;  /* master "admin", separator "!" */

static int setup(void **state)
{
	cfg_off = load("");
	cfg_on = load("[auth]\nmaster_users = admin, Support@Example.org, not..valid\n");
	cfg_bang = load("[auth]\nmaster_users = admin\nmaster_separator = !\n");
	return 0;
}

static int teardown(void **state)
{
	cfg_free(&cfg_off);
	cfg_free(&cfg_on);
	cfg_free(&cfg_bang);
	return 0;
}

/* Resolve and expect success with these three names ("" for no master). */
static void expect_ok(const struct cfg *cfg, const char *login, const char *authzid,
		      const char *pam_user, const char *target, const char *master)
{
	char p[SIZE], t[SIZE], m[SIZE];

	assert_int_equal(auth_identity_resolve(cfg, login, authzid, p, t, m, SIZE), 0);
	assert_string_equal(p, pam_user);
	assert_string_equal(t, target);
	assert_string_equal(m, master);
}

static void expect_refused(const struct cfg *cfg, const char *login, const char *authzid)
{
	char p[SIZE], t[SIZE], m[SIZE];

	memset(p, 'x', sizeof(p));
	memset(t, 'x', sizeof(t));
	memset(m, 'x', sizeof(m));
	assert_int_equal(auth_identity_resolve(cfg, login, authzid, p, t, m, SIZE), -1);
	/* Nothing half-resolved is left behind. */
	assert_string_equal(p, "");
	assert_string_equal(t, "");
	assert_string_equal(m, "");
}

static void test_plain_login(void **state)
{
	const struct cfg *cfgs[] = { cfg_off, cfg_on, cfg_bang };

	for (size_t i = 0; i < N_ELEMENTS(cfgs); i++) {
		expect_ok(cfgs[i], "alice", NULL, "alice", "alice", "");
		expect_ok(cfgs[i], "alice", "", "alice", "alice", "");
		/* Normalized to the stored (lower-case) form. */
		expect_ok(cfgs[i], "Alice@Example.ORG", NULL, "alice@example.org",
			  "alice@example.org", "");
		/* A master logging in as themselves is a plain login. */
		expect_ok(cfgs[i], "admin", NULL, "admin", "admin", "");
	}
}

static void test_authzid_equal_to_authcid(void **state)
{
	const struct cfg *cfgs[] = { cfg_off, cfg_on };

	for (size_t i = 0; i < N_ELEMENTS(cfgs); i++) {
		expect_ok(cfgs[i], "alice", "alice", "alice", "alice", "");
		/* Equal after normalization. */
		expect_ok(cfgs[i], "alice", "ALICE", "alice", "alice", "");
		expect_ok(cfgs[i], "admin", "Admin", "admin", "admin", "");
	}
}

static void test_invalid_names_refused(void **state)
{
	const struct cfg *cfgs[] = { cfg_off, cfg_on };
	char long_name[AUTH_NAME_MAX + 2];

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	for (size_t i = 0; i < N_ELEMENTS(cfgs); i++) {
		expect_refused(cfgs[i], "", NULL);
		expect_refused(cfgs[i], "../../etc", NULL);
		expect_refused(cfgs[i], "a/b", NULL);
		expect_refused(cfgs[i], "a%u", NULL);
		expect_refused(cfgs[i], "a\tb", NULL);
		expect_refused(cfgs[i], long_name, NULL);
		/* A bad authzid is refused too, even with a good authcid. */
		expect_refused(cfgs[i], "alice", "../x");
		expect_refused(cfgs[i], "admin", long_name);
	}
}

static void test_masters_off(void **state)
{
	/* The separator: refused, whoever is named. */
	expect_refused(cfg_off, "alice*admin", NULL);
	expect_refused(cfg_off, "alice*alice", NULL);
	expect_refused(cfg_off, "*", NULL);
	/* An authzid other than the authcid. */
	expect_refused(cfg_off, "admin", "alice");
	expect_refused(cfg_off, "bob", "alice");
}

static void test_master_by_separator(void **state)
{
	expect_ok(cfg_on, "alice*admin", NULL, "admin", "alice", "admin");
	expect_ok(cfg_on, "alice*admin", "", "admin", "alice", "admin");
	expect_ok(cfg_on, "Alice@Example.org*ADMIN", NULL, "admin", "alice@example.org", "admin");
	/* The list entry is compared in normalized form. */
	expect_ok(cfg_on, "alice*support@example.org", NULL, "support@example.org", "alice",
		  "support@example.org");
	/* Not a master. */
	expect_refused(cfg_on, "alice*bob", NULL);
	/* A list entry that is no valid name never matches. */
	expect_refused(cfg_on, "alice*not..valid", NULL);
	/* Empty parts, a second separator, another separator. */
	expect_refused(cfg_on, "*admin", NULL);
	expect_refused(cfg_on, "alice*", NULL);
	expect_refused(cfg_on, "alice*admin*admin", NULL);
	expect_refused(cfg_on, "al*ice*admin", NULL);
	expect_refused(cfg_on, "alice!admin", NULL);
	/* Bad user part. */
	expect_refused(cfg_on, "../x*admin", NULL);
}

static void test_master_by_separator_with_authzid(void **state)
{
	/* Both ways at once is ambiguous: refused, even when they agree. */
	expect_refused(cfg_on, "alice*admin", "alice");
	expect_refused(cfg_on, "alice*admin", "bob");
	expect_refused(cfg_on, "alice*admin", "admin");
}

static void test_master_by_authzid(void **state)
{
	/* SASL PLAIN "alice\0admin\0password": admin's password, alice's mail. */
	expect_ok(cfg_on, "admin", "alice", "admin", "alice", "admin");
	expect_ok(cfg_on, "ADMIN", "Alice", "admin", "alice", "admin");
	expect_ok(cfg_on, "Support@example.org", "bob", "support@example.org", "bob",
		  "support@example.org");
	/* authcid not a master. */
	expect_refused(cfg_on, "bob", "alice");
	expect_refused(cfg_on, "not..valid", "alice");
	/* A master name is not an authzid that grants anything. */
	expect_refused(cfg_on, "alice", "admin");
}

static void test_other_separator(void **state)
{
	expect_ok(cfg_bang, "alice!admin", NULL, "admin", "alice", "admin");
	/* "*" is then just an invalid character. */
	expect_refused(cfg_bang, "alice*admin", NULL);
	expect_refused(cfg_bang, "alice!bob", NULL);
	expect_ok(cfg_bang, "admin", "alice", "admin", "alice", "admin");
}

static void test_small_buffer(void **state)
{
	char p[8], t[8], m[8];

	/* Buffers without room for the longest name are refused, not
	 * overrun, even when this name would fit. */
	assert_int_equal(auth_identity_resolve(cfg_on, "alice", NULL, p, t, m, 0), -1);
	assert_int_equal(auth_identity_resolve(cfg_on, "al", NULL, p, t, m, sizeof(p)), -1);
	assert_string_equal(p, "");
	assert_int_equal(auth_identity_resolve(cfg_on, "alexandria", NULL, p, t, m, sizeof(p)), -1);
	assert_int_equal(auth_identity_resolve(cfg_on, "alice*admin", NULL, p, t, m, sizeof(p)),
			 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_login),
		cmocka_unit_test(test_authzid_equal_to_authcid),
		cmocka_unit_test(test_invalid_names_refused),
		cmocka_unit_test(test_masters_off),
		cmocka_unit_test(test_master_by_separator),
		cmocka_unit_test(test_master_by_separator_with_authzid),
		cmocka_unit_test(test_master_by_authzid),
		cmocka_unit_test(test_other_separator),
		cmocka_unit_test(test_small_buffer),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
