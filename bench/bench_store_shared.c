/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench store --store URL: the shared-store part, PostgreSQL beside
 * SQLite in the same run, each measured the same way:
 *
 *  1. append rate, one message per transaction (what an agent's hook does);
 *  2. snapshot and branch latency (p50) at two history sizes: flat, since
 *     either is one row;
 *  3. bytes for a history, then with 100 branches and 100 snapshots;
 *  4. 1, 4 and 16 concurrent writers (processes), each appending to its own
 *     branch and all to one shared branch: total appends per second;
 *  5. push of an N-node branch to an empty store, then of 100 new nodes to
 *     a store that has the rest (the second should cost ~100/N of the first).
 *
 * Each PostgreSQL store is a fresh schema, cmv_bench_<pid>_<k>, in the
 * database the URL names; the schemas are dropped at the end.
 */
#include <stdlib.h>
#include "bench.h"
#ifdef CMV_WITH_POSTGRESQL
#include <libpq-fe.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
	const char *base; /* the user's URL */
	char *dir;        /* for SQLite stores */
	int k;
	char **schemas;
	size_t n_schemas;
} shared_ctx;

static void die(const char *what)
{
	const cmv_error *e = cmv_error_last();
	fprintf(stderr, "cmv-bench: %s: %s\n", what, e ? e->message : "unknown error");
	exit(1);
}

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void pg_admin(const char *base, const char *sql)
{
	PGconn *c = PQconnectdb(base);
	PGresult *r;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "cmv-bench: cannot connect to the --store database: %s", PQerrorMessage(c));
		exit(1);
	}
	PQsetNoticeProcessor(c, quiet, NULL); /* DROP ... CASCADE lists what it drops */
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "cmv-bench: %s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	PQclear(r);
	PQfinish(c);
}

/* A fresh, empty store location of a kind: "sqlite" (a folder) or "postgresql" (a schema). */
static char *fresh_store(shared_ctx *c, bool pg)
{
	char *loc = malloc(8192);
	int k = c->k++;

	if (!pg) {
		snprintf(loc, 8192, "%s/s%d", c->dir, k);
		mkdir(loc, 0777);
		snprintf(loc, 8192, "%s/s%d/.cmv", c->dir, k);
		return loc;
	}
	char schema[64], sql[256];
	snprintf(schema, sizeof(schema), "cmv_bench_%ld_%d", (long)getpid(), k);
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
	pg_admin(c->base, sql);
	c->schemas = realloc(c->schemas, (c->n_schemas + 1) * sizeof(*c->schemas));
	c->schemas[c->n_schemas++] = strdup(schema);
	snprintf(loc, 8192, "%s%soptions=-csearch_path%%3D%s", c->base, strchr(c->base, '?') ? "&" : "?", schema);
	return loc;
}

static cmv_repo *open_store(const char *loc)
{
	cmv_repo *r = NULL;
	if (cmv_repo_open(&r, loc, CMV_REPO_OPEN_CREATE) < 0)
		die("open a store");
	return r;
}

static void append_one(cmv_repo *repo, const char *branch, size_t i, const char *who)
{
	char text[160];
	cmv_block_content b;
	cmv_message m;

	memset(&b, 0, sizeof(b));
	memset(&m, 0, sizeof(m));
	snprintf(text, sizeof(text), "%s turn %zu: the build fails with an undefined reference in module %zu", who, i,
		 i % 97);
	b.type = "text";
	b.data = text;
	b.len = strlen(text);
	m.role = i % 2 ? CMV_ROLE_ASSISTANT : CMV_ROLE_USER;
	m.kind = CMV_KIND_MESSAGE;
	m.n_blocks = 1;
	m.blocks = &b;
	if (cmv_append(NULL, repo, branch, &m, 1, CMV_APPEND_CREATE) < 0)
		die("append");
}

static void grow(cmv_repo *repo, const char *branch, size_t *have, size_t target)
{
	while (*have < target) {
		size_t end = *have + 5000 < target ? *have + 5000 : target;
		if (cmv_repo_txn_begin(repo) < 0)
			die("begin");
		for (; *have < end; (*have)++)
			append_one(repo, branch, *have, "grow");
		if (cmv_repo_txn_commit(repo) < 0)
			die("commit");
	}
}

