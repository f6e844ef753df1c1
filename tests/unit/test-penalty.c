/* Unit tests for auth/penalty.c: the failure delay sequence and its cap,
 * reset by success and by an hour without failures, address grouping (IPv4,
 * IPv6 /48, IPv4-mapped, unix), the in-flight limit, and the bound on the
 * table under a flood of distinct addresses. Times are given, not read. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"

#define SEC 1000ULL
#define HOUR (3600 * SEC)
/* The table's bound, PENALTY_MAX_ENTRIES in penalty.c. */
#define MAX_ENTRIES 65536

static void test_delay_sequence_and_cap(void **state)
{
	struct auth_penalty *p = auth_penalty_new(2 * SEC, 15 * SEC, 5);
	const uint64_t want[] = { 2, 4, 8, 15, 15, 15 };
	uint64_t now = 1000;

	for (size_t i = 0; i < N_ELEMENTS(want); i++) {
		assert_int_equal(auth_penalty_failed(p, "192.0.2.1", now), want[i] * SEC);
		now += want[i] * SEC;
	}
	/* Many more failures: still the cap, no overflow. */
	for (int i = 0; i < 200; i++)
		assert_int_equal(auth_penalty_failed(p, "192.0.2.1", now), 15 * SEC);
	/* Another address has its own count. */
	assert_int_equal(auth_penalty_failed(p, "192.0.2.2", now), 2 * SEC);
	auth_penalty_free(&p);
	assert_null(p);
}

static void test_huge_cap_no_overflow(void **state)
{
	struct auth_penalty *p = auth_penalty_new(3, UINT64_MAX, 5);
	uint64_t last = 0, d;

	for (int i = 0; i < 100; i++) {
		d = auth_penalty_failed(p, "192.0.2.1", 1);
		assert_true(d >= last);
		last = d;
	}
	assert_true(last > 0);
	auth_penalty_free(&p);
}

static void test_zero_delay_disables(void **state)
{
	struct auth_penalty *p = auth_penalty_new(0, 15 * SEC, 5);

	for (int i = 0; i < 10; i++)
		assert_int_equal(auth_penalty_failed(p, "192.0.2.1", 1), 0);
	/* Turned on later: the failures counted so far apply. */
	auth_penalty_configure(p, 1 * SEC, 4 * SEC, 5);
	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", 1), 4 * SEC);
	auth_penalty_free(&p);
}

static void test_success_resets(void **state)
{
	struct auth_penalty *p = auth_penalty_new(2 * SEC, 15 * SEC, 5);

	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", 1), 2 * SEC);
	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", 2), 4 * SEC);
	auth_penalty_succeeded(p, "192.0.2.1");
	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", 3), 2 * SEC);
	/* A success from an address without failures changes nothing. */
	auth_penalty_succeeded(p, "198.51.100.7");
	auth_penalty_free(&p);
}

static void test_forgotten_after_an_hour(void **state)
{
	struct auth_penalty *p = auth_penalty_new(2 * SEC, 15 * SEC, 5);
	uint64_t t0 = 5 * SEC;

	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", t0), 2 * SEC);
	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", t0 + 10 * SEC), 4 * SEC);
	/* Just under an hour after the last failure: remembered. */
	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", t0 + 10 * SEC + HOUR - 1), 8 * SEC);
	/* An hour after the last failure: forgotten. */
	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", t0 + 20 * SEC + 2 * HOUR), 2 * SEC);

	/* Attempts in between (enter) do not keep failures alive. */
	assert_int_equal(auth_penalty_failed(p, "192.0.2.9", t0), 2 * SEC);
	for (int i = 1; i <= 4; i++) {
		assert_true(auth_penalty_enter(p, "192.0.2.9", t0 + (uint64_t)i * 20 * 60 * SEC));
		auth_penalty_leave(p, "192.0.2.9");
	}
	assert_int_equal(auth_penalty_failed(p, "192.0.2.9", t0 + 81 * 60 * SEC), 2 * SEC);
	auth_penalty_free(&p);
}

static void test_forgotten_by_sweep(void **state)
{
	struct auth_penalty *p = auth_penalty_new(2 * SEC, 15 * SEC, 5);
	char ip[32];

	/* 100 addresses fail once; an hour later other traffic sweeps them,
	 * and each starts again from the first delay. */
	for (int i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%d", i);
		assert_int_equal(auth_penalty_failed(p, ip, 1), 2 * SEC);
	}
	for (int i = 0; i < 20; i++) {
		assert_true(auth_penalty_enter(p, "192.0.2.1", 1 + HOUR + (uint64_t)i));
		auth_penalty_leave(p, "192.0.2.1");
	}
	for (int i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%d", i);
		assert_int_equal(auth_penalty_failed(p, ip, 2 + 2 * HOUR), 2 * SEC);
	}
	auth_penalty_free(&p);
}

