/*
 * penalty.c — the per-address failure penalty and in-flight count that the
 * auth client applies to every login attempt (DESIGN.md, Auth).
 *
 * Addresses are grouped into keys: an IPv4 address is its own key (also when
 * written as an IPv4-mapped IPv6 address, ::ffff:a.b.c.d), an IPv6 address
 * counts by its /48, which is what one customer or one attacker usually
 * holds. "unix" and anything else inet_pton does not parse share one key.
 *
 * The n-th failure of a key is delayed delay_ms * 2^(n-1), at most
 * delay_max_ms (2s, 4s, 8s, 15s, 15s ... with the defaults); delay_ms 0
 * turns delays off. Failures older than an hour are forgotten, and a
 * success clears them. max_concurrent 0 means no limit on attempts in
 * flight (the configuration never gives 0).
 *
 * Memory is bounded whatever clients do: an entry exists only while its
 * key has failures or attempts in flight, entries untouched for an hour are
 * swept, and at most PENALTY_MAX_ENTRIES exist: beyond that the least
 * recently used one is evicted, even with attempts in flight (its leave is
 * then ignored), so a flood of addresses costs the oldest entries their
 * penalty, never unbounded memory. Lookups go through a hash table keyed
 * with a random seed, so clients cannot aim for one long chain.
 *
 * Times are the caller's monotonic milliseconds (uv_now); nothing here
 * reads a clock or blocks.
 */
#include "auth/auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define PENALTY_MAX_ENTRIES 65536
#define PENALTY_MIN_BUCKETS 64
#define PENALTY_FORGET_MS (60 * 60 * 1000)
/* Failures counted at most: the delay reaches any cap long before. */
#define PENALTY_MAX_FAILURES 64
/* Entries looked at by one sweep, so no single call does much work. */
#define PENALTY_SWEEP_STEPS 16

enum penalty_kind {
	PENALTY_KEY_OTHER,
	PENALTY_KEY_IPV4,
	PENALTY_KEY_IPV6, /* the first 48 bits */
};

struct penalty_key {
	enum penalty_kind kind;
	uint8_t addr[6];
};

struct penalty_entry {
	struct penalty_entry *hnext;      /* hash chain */
	struct penalty_entry *prev, *next; /* LRU list, most recent first */
	struct penalty_key key;
	uint32_t failures;
	uint32_t inflight;
	uint64_t last_failure_ms;
	uint64_t touched_ms;
};

struct auth_penalty {
	uint64_t delay_ms, delay_max_ms;
	uint32_t max_concurrent;
	uint64_t seed[2];
	struct penalty_entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
	struct penalty_entry *head, *tail;
};

/* ------------------------------------------------------------------ keys */

static void make_key(const char *ip, struct penalty_key *key_r)
{
	unsigned char a[sizeof(struct in6_addr)];
	char buf[INET6_ADDRSTRLEN];
	size_t len;

	memset(key_r, 0, sizeof(*key_r));
	key_r->kind = PENALTY_KEY_OTHER;
	if (ip == NULL)
		return;
	if (inet_pton(AF_INET, ip, a) == 1) {
		key_r->kind = PENALTY_KEY_IPV4;
		memcpy(key_r->addr, a, 4);
		return;
	}
	/* A link-local address may carry a zone ("fe80::1%eth0"). */
	len = strcspn(ip, "%");
	if (len >= sizeof(buf))
		return;
	memcpy(buf, ip, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, a) != 1)
		return;
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
		key_r->kind = PENALTY_KEY_IPV4;
		memcpy(key_r->addr, a + 12, 4);
	} else {
		key_r->kind = PENALTY_KEY_IPV6;
		memcpy(key_r->addr, a, 6);
	}
}