static double ref_p50_ms(cmv_repo *repo, size_t nodes, bool snapshot, size_t rounds)
{
	double *lat = calloc(rounds, sizeof(double)), p;
	cmv_id tip;

	if (cmv_resolve(&tip, repo, "main") < 0)
		die("resolve");
	for (size_t i = 0; i < rounds; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s-%zu-%zu", snapshot ? "snap" : "br", nodes, i);
		double t0 = bench_now();
		if ((snapshot ? cmv_snapshot_create(repo, name, &tip, "main", NULL) : cmv_branch_create(repo, name, &tip, "main")) < 0)
			die("ref");
		lat[i] = bench_now() - t0;
	}
	p = bench_percentile(lat, rounds, 0.5) * 1e3;
	free(lat);
	return p;
}

/* W processes, each `per` appends to its own branch and `per` to "shared": appends/s overall. */
static double writers(const char *loc, int w, size_t per)
{
	double t0 = bench_now();
	pid_t pids[64];

	fflush(stdout); /* a child must not print the parent's buffer again */
	for (int i = 0; i < w; i++) {
		pid_t p = fork();
		if (p == 0) {
			cmv_repo *repo = open_store(loc);
			char own[32], who[32];
			snprintf(own, sizeof(own), "writer-%d", i);
			snprintf(who, sizeof(who), "writer %d", i);
			for (size_t j = 0; j < per; j++) {
				append_one(repo, own, j, who);
				append_one(repo, "shared", j, who);
			}
			cmv_repo_free(repo);
			_exit(0);
		}
		pids[i] = p;
	}
	int bad = 0;
	for (int i = 0; i < w; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	if (bad) {
		fprintf(stderr, "cmv-bench: %d writers failed\n", bad);
		exit(1);
	}
	return (double)(2 * per * (size_t)w) / (bench_now() - t0);
}

static double push_s(cmv_repo *src, cmv_repo *dst, uint64_t *nodes)
{
	const char *refs[] = { "main" };
	cmv_sync_stats st;
	double t0 = bench_now();

	if (cmv_sync(&st, dst, src, refs, 1, NULL) < 0)
		die("push");
	*nodes = st.nodes;
	return bench_now() - t0;
}

static int count_hit(const cmv_search_hit *hit, void *payload)
{
	(void)hit;
	(*(size_t *)payload)++;
	return 0;
}

/* `cmv log -n 20`: the walk to the tip's last 20 entries, read. */
static void log_tail(cmv_repo *repo, const cmv_id *tip, size_t n)
{
	cmv_walk *w = NULL;
	const cmv_node *node;
	size_t len;

	if (cmv_walk_new(&w, repo, tip) < 0)
		die("walk");
	len = cmv_walk_length(w);
	cmv_walk_seek(w, len > n ? len - n : 0);
	while (cmv_walk_next(&node, w) == 0)
		;
	cmv_walk_free(w);
}

enum { OP_RTT, OP_APPEND, OP_SNAPSHOT, OP_BRANCH, OP_LOG20, OP_RESOLVE, OP_INDEX_CHECK, OP_SEARCH_RARE, OP_SEARCH_COMMON, OP_WALK, OP__N };
static const char *const op_names[OP__N] = {
	"one round trip (SELECT 1)", "append (own txn)", "snapshot", "branch", "log -n 20", "resolve main~50", "index check, none pending", "search, rare word",
	"search, word in all", "walk all (materialize's reads)",
};

/*
 * p50 of each operation at this history size, in ms (the walk: one round,
 * its total). `rtt`, a second connection to the PostgreSQL store (NULL for
 * SQLite), times a bare round trip: the unit the others are counted in,
 * and what the machine's load does to them.
 */
static void ops_at(double *p50, cmv_repo *repo, PGconn *rtt, size_t *have, size_t rounds)
{
	double *lat = calloc(rounds, sizeof(double));
	size_t nodes = *have;

	if (cmv_repo_index(NULL, repo) < 0) /* what a search would index first is not its cost */
		die("index");
	for (int op = 0; op < OP__N; op++) {
		/* the walks read the whole chain (before, log -n 20 did too): fewer rounds */
		size_t r = op == OP_WALK ? 1 : op == OP_LOG20 ? (rounds < 10 ? rounds : 10) : rounds;
		if (op == OP_RTT && !rtt) {
			p50[op] = 0;
			continue;
		}
		for (size_t i = 0; i < r; i++) {
			char name[64], q[32];
			cmv_id tip;
			size_t hits = 0;
			if (cmv_resolve(&tip, repo, "main") < 0)
				die("resolve");
			double t0 = bench_now();
			switch (op) {
			case OP_RTT:
				PQclear(PQexec(rtt, "SELECT 1"));
				break;
			case OP_APPEND:
				append_one(repo, "main", (*have)++, "agent");
				break;
			case OP_SNAPSHOT:
			case OP_BRANCH:
				snprintf(name, sizeof(name), "%s-%zu-%zu", op == OP_SNAPSHOT ? "osnap" : "obr", nodes, i);
				if ((op == OP_SNAPSHOT ? cmv_snapshot_create(repo, name, &tip, "main", NULL)
						       : cmv_branch_create(repo, name, &tip, "main")) < 0)
					die("ref");
				break;
			case OP_LOG20:
				log_tail(repo, &tip, 20);
				break;
			case OP_RESOLVE:
				if (cmv_resolve(&tip, repo, "main~50") < 0)
					die("resolve");
				break;
			case OP_INDEX_CHECK:
				/* what each search asks first (the appends above left some: the first round indexes them) */
				if (cmv_repo_index(NULL, repo) < 0)
					die("index");
				break;
			case OP_SEARCH_RARE:
				/* a turn number: in one or two texts */
				snprintf(q, sizeof(q), "%zu", (nodes / 3 + i * 7) % nodes);
				if (cmv_search(repo, q, 20, 0, count_hit, &hits) < 0)
					die("search");
				break;
			case OP_SEARCH_COMMON:
				if (cmv_search(repo, "undefined reference", 20, 0, count_hit, &hits) < 0)
					die("search");
				break;
			case OP_WALK:
				log_tail(repo, &tip, SIZE_MAX);
				break;
			}
			lat[i] = bench_now() - t0;
		}
		p50[op] = bench_percentile(lat, r, 0.5) * 1e3;
	}
	free(lat);
}

/*
 * --ops: each store operation's p50 at two history sizes, SQLite and
 * PostgreSQL in the same run: what grows with the history on one backend
 * and not the other.
 */
/* The run's schemas dropped and its directory removed. */
static void ctx_dispose(shared_ctx *c, const char *url)
{
	for (size_t i = 0; i < c->n_schemas; i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", c->schemas[i]);
		pg_admin(url, sql);
		free(c->schemas[i]);
	}
	free(c->schemas);
	bench_rmdir(c->dir);
	free(c->dir);
}

static cJSON *ops_latency(shared_ctx *c, bool quick, bool json)
{
	size_t sizes[2] = { quick ? 1000 : 10000, quick ? 10000 : 100000 }, rounds = quick ? 20 : 50;
	double p50[2][2][OP__N];
	cJSON *out = cJSON_CreateArray();

	for (int pg = 0; pg < 2; pg++) {
		char *loc = fresh_store(c, pg);
		cmv_repo *repo = open_store(loc);
		PGconn *rtt = pg ? PQconnectdb(loc) : NULL;
		size_t have = 0;
		if (rtt && PQstatus(rtt) != CONNECTION_OK) {
			fprintf(stderr, "cmv-bench: cannot connect: %s", PQerrorMessage(rtt));
			exit(1);
		}
		for (int k = 0; k < 2; k++) {
			grow(repo, "main", &have, sizes[k]);
			ops_at(p50[pg][k], repo, rtt, &have, rounds);
		}
		if (rtt)
			PQfinish(rtt);
		cmv_repo_free(repo);
		free(loc);
	}
	if (!json) {
		printf("\nper-operation p50 by history size (ms; %zu rounds each, log 10, the walk 1), same run\n", rounds);
		printf("  %-31s %10s %10s %10s %10s %9s %9s\n", "", "sqlite", "sqlite", "pg", "pg", "pg/sqlite", "pg/sqlite");
		printf("  %-31s %10zu %10zu %10zu %10zu %9zu %9zu\n", "operation \\ nodes", sizes[0], sizes[1], sizes[0],
		       sizes[1], sizes[0], sizes[1]);
	}
	for (int op = 0; op < OP__N; op++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "op", op_names[op]);
		for (int k = 0; k < 2; k++) {
			cJSON *r = cJSON_CreateObject();
			cJSON_AddNumberToObject(r, "nodes", (double)sizes[k]);
			cJSON_AddNumberToObject(r, "sqlite_p50_ms", p50[0][k][op]);
			cJSON_AddNumberToObject(r, "postgresql_p50_ms", p50[1][k][op]);
			cJSON_AddItemToObject(o, k ? "large" : "small", r);
		}
		cJSON_AddItemToArray(out, o);
		if (!json && op == OP_RTT)
			printf("  %-31s %10s %10s %10.3f %10.3f %9s %9s\n", op_names[op], "-", "-", p50[1][0][op], p50[1][1][op],
			       "-", "-");
		else if (!json)
			printf("  %-31s %10.3f %10.3f %10.3f %10.3f %9.1f %9.1f\n", op_names[op], p50[0][0][op], p50[0][1][op],
			       p50[1][0][op], p50[1][1][op], p50[1][0][op] / p50[0][0][op], p50[1][1][op] / p50[0][1][op]);
	}
	return out;
}