static void test_ipv6_grouped_by_48(void **state)
{
	struct auth_penalty *p = auth_penalty_new(1 * SEC, 60 * SEC, 5);

	assert_int_equal(auth_penalty_failed(p, "2001:db8:1::1", 1), 1 * SEC);
	/* Same /48, other /64s and hosts: one penalty. */
	assert_int_equal(auth_penalty_failed(p, "2001:db8:1:ffff::2", 2), 2 * SEC);
	assert_int_equal(auth_penalty_failed(p, "2001:0db8:0001:0:1:2:3:4", 3), 4 * SEC);
	/* Zone suffix ignored. */
	assert_int_equal(auth_penalty_failed(p, "2001:db8:1::5%eth0", 4), 8 * SEC);
	/* The next /48 is another key. */
	assert_int_equal(auth_penalty_failed(p, "2001:db8:2::1", 5), 1 * SEC);
	/* A success anywhere in the /48 clears it. */
	auth_penalty_succeeded(p, "2001:db8:1:abcd::99");
	assert_int_equal(auth_penalty_failed(p, "2001:db8:1::1", 6), 1 * SEC);
	auth_penalty_free(&p);
}

static void test_ipv4_by_address(void **state)
{
	struct auth_penalty *p = auth_penalty_new(1 * SEC, 60 * SEC, 5);

	assert_int_equal(auth_penalty_failed(p, "198.51.100.1", 1), 1 * SEC);
	assert_int_equal(auth_penalty_failed(p, "198.51.100.2", 1), 1 * SEC);
	assert_int_equal(auth_penalty_failed(p, "198.51.100.1", 1), 2 * SEC);
	auth_penalty_free(&p);
}

static void test_v4_mapped_counts_as_ipv4(void **state)
{
	struct auth_penalty *p = auth_penalty_new(1 * SEC, 60 * SEC, 5);

	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", 1), 1 * SEC);
	assert_int_equal(auth_penalty_failed(p, "::ffff:192.0.2.1", 2), 2 * SEC);
	assert_int_equal(auth_penalty_failed(p, "::FFFF:c000:201", 3), 4 * SEC);
	/* Not grouped with other mapped addresses, as a /48 would. */
	assert_int_equal(auth_penalty_failed(p, "::ffff:192.0.2.2", 4), 1 * SEC);
	auth_penalty_free(&p);
}

static void test_unparsable_share_one_key(void **state)
{
	struct auth_penalty *p = auth_penalty_new(1 * SEC, 60 * SEC, 5);

	assert_int_equal(auth_penalty_failed(p, "unix", 1), 1 * SEC);
	assert_int_equal(auth_penalty_failed(p, "not an address", 2), 2 * SEC);
	assert_int_equal(auth_penalty_failed(p, "", 3), 4 * SEC);
	assert_int_equal(auth_penalty_failed(p, NULL, 4), 8 * SEC);
	assert_int_equal(auth_penalty_failed(p, "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa",
					  5), 16 * SEC);
	/* ... and not with real addresses. */
	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", 6), 1 * SEC);
	assert_int_equal(auth_penalty_failed(p, "::", 7), 1 * SEC);
	auth_penalty_free(&p);
}

static void test_in_flight_limit(void **state)
{
	struct auth_penalty *p = auth_penalty_new(2 * SEC, 15 * SEC, 3);

	for (int i = 0; i < 3; i++)
		assert_true(auth_penalty_enter(p, "192.0.2.1", 1));
	assert_false(auth_penalty_enter(p, "192.0.2.1", 1));
	assert_false(auth_penalty_enter(p, "192.0.2.1", 2));
	/* Another address is not affected; the same /48 is. */
	assert_true(auth_penalty_enter(p, "192.0.2.2", 2));
	for (int i = 0; i < 3; i++)
		assert_true(auth_penalty_enter(p, "2001:db8:5::1", 2));
	assert_false(auth_penalty_enter(p, "2001:db8:5:1::1", 2));
	/* Leaving frees one slot. */
	auth_penalty_leave(p, "192.0.2.1");
	assert_true(auth_penalty_enter(p, "192.0.2.1", 3));
	assert_false(auth_penalty_enter(p, "192.0.2.1", 3));
	/* A failure neither takes nor gives a slot. */
	auth_penalty_failed(p, "192.0.2.1", 3);
	assert_false(auth_penalty_enter(p, "192.0.2.1", 3));
	/* A lower limit applies at once after a reload. */
	auth_penalty_configure(p, 2 * SEC, 15 * SEC, 1);
	assert_false(auth_penalty_enter(p, "192.0.2.2", 4));
	auth_penalty_free(&p);
}