static bool key_equal(const struct penalty_key *a, const struct penalty_key *b)
{
	return a->kind == b->kind && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* splitmix64's finalizer: every input bit affects every output bit. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static size_t key_hash(const struct auth_penalty *p, const struct penalty_key *key)
{
	uint64_t w = (uint64_t)key->kind;

	for (size_t i = 0; i < sizeof(key->addr); i++)
		w = w << 8 | key->addr[i];
	return (size_t)(mix64(mix64(w ^ p->seed[0]) ^ p->seed[1]) & (p->nbuckets - 1));
}

/* ----------------------------------------------------------------- table */

static void lru_unlink(struct auth_penalty *p, struct penalty_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		p->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		p->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_head(struct auth_penalty *p, struct penalty_entry *e)
{
	e->next = p->head;
	e->prev = NULL;
	if (p->head != NULL)
		p->head->prev = e;
	p->head = e;
	if (p->tail == NULL)
		p->tail = e;
}

static void touch(struct auth_penalty *p, struct penalty_entry *e, uint64_t now_ms)
{
	e->touched_ms = now_ms;
	if (p->head != e) {
		lru_unlink(p, e);
		lru_push_head(p, e);
	}
}

static struct penalty_entry *lookup(const struct auth_penalty *p, const struct penalty_key *key)
{
	struct penalty_entry *e = p->buckets[key_hash(p, key)];

	while (e != NULL && !key_equal(&e->key, key))
		e = e->hnext;
	return e;
}

static void remove_entry(struct auth_penalty *p, struct penalty_entry *e)
{
	struct penalty_entry **pp = &p->buckets[key_hash(p, &e->key)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(p, e);
	p->count--;
	free(e);
}

static void grow(struct auth_penalty *p)
{
	struct penalty_entry **old = p->buckets;
	size_t old_n = p->nbuckets;

	p->nbuckets *= 2;
	p->buckets = xcalloc(p->nbuckets, sizeof(*p->buckets));
	for (size_t i = 0; i < old_n; i++) {
		struct penalty_entry *e = old[i], *next;

		for (; e != NULL; e = next) {
			size_t h = key_hash(p, &e->key);

			next = e->hnext;
			e->hnext = p->buckets[h];
			p->buckets[h] = e;
		}
	}
	free(old);
}

static struct penalty_entry *get(struct auth_penalty *p, const struct penalty_key *key,
				 uint64_t now_ms)
{
	struct penalty_entry *e = lookup(p, key);
	size_t h;

	if (e != NULL)
		return e;
	if (p->count >= PENALTY_MAX_ENTRIES)
		remove_entry(p, p->tail);
	if (p->count >= p->nbuckets && p->nbuckets < PENALTY_MAX_ENTRIES)
		grow(p);
	e = xcalloc(1, sizeof(*e));
	e->key = *key;
	e->touched_ms = now_ms;
	h = key_hash(p, key);
	e->hnext = p->buckets[h];
	p->buckets[h] = e;
	lru_push_head(p, e);
	p->count++;
	return e;
}

static bool older_than_forget(uint64_t then_ms, uint64_t now_ms)
{
	return now_ms >= then_ms && now_ms - then_ms >= PENALTY_FORGET_MS;
}

/* Drop entries untouched for an hour from the old end of the LRU list. An
 * old entry with attempts in flight goes back to the front instead. */
static void sweep(struct auth_penalty *p, uint64_t now_ms)
{
	for (int i = 0; i < PENALTY_SWEEP_STEPS && p->tail != NULL; i++) {
		struct penalty_entry *e = p->tail;

		if (!older_than_forget(e->touched_ms, now_ms))
			break;
		if (e->inflight > 0)
			touch(p, e, now_ms);
		else
			remove_entry(p, e);
	}
}

/* An entry with nothing to remember is not kept. */
static void drop_if_idle(struct auth_penalty *p, struct penalty_entry *e)
{
	if (e->inflight == 0 && e->failures == 0)
		remove_entry(p, e);
}

/* ------------------------------------------------------------------- API */

struct auth_penalty *auth_penalty_new(uint64_t delay_ms, uint64_t delay_max_ms,
				      uint32_t max_concurrent)
{
	struct auth_penalty *p = xcalloc(1, sizeof(*p));

	auth_penalty_configure(p, delay_ms, delay_max_ms, max_concurrent);
	/* Only the spread of chains depends on the seed: without getrandom
	 * the time is a weaker but working fallback. */
	if (getrandom(p->seed, sizeof(p->seed), GRND_NONBLOCK) != (ssize_t)sizeof(p->seed)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		p->seed[0] = mix64((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)p);
		p->seed[1] = mix64((uint64_t)ts.tv_sec ^ p->seed[0]);
	}
	p->nbuckets = PENALTY_MIN_BUCKETS;
	p->buckets = xcalloc(p->nbuckets, sizeof(*p->buckets));
	return p;
}

void auth_penalty_free(struct auth_penalty **pp)
{
	struct auth_penalty *p = *pp;

	if (p == NULL)
		return;
	while (p->head != NULL) {
		struct penalty_entry *e = p->head;

		p->head = e->next;
		free(e);
	}
	free(p->buckets);
	free(p);
	*pp = NULL;
}

void auth_penalty_configure(struct auth_penalty *p, uint64_t delay_ms, uint64_t delay_max_ms,
			    uint32_t max_concurrent)
{
	p->delay_ms = delay_ms;
	p->delay_max_ms = delay_max_ms;
	p->max_concurrent = max_concurrent;
}

bool auth_penalty_enter(struct auth_penalty *p, const char *ip, uint64_t now_ms)
{
	struct penalty_key key;
	struct penalty_entry *e;

	sweep(p, now_ms);
	make_key(ip, &key);
	e = get(p, &key, now_ms);
	touch(p, e, now_ms);
	if (p->max_concurrent > 0 && e->inflight >= p->max_concurrent)
		return false;
	e->inflight++;
	return true;
}

void auth_penalty_leave(struct auth_penalty *p, const char *ip)
{
	struct penalty_key key;
	struct penalty_entry *e;

	make_key(ip, &key);
	e = lookup(p, &key);
	/* Not there: evicted while in flight, or a leave without enter. */
	if (e == NULL || e->inflight == 0)
		return;
	e->inflight--;
	drop_if_idle(p, e);
}

uint64_t auth_penalty_failed(struct auth_penalty *p, const char *ip, uint64_t now_ms)
{
	struct penalty_key key;
	struct penalty_entry *e;
	uint64_t delay;

	sweep(p, now_ms);
	make_key(ip, &key);
	e = get(p, &key, now_ms);
	touch(p, e, now_ms);
	if (e->failures > 0 && older_than_forget(e->last_failure_ms, now_ms))
		e->failures = 0;
	if (e->failures < PENALTY_MAX_FAILURES)
		e->failures++;
	e->last_failure_ms = now_ms;

	delay = p->delay_ms;
	for (uint32_t i = 1; i < e->failures && delay < p->delay_max_ms && delay <= UINT64_MAX / 2;
	     i++)
		delay *= 2;
	return delay < p->delay_max_ms ? delay : p->delay_max_ms;
}

void auth_penalty_succeeded(struct auth_penalty *p, const char *ip)
{
	struct penalty_key key;
	struct penalty_entry *e;

	make_key(ip, &key);
	e = lookup(p, &key);
	if (e == NULL)
		return;
	e->failures = 0;
	drop_if_idle(p, e);
}