cJSON *bench_store_ops(const char *url, bool quick, bool json)
{
	shared_ctx c = { .base = url, .dir = bench_tmpdir() };
	cJSON *out = ops_latency(&c, quick, json);

	ctx_dispose(&c, url);
	return out;
}

cJSON *bench_store_shared(const char *url, bool quick, bool json)
{
	shared_ctx c = { .base = url, .dir = bench_tmpdir() };
	size_t appends = quick ? 1000 : 5000, rounds = quick ? 50 : 200;
	size_t sizes[2] = { 1000, quick ? 20000 : 100000 };
	size_t per = quick ? 100 : 250, push_n = quick ? 20000 : 100000;
	const int ws[3] = { 1, 4, 16 };
	cJSON *out = cJSON_CreateObject();

	if (!json)
		printf("\nshared store: PostgreSQL (%s) beside SQLite, same run\n", "--store");
	for (int pg = 0; pg < 2; pg++) {
		const char *kind = pg ? "postgresql" : "sqlite";
		cJSON *o = cJSON_AddObjectToObject(out, kind);
		char *loc = fresh_store(&c, pg);
		cmv_repo *repo = open_store(loc);
		size_t have = 0;

		/* 1. appends, one transaction each */
		double t0 = bench_now();
		for (size_t i = 0; i < appends; i++)
			append_one(repo, "main", i, "agent");
		double rate = (double)appends / (bench_now() - t0);
		have = appends;
		/* 2. ref latency at two sizes */
		double lat[2][2];
		for (int k = 0; k < 2; k++) {
			grow(repo, "main", &have, sizes[k] > have ? sizes[k] : have);
			lat[k][0] = ref_p50_ms(repo, sizes[k], true, rounds);
			lat[k][1] = ref_p50_ms(repo, sizes[k], false, rounds);
		}
		cmv_repo_free(repo);
		/* 3. bytes: a history, then 100 branches and 100 snapshots */
		char *loc3 = fresh_store(&c, pg);
		cmv_store_stats s1, s2;
		size_t h3 = 0;
		repo = open_store(loc3);
		grow(repo, "main", &h3, 10000);
		if (cmv_repo_stats(&s1, repo) < 0)
			die("stats");
		cmv_id tip;
		if (cmv_resolve(&tip, repo, "main") < 0)
			die("resolve");
		for (int i = 0; i < 100; i++) {
			char name[32];
			snprintf(name, sizeof(name), "b-%d", i);
			if (cmv_branch_create(repo, name, &tip, "main") < 0)
				die("branch");
			snprintf(name, sizeof(name), "s-%d", i);
			if (cmv_snapshot_create(repo, name, &tip, "main", NULL) < 0)
				die("snapshot");
		}
		if (cmv_repo_stats(&s2, repo) < 0)
			die("stats");
		cmv_repo_free(repo);
		/* 4. concurrent writers */
		double wrate[3];
		for (int k = 0; k < 3; k++) {
			char *lw = fresh_store(&c, pg);
			cmv_repo_free(open_store(lw)); /* created before the writers race to it */
			wrate[k] = writers(lw, ws[k], per);
			free(lw);
		}
		/* 5. push: N nodes to an empty store, then 100 more */
		char *lsrc = fresh_store(&c, false), *ldst = fresh_store(&c, pg);
		cmv_repo *src = open_store(lsrc), *dst = open_store(ldst);
		size_t hs = 0;
		uint64_t n1, n2;
		grow(src, "main", &hs, push_n);
		double p1 = push_s(src, dst, &n1);
		grow(src, "main", &hs, push_n + 100);
		double p2 = push_s(src, dst, &n2);
		cmv_repo_free(src);
		cmv_repo_free(dst);

		cJSON_AddNumberToObject(o, "appends_per_s", rate);
		cJSON *l = cJSON_AddArrayToObject(o, "ref_latency_ms");
		for (int k = 0; k < 2; k++) {
			cJSON *r = cJSON_CreateObject();
			cJSON_AddNumberToObject(r, "nodes", (double)sizes[k]);
			cJSON_AddNumberToObject(r, "snapshot_p50", lat[k][0]);
			cJSON_AddNumberToObject(r, "branch_p50", lat[k][1]);
			cJSON_AddItemToArray(l, r);
		}
		cJSON_AddNumberToObject(o, "bytes_10k_nodes", (double)s1.file_bytes);
		cJSON_AddNumberToObject(o, "bytes_with_100_branches_100_snapshots", (double)s2.file_bytes);
		cJSON *wj = cJSON_AddArrayToObject(o, "writers");
		for (int k = 0; k < 3; k++) {
			cJSON *r = cJSON_CreateObject();
			cJSON_AddNumberToObject(r, "processes", ws[k]);
			cJSON_AddNumberToObject(r, "appends_per_s", wrate[k]);
			cJSON_AddItemToArray(wj, r);
		}
		cJSON_AddNumberToObject(o, "push_nodes", (double)n1);
		cJSON_AddNumberToObject(o, "push_s", p1);
		cJSON_AddNumberToObject(o, "push_100_nodes", (double)n2);
		cJSON_AddNumberToObject(o, "push_100_s", p2);
		if (!json) {
			printf("  %s:\n", kind);
			printf("    append, one transaction each: %.0f appends/s\n", rate);
			for (int k = 0; k < 2; k++)
				printf("    at %7zu nodes: snapshot p50 %.3f ms, branch p50 %.3f ms\n", sizes[k], lat[k][0], lat[k][1]);
			printf("    bytes: 10k nodes %.2f MB; with 100 branches + 100 snapshots %.2f MB (+%.1f KB)\n",
			       (double)s1.file_bytes / 1e6, (double)s2.file_bytes / 1e6,
			       ((double)s2.file_bytes - (double)s1.file_bytes) / 1e3);
			printf("    concurrent writers (own branch + one shared branch):");
			for (int k = 0; k < 3; k++)
				printf(" %d: %.0f/s%s", ws[k], wrate[k], k < 2 ? "," : "\n");
			printf("    push from SQLite: %llu nodes to an empty store %.2f s; 100 new nodes %.3f s (%llu sent, %.4fx)\n",
			       (unsigned long long)n1, p1, p2, (unsigned long long)n2, p2 / p1);
		}
		free(loc);
		free(loc3);
		free(lsrc);
		free(ldst);
	}
	ctx_dispose(&c, url);
	return out;
}
static shared_ctx fresh_ctx;

static void drop_fresh(void)
{
	for (size_t i = 0; i < fresh_ctx.n_schemas; i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", fresh_ctx.schemas[i]);
		pg_admin(fresh_ctx.base, sql);
		free(fresh_ctx.schemas[i]);
	}
	free(fresh_ctx.schemas);
}

char *bench_pg_fresh(const char *url)
{
	if (!fresh_ctx.base) {
		fresh_ctx.base = url;
		fresh_ctx.k = 1000;
		atexit(drop_fresh);
	}
	return fresh_store(&fresh_ctx, true);
}

#else
char *bench_pg_fresh(const char *url)
{
	(void)url;
	fprintf(stderr, "cmv-bench: built without PostgreSQL: --store needs -DCMV_WITH_POSTGRESQL=ON\n");
	exit(2);
}

cJSON *bench_store_ops(const char *url, bool quick, bool json)
{
	return bench_store_shared(url, quick, json);
}

cJSON *bench_store_shared(const char *url, bool quick, bool json)
{
	(void)url;
	(void)quick;
	(void)json;
	fprintf(stderr, "cmv-bench: built without PostgreSQL: --store needs -DCMV_WITH_POSTGRESQL=ON\n");
	exit(2);
}
#endif