static void test_leave_never_negative(void **state)
{
	struct auth_penalty *p = auth_penalty_new(2 * SEC, 15 * SEC, 2);

	/* Leaves without enters are ignored... */
	for (int i = 0; i < 5; i++)
		auth_penalty_leave(p, "192.0.2.1");
	/* ... so the limit is still 2, not 7. */
	assert_true(auth_penalty_enter(p, "192.0.2.1", 1));
	assert_true(auth_penalty_enter(p, "192.0.2.1", 1));
	assert_false(auth_penalty_enter(p, "192.0.2.1", 1));
	for (int i = 0; i < 5; i++)
		auth_penalty_leave(p, "192.0.2.1");
	assert_true(auth_penalty_enter(p, "192.0.2.1", 2));
	assert_true(auth_penalty_enter(p, "192.0.2.1", 2));
	assert_false(auth_penalty_enter(p, "192.0.2.1", 2));
	auth_penalty_free(&p);
}

static void test_in_flight_survives_idle_hour(void **state)
{
	struct auth_penalty *p = auth_penalty_new(2 * SEC, 15 * SEC, 1);

	/* A slot held over an hour is not swept away with its count. */
	assert_true(auth_penalty_enter(p, "192.0.2.1", 1));
	assert_true(auth_penalty_enter(p, "192.0.2.2", 2 + HOUR));
	assert_false(auth_penalty_enter(p, "192.0.2.1", 3 + HOUR));
	auth_penalty_leave(p, "192.0.2.1");
	assert_true(auth_penalty_enter(p, "192.0.2.1", 4 + HOUR));
	auth_penalty_free(&p);
}

static void test_failures_kept_while_in_flight_ends(void **state)
{
	struct auth_penalty *p = auth_penalty_new(2 * SEC, 15 * SEC, 5);

	/* The usual order: enter, fail, leave after the delay. */
	assert_true(auth_penalty_enter(p, "192.0.2.1", 1));
	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", 2), 2 * SEC);
	auth_penalty_leave(p, "192.0.2.1");
	assert_true(auth_penalty_enter(p, "192.0.2.1", 3));
	assert_int_equal(auth_penalty_failed(p, "192.0.2.1", 4), 4 * SEC);
	auth_penalty_leave(p, "192.0.2.1");
	auth_penalty_free(&p);
}

static void v6_address(char *out, size_t size, unsigned i)
{
	/* A distinct /48 per i. */
	snprintf(out, size, "2001:%x:%x::1", (i >> 16) & 0xffff, i & 0xffff);
}

static void test_bounded_under_flood(void **state)
{
	struct auth_penalty *p = auth_penalty_new(2 * SEC, 15 * SEC, 5);
	const unsigned n = 200000;
	char ip[64];

	/* 200,000 distinct /48s each fail once, one millisecond apart. */
	for (unsigned i = 0; i < n; i++) {
		v6_address(ip, sizeof(ip), i);
		assert_int_equal(auth_penalty_failed(p, ip, 1 + i), 2 * SEC);
	}
	/* The newest MAX_ENTRIES are remembered... */
	v6_address(ip, sizeof(ip), n - 1);
	assert_int_equal(auth_penalty_failed(p, ip, 1 + n), 4 * SEC);
	v6_address(ip, sizeof(ip), n - MAX_ENTRIES);
	assert_int_equal(auth_penalty_failed(p, ip, 1 + n), 4 * SEC);
	/* ... the older ones were evicted: the table holds no more. */
	v6_address(ip, sizeof(ip), n - MAX_ENTRIES - 1);
	assert_int_equal(auth_penalty_failed(p, ip, 1 + n), 2 * SEC);
	v6_address(ip, sizeof(ip), 0);
	assert_int_equal(auth_penalty_failed(p, ip, 1 + n), 2 * SEC);
	/* A well-known attacker that keeps failing is recently used and stays
	 * remembered through another flood. */
	for (unsigned i = 0; i < n; i++) {
		if (i % 1000 == 0)
			auth_penalty_failed(p, "198.51.100.66", 1 + n + i);
		v6_address(ip, sizeof(ip), n + i);
		auth_penalty_failed(p, ip, 1 + n + i);
	}
	assert_int_equal(auth_penalty_failed(p, "198.51.100.66", 1 + 2 * n), 15 * SEC);
	auth_penalty_free(&p);
}

static void test_free_null(void **state)
{
	struct auth_penalty *p = NULL;

	auth_penalty_free(&p);
	assert_null(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delay_sequence_and_cap),
		cmocka_unit_test(test_huge_cap_no_overflow),
		cmocka_unit_test(test_zero_delay_disables),
		cmocka_unit_test(test_success_resets),
		cmocka_unit_test(test_forgotten_after_an_hour),
		cmocka_unit_test(test_forgotten_by_sweep),
		cmocka_unit_test(test_ipv6_grouped_by_48),
		cmocka_unit_test(test_ipv4_by_address),
		cmocka_unit_test(test_v4_mapped_counts_as_ipv4),
		cmocka_unit_test(test_unparsable_share_one_key),
		cmocka_unit_test(test_in_flight_limit),
		cmocka_unit_test(test_leave_never_negative),
		cmocka_unit_test(test_in_flight_survives_idle_hour),
		cmocka_unit_test(test_failures_kept_while_in_flight_ends),
		cmocka_unit_test(test_bounded_under_flood),
		cmocka_unit_test(test_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
