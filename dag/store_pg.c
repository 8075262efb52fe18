/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL store backend: one store per database (its search_path's
 * first schema), shared by any number of processes on any number of hosts.
 *
 * Design notes
 *  - The tables are SQLite's (docs/store.md): blobs, nodes with their block
 *    list in the row, blob_users, edges, refs, config, tokcache,
 *    branch_state, usage_segments. Ids are 16-byte bytea keys; results come
 *    back in binary, so no id or blob is hex-encoded on the wire.
 *  - A node and its blob_users and edges rows are one statement (CTEs):
 *    one round trip per node, which is what bounds an append's rate.
 *  - Writers run at READ COMMITTED. A ref read inside a write transaction
 *    takes the row lock (SELECT ... FOR UPDATE), so two appenders to one
 *    branch queue on it, as SQLite's writers queue on its lock, and the
 *    compare-and-swap that follows cannot lose; writers to different
 *    branches do not wait for each other. Every write transaction holds a
 *    shared advisory lock; gc (the only caller listing refs inside a write
 *    transaction) takes it exclusively, so no append races its sweep.
 *  - Retries. PostgreSQL aborts a transaction on a deadlock (two importers
 *    inserting the same blobs in other orders) or a serialization failure.
 *    Every statement of a write transaction is logged with a digest of what
 *    it returned; on such a failure the transaction is rolled back, begun
 *    again, and the log replayed. The replay is accepted only if every
 *    statement returns what it returned before, so the caller's decisions
 *    still hold; otherwise the call fails with CMV_EMODIFIED and nothing
 *    was written. Either way nothing is written twice: the aborted attempt
 *    left nothing. A transaction larger than the log cap is not replayed.
 *  - Search: a tsvector per blob in a GIN index, with a text search
 *    configuration of our own (Snowball English stems, no stop words, as
 *    FTS5's porter tokenizer keeps every word). Text is cut into words the
 *    way FTS5's unicode61 tokenizer cuts it (ASCII punctuation separates)
 *    before PostgreSQL's parser sees it, so "zlib_inflate" or a path is
 *    words, not one host or file token. Ranking is BM25 computed in SQL
 *    with FTS5's constants (k1 1.2, b 0.75, idf floor 1e-6): term
 *    frequencies from the tsvector's positions, document lengths kept per
 *    blob, N and the total length in one row (fts_stats). FTS5 query syntax
 *    (phrases, AND, OR, NOT, parentheses, prefix*, NEAR of two words) is
 *    translated to tsquery.
 *  - Indexing is deferred as in SQLite, but pending blobs are found by a
 *    partial index (indexed = 2), not a watermark: sequence values are not
 *    committed in order when many hosts write.
 *
 * Invariants
 *  1. cmv_schema.version is the schema version; migrations run forward only,
 *     under an exclusive advisory lock, in the transaction that bumps it.
 *  2. blobs.indexed: 0 never indexed, 2 pending, 1 exactly when tsv is set;
 *     fts_stats holds the count and total length of the indexed blobs.
 *  3. A node row never exists without its blob_users and edges rows.
 *  4. Nothing the backend reports holds the URL's password.
 */
#include "repo.h"

#ifndef CMV_WITH_POSTGRESQL

int cmv_dag__pg_explain(cmv_buf *plan, cmv_store_backend *b, const char *what, const char *query, bool generic)
{
	(void)plan;
	(void)query;
	(void)generic;
	return cmv_error__set(CMV_EINVALID, "no plan to explain for '%s' on a %s store", what, b->name);
}

int cmv_store_pg_open(cmv_store_backend **out, const char *url, unsigned int flags)
{
	(void)url;
	(void)flags;
	*out = NULL;
	return cmv_error__set(CMV_EUNSUPPORTED,
			      "this cmv was built without PostgreSQL (configure with -DCMV_WITH_POSTGRESQL=ON)");
}

#else

#include <endian.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <xxhash.h>

#define PG_LOCK_KEY "7130486" /* "cmv" as a number: the store's advisory lock */
#define PG_MAX_PARAMS 12
#define PG_MAX_RETRIES 5
#define PG_LOG_CAP ((size_t)256 << 20)
#define PG_INDEX_BATCH 500
#define PG_REANALYZE_AFTER 1000

static const char *const migrations[] = {
	/* version 1 */
	"CREATE TEXT SEARCH DICTIONARY cmv_stem (TEMPLATE = snowball, LANGUAGE = english);"
	"CREATE TEXT SEARCH CONFIGURATION cmv (COPY = simple);"
	"ALTER TEXT SEARCH CONFIGURATION cmv ALTER MAPPING FOR asciiword, word, numword,"
	" asciihword, hword, numhword, hword_asciipart, hword_part, hword_numpart WITH cmv_stem;"
	"CREATE TABLE blobs(rid bigserial PRIMARY KEY, id bytea NOT NULL UNIQUE,"
	" size bigint NOT NULL, indexed smallint NOT NULL DEFAULT 0, data bytea NOT NULL,"
	" tsv tsvector, dl integer NOT NULL DEFAULT 0);"
	"CREATE INDEX blobs_pending ON blobs(rid) WHERE indexed = 2;"
	"CREATE INDEX blobs_fts ON blobs USING gin(tsv);"
	"CREATE TABLE nodes(rid bigserial PRIMARY KEY, id bytea NOT NULL UNIQUE, parent bytea,"
	" role smallint NOT NULL, kind smallint NOT NULL, depth bigint NOT NULL, meta bytea,"
	" blocks bytea NOT NULL, n_edges integer NOT NULL DEFAULT 0);"
	"CREATE TABLE blob_users(blob bytea NOT NULL, node bigint NOT NULL, seq integer NOT NULL,"
	" PRIMARY KEY(blob, node, seq));"
	"CREATE TABLE edges(node bigint NOT NULL, kind smallint NOT NULL, seq integer NOT NULL,"
	" target bytea NOT NULL, PRIMARY KEY(node, kind, seq));"
	"CREATE INDEX edges_target ON edges(target);"
	"CREATE TABLE refs(name text PRIMARY KEY, type smallint NOT NULL, target bytea,"
	" description text, tags text, created bigint NOT NULL, updated bigint NOT NULL,"
	" from_ref text, seq bigserial);"
	"CREATE TABLE config(key text PRIMARY KEY, value text NOT NULL);"
	"CREATE TABLE tokcache(blob bytea NOT NULL, tokenizer text NOT NULL, count bigint NOT NULL,"
	" PRIMARY KEY(blob, tokenizer));"
	"CREATE TABLE branch_state(branch text NOT NULL, key text NOT NULL, value bytea NOT NULL,"
	" PRIMARY KEY(branch, key));"
	"CREATE TABLE usage_segments(rid bigserial PRIMARY KEY, branch text NOT NULL,"
	" signature text NOT NULL, start_node bytea, start_turn bigint NOT NULL,"
	" started bigint NOT NULL, calls bigint NOT NULL DEFAULT 0,"
	" input_tokens bigint NOT NULL DEFAULT 0, output_tokens bigint NOT NULL DEFAULT 0,"
	" cache_read_tokens bigint NOT NULL DEFAULT 0, cache_write_tokens bigint NOT NULL DEFAULT 0);"
	"CREATE INDEX usage_branch ON usage_segments(branch, rid);"
	"CREATE TABLE fts_stats(one boolean PRIMARY KEY DEFAULT true CHECK (one),"
	" n bigint NOT NULL, total_dl bigint NOT NULL);"
	"INSERT INTO fts_stats(n, total_dl) VALUES(0, 0);",
	/*
	 * version 2: no GIN pending list. With fastupdate (the default) new
	 * entries wait in a list that every search reads whole, and that only
	 * a vacuum or 4 MB of them merges: until then the planner, charging for
	 * that list, scanned the table for a word in one text (6 to 12 ms at
	 * 10k texts, 0.1 to 0.5 ms from the index; docs/store.md). Indexing is deferred,
	 * off the append path, so its inserts can go straight into the tree.
	 */
	"ALTER INDEX blobs_fts SET (fastupdate = off);"
	"SELECT gin_clean_pending_list('blobs_fts'::regclass);",
};

enum stmt_id {
	S_BLOB_INS, S_BLOB_REINDEX, S_BLOB_GET, S_BLOB_EXISTS,
	S_NODE_INS, S_NODE_GET, S_EDGES_GET, S_NODE_PARENT, S_NODE_DEL, S_BLOB_DEL,
	S_REF_GET, S_REF_GET_LOCK, S_REF_INS, S_REF_UPD, S_REF_UPD_CAS, S_REF_DEL, S_REF_ALL,
	S_LOCK_EXCL,
	S_CFG_GET, S_CFG_SET, S_CFG_DEL,
	S_PREFIX_BLOB, S_PREFIX_NODE, S_ALL_BLOBS, S_ALL_NODES,
	S_PENDING, S_INDEX_BATCH, S_BEHIND, S_SEARCH, S_SEARCH_COUNT, S_BLOB_USERS,
	S_TOK_GET, S_TOK_PUT,
	S_STATE_GET, S_STATE_SET, S_STATE_DEL, S_STATE_DROP, S_USAGE_DROP,
	S_USAGE_INS, S_USAGE_ADD, S_USAGE_ALL,
	S_STATS, S_CHECK,
	S__COUNT
};

static const char *const stmt_sql[S__COUNT] = {
	[S_BLOB_INS] = "INSERT INTO blobs(id, size, indexed, data) VALUES($1::bytea, $2::bigint,"
		       " $3::smallint, $4::bytea) ON CONFLICT(id) DO NOTHING",
	/* bytes first stored as an image, now also text: index them after all */
	[S_BLOB_REINDEX] = "UPDATE blobs SET indexed = 2 WHERE id = $1::bytea AND indexed = 0",
	[S_BLOB_GET] = "SELECT data FROM blobs WHERE id = $1::bytea",
	[S_BLOB_EXISTS] = "SELECT 1 FROM blobs WHERE id = $1::bytea",
	/*
	 * One round trip: the node, then (only if it is new) its blob users
	 * and edges, from comma-separated lists ("hex" and "kind:seq:hex").
	 */
	[S_NODE_INS] = "WITH n AS (INSERT INTO nodes(id, parent, role, kind, depth, meta, blocks, n_edges)"
		       " VALUES($1::bytea, $2::bytea, $3::smallint, $4::smallint, $5::bigint, $6::bytea,"
		       " $7::bytea, $8::integer) ON CONFLICT(id) DO NOTHING RETURNING rid),"
		       " u AS (INSERT INTO blob_users(blob, node, seq) SELECT decode(x, 'hex'), n.rid,"
		       " (o - 1)::integer FROM n, unnest(string_to_array($9::text, ',')) WITH ORDINALITY AS t(x, o)"
		       " RETURNING 1),"
		       " e AS (INSERT INTO edges(node, kind, seq, target) SELECT n.rid,"
		       " split_part(x, ':', 1)::smallint, split_part(x, ':', 2)::integer,"
		       " decode(split_part(x, ':', 3), 'hex') FROM n, unnest(string_to_array($10::text, ',')) AS x"
		       " RETURNING 1)"
		       " SELECT count(*) FROM n",
	[S_NODE_GET] = "SELECT rid, parent, role, kind, depth, meta, blocks, n_edges FROM nodes"
		       " WHERE id = $1::bytea",
	[S_EDGES_GET] = "SELECT kind, target FROM edges WHERE node = $1::bigint ORDER BY kind, seq",
	[S_NODE_PARENT] = "SELECT parent, depth FROM nodes WHERE id = $1::bytea",
	[S_NODE_DEL] = "WITH d AS (DELETE FROM nodes WHERE id = $1::bytea RETURNING rid),"
		       " e AS (DELETE FROM edges WHERE node IN (SELECT rid FROM d) RETURNING 1),"
		       " u AS (DELETE FROM blob_users WHERE node IN (SELECT rid FROM d)"
		       " AND blob = ANY(SELECT decode(x, 'hex') FROM unnest(string_to_array($2::text, ',')) AS x)"
		       " RETURNING 1)"
		       " SELECT count(*) FROM d",
	[S_BLOB_DEL] = "WITH d AS (DELETE FROM blobs WHERE id = $1::bytea RETURNING indexed, dl),"
		       " t AS (DELETE FROM tokcache WHERE blob = $1::bytea RETURNING 1),"
		       " s AS (UPDATE fts_stats SET n = n - (SELECT count(*) FROM d WHERE indexed = 1),"
		       " total_dl = total_dl - (SELECT coalesce(sum(dl), 0) FROM d WHERE indexed = 1)"
		       " WHERE EXISTS (SELECT 1 FROM d WHERE indexed = 1) RETURNING 1)"
		       " SELECT count(*) FROM d",
	[S_REF_GET] = "SELECT name, type, target, description, tags, created, updated, from_ref"
		      " FROM refs WHERE name = $1::text",
	[S_REF_GET_LOCK] = "SELECT name, type, target, description, tags, created, updated, from_ref"
			   " FROM refs WHERE name = $1::text FOR UPDATE",
	[S_REF_INS] = "INSERT INTO refs(name, type, target, description, tags, created, updated, from_ref)"
		      " VALUES($1::text, $2::smallint, $3::bytea, $4::text, $5::text, $6::bigint, $7::bigint,"
		      " $8::text) ON CONFLICT(name) DO NOTHING",
	[S_REF_UPD] = "UPDATE refs SET target = $2::bytea, updated = $3::bigint WHERE name = $1::text",
	[S_REF_UPD_CAS] = "UPDATE refs SET target = $2::bytea, updated = $3::bigint WHERE name = $1::text"
			  " AND target IS NOT DISTINCT FROM $4::bytea",
	[S_REF_DEL] = "DELETE FROM refs WHERE name = $1::text",
	[S_REF_ALL] = "SELECT name, type, target, description, tags, created, updated, from_ref"
		      " FROM refs ORDER BY created, seq",
	[S_LOCK_EXCL] = "SELECT pg_advisory_xact_lock(" PG_LOCK_KEY ")",
	[S_CFG_GET] = "SELECT value FROM config WHERE key = $1::text",
	[S_CFG_SET] = "INSERT INTO config(key, value) VALUES($1::text, $2::text)"
		      " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
	[S_CFG_DEL] = "DELETE FROM config WHERE key = $1::text",
	[S_PREFIX_BLOB] = "SELECT id FROM blobs WHERE id BETWEEN $1::bytea AND $2::bytea ORDER BY id"
			  " LIMIT $3::bigint",
	[S_PREFIX_NODE] = "SELECT id FROM nodes WHERE id BETWEEN $1::bytea AND $2::bytea ORDER BY id"
			  " LIMIT $3::bigint",
	[S_ALL_BLOBS] = "SELECT id FROM blobs",
	[S_ALL_NODES] = "SELECT id FROM nodes",
	/* another indexer's rows are skipped, not waited for: it commits them */
	[S_PENDING] = "SELECT rid, data FROM blobs WHERE indexed = 2 ORDER BY rid LIMIT $1::bigint"
		      " FOR UPDATE SKIP LOCKED",
	[S_INDEX_BATCH] = "WITH u AS (SELECT r, to_tsvector('cmv', t) AS v"
			  " FROM unnest($1::bigint[], $2::text[]) AS x(r, t)),"
			  " upd AS (UPDATE blobs b SET indexed = 1, tsv = u.v,"
			  " dl = (SELECT coalesce(sum(array_length(positions, 1)), 0) FROM unnest(u.v))"
			  " FROM u WHERE b.rid = u.r AND b.indexed = 2 RETURNING b.dl)"
			  " UPDATE fts_stats SET n = n + (SELECT count(*) FROM upd),"
			  " total_dl = total_dl + (SELECT coalesce(sum(dl), 0) FROM upd)",
	[S_BEHIND] = "SELECT EXISTS (SELECT 1 FROM blobs WHERE indexed = 2)",
	/*
	 * BM25 as FTS5 computes it: idf = ln((N - df + 0.5) / (df + 0.5)),
	 * floored at 1e-6; k1 = 1.2, b = 0.75; negated, lower is better. $2 is
	 * the query's positive words, whose lexemes are the scored terms.
	 */
	[S_SEARCH] = "WITH q AS (SELECT to_tsquery('cmv', $1::text) AS q),"
		     " st AS (SELECT greatest(n, 1)::float8 AS n,"
		     " CASE WHEN n > 0 THEN greatest(total_dl, 1)::float8 / n ELSE 1 END AS avgdl FROM fts_stats),"
		     " terms AS (SELECT DISTINCT t FROM unnest(tsvector_to_array(to_tsvector('cmv', $2::text))) AS t),"
		     " df AS MATERIALIZED (SELECT t, (SELECT count(*) FROM blobs WHERE tsv @@ quote_literal(t)::tsquery)::float8 AS df"
		     " FROM terms),"
		     " m AS (SELECT b.rid, b.id, b.tsv, b.dl FROM blobs b, q WHERE b.tsv @@ q.q),"
		     " s AS (SELECT m.rid, m.id, coalesce((SELECT sum(greatest(ln((st.n - df.df + 0.5) / (df.df + 0.5)), 1e-6)"
		     " * (u.tf * 2.2) / (u.tf + 1.2 * (0.25 + 0.75 * m.dl / st.avgdl)))"
		     " FROM (SELECT lexeme, array_length(positions, 1)::float8 AS tf FROM unnest(m.tsv)) u"
		     " JOIN df ON df.t = u.lexeme), 0) AS score FROM m, st)"
		     " SELECT id, -score FROM s ORDER BY score DESC, rid LIMIT $3::bigint",
	[S_SEARCH_COUNT] = "SELECT (SELECT count(*) FROM blobs WHERE tsv @@ to_tsquery('cmv', $1::text)),"
			   " (SELECT n FROM fts_stats)",
	[S_BLOB_USERS] = "SELECT n.id, u.seq FROM blob_users u JOIN nodes n ON n.rid = u.node"
			 " WHERE u.blob = $1::bytea ORDER BY n.depth, n.id, u.seq",
	[S_TOK_GET] = "SELECT count FROM tokcache WHERE blob = $1::bytea AND tokenizer = $2::text",
	[S_TOK_PUT] = "INSERT INTO tokcache(blob, tokenizer, count) VALUES($1::bytea, $2::text, $3::bigint)"
		      " ON CONFLICT(blob, tokenizer) DO UPDATE SET count = excluded.count",
	[S_STATE_GET] = "SELECT value FROM branch_state WHERE branch = $1::text AND key = $2::text",
	[S_STATE_SET] = "INSERT INTO branch_state(branch, key, value) VALUES($1::text, $2::text, $3::bytea)"
			" ON CONFLICT(branch, key) DO UPDATE SET value = excluded.value",
	[S_STATE_DEL] = "DELETE FROM branch_state WHERE branch = $1::text AND key = $2::text",
	[S_STATE_DROP] = "DELETE FROM branch_state WHERE branch = $1::text",
	[S_USAGE_DROP] = "DELETE FROM usage_segments WHERE branch = $1::text",
	[S_USAGE_INS] = "INSERT INTO usage_segments(branch, signature, start_node, start_turn, started)"
			" VALUES($1::text, $2::text, $3::bytea, $4::bigint, $5::bigint)",
	[S_USAGE_ADD] = "UPDATE usage_segments SET calls = calls + $2::bigint,"
			" input_tokens = input_tokens + $3::bigint, output_tokens = output_tokens + $4::bigint,"
			" cache_read_tokens = cache_read_tokens + $5::bigint,"
			" cache_write_tokens = cache_write_tokens + $6::bigint"
			" WHERE rid = (SELECT max(rid) FROM usage_segments WHERE branch = $1::text)",
	[S_USAGE_ALL] = "SELECT signature, start_node, start_turn, started, calls, input_tokens,"
			" output_tokens, cache_read_tokens, cache_write_tokens"
			" FROM usage_segments WHERE branch = $1::text ORDER BY rid",
	[S_STATS] = "SELECT (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0)::bigint FROM blobs),"
		    " (SELECT count(*) FROM nodes), (SELECT count(*) FROM blob_users),"
		    " (SELECT count(*) FROM edges), (SELECT count(*) FROM refs),"
		    " (SELECT count(*) FROM config) + (SELECT count(*) FROM tokcache)"
		    " + (SELECT count(*) FROM branch_state) + (SELECT count(*) FROM usage_segments),"
		    " (SELECT coalesce(sum(pg_total_relation_size(c)), 0)::bigint FROM unnest(ARRAY['blobs',"
		    " 'nodes', 'blob_users', 'edges', 'refs', 'config', 'tokcache', 'branch_state',"
		    " 'usage_segments', 'fts_stats']::regclass[]) AS c)",
	[S_CHECK] = "SELECT 'blob ' || encode(id, 'hex') || ' is marked indexed but has no index entry'"
		    " FROM blobs WHERE indexed = 1 AND tsv IS NULL"
		    " UNION ALL SELECT 'the search statistics say ' || s.n || ' indexed blobs; there are ' || c.n"
		    " FROM fts_stats s, (SELECT count(*) AS n FROM blobs WHERE indexed = 1) c WHERE s.n <> c.n"
		    " UNION ALL SELECT 'blob_users row for a missing node ' || u.node"
		    " FROM blob_users u LEFT JOIN nodes n ON n.rid = u.node WHERE n.rid IS NULL"
		    " UNION ALL SELECT 'edge row for a missing node ' || e.node"
		    " FROM edges e LEFT JOIN nodes n ON n.rid = e.node WHERE n.rid IS NULL",
};

typedef struct {
	int n;
	const char *v[PG_MAX_PARAMS];
	int len[PG_MAX_PARAMS];
	int fmt[PG_MAX_PARAMS];
	char num[PG_MAX_PARAMS][24];
} params;

/* One statement of the open write transaction, kept to replay it. */
typedef struct {
	int sid;
	int n;
	char *v[PG_MAX_PARAMS];
	int len[PG_MAX_PARAMS];
	int fmt[PG_MAX_PARAMS];
	uint64_t digest;
} log_entry;

typedef struct pg_backend {
	cmv_store_backend parent;
	PGconn *conn;
	char *where; /* the URL without its password: what messages name */
	bool readonly;
	bool in_txn;
	bool txn_broken; /* a statement failed: nothing more runs until the rollback */
	bool prepared[S__COUNT];
	log_entry *log;
	size_t n_log, cap_log, log_bytes;
	bool log_over; /* past PG_LOG_CAP: this transaction cannot be replayed */
	unsigned long retries; /* replays that succeeded (tests read it from the log) */
	cmv_buf scratch;
	cmv_buf scratch2;
} pg_backend;

#define PB(b) ((pg_backend *)(b))

/* ---- errors -------------------------------------------------------------- */

static int pg_error_msg(pg_backend *pb, const PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	int code = CMV_ERROR;

	if (!msg || !*msg)
		msg = PQerrorMessage(pb->conn);
	if (PQstatus(pb->conn) == CONNECTION_BAD)
		code = CMV_EIO;
	else if (state) {
		if (!strcmp(state, "55P03") || !strcmp(state, "57014") || !strncmp(state, "40", 2))
			code = CMV_ELOCKED; /* lock_timeout, a cancel, serialization */
		else if (!strncmp(state, "08", 2) || !strncmp(state, "53", 2) || !strncmp(state, "58", 2))
			code = CMV_EIO; /* connection, resources, system */
		else if (!strncmp(state, "XX", 2))
			code = CMV_ECORRUPT;
		else if (!strcmp(state, "54000"))
			code = CMV_ETOOBIG;
		else if (!strncmp(state, "42", 2) || !strncmp(state, "22", 2))
			code = CMV_EINVALID;
	}
	/* libpq's messages end in a newline */
	int n = (int)strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	return cmv_error__set(code, "%s in store '%s': %.*s%s%s%s", what, pb->where, n, msg,
			      state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
}

static bool retriable(const PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	return state && (!strcmp(state, "40001") || !strcmp(state, "40P01"));
}

/* ---- parameters and results ---------------------------------------------- */

static void p_null(params *p)
{
	int i = p->n++;
	p->v[i] = NULL;
	p->len[i] = 0;
	p->fmt[i] = 0;
}

static void p_bin(params *p, const void *data, size_t len)
{
	int i = p->n++;
	p->v[i] = len ? data : "";
	p->len[i] = (int)len;
	p->fmt[i] = 1;
}

static void p_id(params *p, const cmv_id *id)
{
	if (!id || id->type == CMV_ID_NONE)
		p_null(p);
	else
		p_bin(p, id->raw, CMV_ID_RAWSZ);
}

static void p_text(params *p, const char *s)
{
	int i = p->n++;
	p->v[i] = s;
	p->len[i] = 0;
	p->fmt[i] = 0;
}

static void p_int(params *p, long long v)
{
	int i = p->n;
	snprintf(p->num[i], sizeof(p->num[i]), "%lld", v);
	p_text(p, p->num[i]);
}

static int64_t r_int(const PGresult *r, int row, int col)
{
	const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
	int len = PQgetlength(r, row, col);
	uint64_t x = 0;

	if (PQgetisnull(r, row, col))
		return 0;
	for (int i = 0; i < len && i < 8; i++)
		x = (x << 8) | v[i];
	/* sign-extend the narrower integer types */
	if (len == 2)
		return (int16_t)x;
	if (len == 4)
		return (int32_t)x;
	return (int64_t)x;
}

static double r_double(const PGresult *r, int row, int col)
{
	uint64_t x = (uint64_t)r_int(r, row, col);
	double d;

	memcpy(&d, &x, sizeof(d));
	return d;
}

static void r_id(cmv_id *out, const PGresult *r, int row, int col)
{
	if (!PQgetisnull(r, row, col) && PQgetlength(r, row, col) == CMV_ID_RAWSZ) {
		out->type = CMV_ID_XXH3_128;
		memcpy(out->raw, PQgetvalue(r, row, col), CMV_ID_RAWSZ);
	} else {
		cmv_id_clear(out);
	}
}

static const char *r_text(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static uint64_t result_digest(const PGresult *r)
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t h;
	int rows = PQntuples(r), cols = PQnfields(r);
	const char *ct = PQcmdTuples((PGresult *)r);

	if (!st)
		return 0;
	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, &rows, sizeof(rows));
	XXH3_64bits_update(st, ct, strlen(ct));
	for (int i = 0; i < rows; i++)
		for (int j = 0; j < cols; j++) {
			int len = PQgetisnull(r, i, j) ? -1 : PQgetlength(r, i, j);
			XXH3_64bits_update(st, &len, sizeof(len));
			if (len > 0)
				XXH3_64bits_update(st, PQgetvalue(r, i, j), (size_t)len);
		}
	h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

/* ---- statements, the replay log, transactions ----------------------------- */

static PGresult *exec_raw(pg_backend *pb, int sid, int n, const char *const *v, const int *len,
			  const int *fmt)
{
	char name[16];

	snprintf(name, sizeof(name), "cmv%d", sid);
	if (!pb->prepared[sid]) {
		PGresult *r = PQprepare(pb->conn, name, stmt_sql[sid], 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			return r;
		PQclear(r);
		pb->prepared[sid] = true;
	}
	return PQexecPrepared(pb->conn, name, n, v, len, fmt, 1);
}

static void log_clear(pg_backend *pb)
{
	for (size_t i = 0; i < pb->n_log; i++)
		for (int j = 0; j < pb->log[i].n; j++)
			free(pb->log[i].v[j]);
	pb->n_log = 0;
	pb->log_bytes = 0;
	pb->log_over = false;
}

static void log_add(pg_backend *pb, int sid, const params *p, uint64_t digest)
{
	log_entry *e;
	size_t bytes = 0;

	if (pb->log_over)
		return;
	for (int j = 0; j < p->n; j++)
		bytes += p->v[j] ? (p->fmt[j] ? (size_t)p->len[j] : strlen(p->v[j]) + 1) : 0;
	if (pb->log_bytes + bytes > PG_LOG_CAP ||
	    cmv__array_grow((void **)&pb->log, &pb->cap_log, pb->n_log, sizeof(*pb->log)) < 0) {
		cmv_error_clear();
		pb->log_over = true;
		return;
	}
	e = &pb->log[pb->n_log];
	memset(e, 0, sizeof(*e));
	e->sid = sid;
	e->digest = digest;
	for (int j = 0; j < p->n; j++) {
		size_t len = p->v[j] ? (p->fmt[j] ? (size_t)p->len[j] : strlen(p->v[j]) + 1) : 0;
		e->len[j] = p->len[j];
		e->fmt[j] = p->fmt[j];
		if (p->v[j]) {
			if (!(e->v[j] = malloc(len ? len : 1))) {
				for (int k = 0; k < j; k++)
					free(e->v[k]);
				pb->log_over = true;
				return;
			}
			memcpy(e->v[j], p->v[j], len);
		}
		e->n = j + 1;
	}
	e->n = p->n;
	pb->n_log++;
	pb->log_bytes += bytes;
}

static const char *begin_sql(const pg_backend *pb)
{
	/* the shared lock: gc's exclusive one waits for every writer, and they for it */
	return pb->readonly ? "BEGIN READ ONLY"
			    : "BEGIN ISOLATION LEVEL READ COMMITTED;"
			      " SELECT pg_advisory_xact_lock_shared(" PG_LOCK_KEY ")";
}

/*
 * The transaction was aborted by a deadlock or a serialization failure:
 * run it again from the log, and keep it only if every statement sees what
 * it saw the first time. @return 0 (replayed), or the error to report
 */
static int replay(pg_backend *pb, const char *what)
{
	for (int attempt = 0; attempt < PG_MAX_RETRIES; attempt++) {
		PGresult *r;
		bool again = false;

		PQclear(PQexec(pb->conn, "ROLLBACK"));
		r = PQexec(pb->conn, begin_sql(pb));
		if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
			int error = pg_error_msg(pb, r, "cannot begin a transaction again");
			PQclear(r);
			return error;
		}
		PQclear(r);
		for (size_t i = 0; i < pb->n_log; i++) {
			log_entry *e = &pb->log[i];
			r = exec_raw(pb, e->sid, e->n, (const char *const *)e->v, e->len, e->fmt);
			ExecStatusType st = PQresultStatus(r);
			if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
				if (retriable(r)) {
					PQclear(r);
					again = true;
					break;
				}
				int error = pg_error_msg(pb, r, what);
				PQclear(r);
				return error;
			}
			uint64_t d = result_digest(r);
			PQclear(r);
			if (d != e->digest)
				return cmv_error__set(CMV_EMODIFIED,
						      "the store '%s' changed while this transaction ran (a concurrent writer);"
						      " nothing was written: run it again", pb->where);
		}
		if (!again) {
			pb->retries++;
			return 0;
		}
	}
	return cmv_error__set(CMV_ELOCKED, "%s in store '%s': still conflicting after %d retries", what,
			      pb->where, PG_MAX_RETRIES);
}

/* Run a prepared statement; NULL with *error set when it failed. */
static PGresult *run(pg_backend *pb, int sid, const params *p, const char *what, int *error)
{
	static const params none;

	if (!p)
		p = &none;
	*error = 0;
	if (pb->in_txn && pb->txn_broken) {
		*error = cmv_error__set(CMV_ERROR, "the transaction on store '%s' failed earlier; roll it back",
					pb->where);
		return NULL;
	}
	for (int attempt = 0;; attempt++) {
		PGresult *r = exec_raw(pb, sid, p->n, p->v, p->len, p->fmt);
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			if (pb->in_txn && !pb->readonly)
				log_add(pb, sid, p, result_digest(r));
			return r;
		}
		if (pb->in_txn && !pb->readonly && retriable(r) && !pb->log_over && attempt < PG_MAX_RETRIES) {
			PQclear(r);
			if ((*error = replay(pb, what)) == 0)
				continue;
			pb->txn_broken = true;
			return NULL;
		}
		*error = pg_error_msg(pb, r, what);
		PQclear(r);
		if (pb->in_txn)
			pb->txn_broken = true;
		return NULL;
	}
}

/* Run a statement for its effect; *changed (may be NULL) gets the rows it touched. */
static int run_done(pg_backend *pb, int sid, const params *p, const char *what, uint64_t *changed)
{
	int error;
	PGresult *r = run(pb, sid, p, what, &error);

	if (!r)
		return error;
	if (changed)
		*changed = PQntuples(r) == 1 && PQnfields(r) == 1 ? (uint64_t)r_int(r, 0, 0)
								   : strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

static int exec_simple(pg_backend *pb, const char *sql, const char *what)
{
	PGresult *r = PQexec(pb->conn, sql);
	ExecStatusType st = PQresultStatus(r);
	int error = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		error = pg_error_msg(pb, r, what);
	PQclear(r);
	return error;
}

static int pg_txn_begin(cmv_store_backend *b)
{
	pg_backend *pb = PB(b);
	int error;

	log_clear(pb);
	pb->txn_broken = false;
	if ((error = exec_simple(pb, begin_sql(pb), "cannot begin a transaction")) < 0) {
		PQclear(PQexec(pb->conn, "ROLLBACK"));
		return error;
	}
	pb->in_txn = true;
	return 0;
}

static int pg_txn_commit(cmv_store_backend *b)
{
	pg_backend *pb = PB(b);
	int error;

	if (pb->txn_broken)
		return cmv_error__set(CMV_ERROR, "the transaction on store '%s' failed earlier; roll it back",
				      pb->where);
	/* COMMIT of an aborted transaction answers ROLLBACK, with no error: check */
	PGresult *r = PQexec(pb->conn, "COMMIT");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		error = pg_error_msg(pb, r, "cannot commit");
	else if (strcmp(PQcmdStatus(r), "COMMIT"))
		error = cmv_error__set(CMV_ERROR, "cannot commit in store '%s': the server rolled back", pb->where);
	else
		error = 0;
	PQclear(r);
	if (error == 0 || PQtransactionStatus(pb->conn) == PQTRANS_IDLE) {
		pb->in_txn = false;
		log_clear(pb);
	}
	return error;
}

static int pg_txn_rollback(cmv_store_backend *b)
{
	pg_backend *pb = PB(b);
	int error = 0;

	if (PQtransactionStatus(pb->conn) != PQTRANS_IDLE)
		error = exec_simple(pb, "ROLLBACK", "cannot roll back");
	pb->in_txn = false;
	pb->txn_broken = false;
	log_clear(pb);
	return error;
}

/* ---- blobs ----------------------------------------------------------------- */

static int pg_blob_put(cmv_store_backend *b, const cmv_id *id, const void *data, size_t len,
		       unsigned int flags)
{
	pg_backend *pb = PB(b);
	bool want_index = (flags & CMV_STORE_BLOB_INDEX) != 0;
	params p = { 0 };
	uint64_t n = 0;
	int error;

	if (len > INT32_MAX)
		return cmv_error__set(CMV_ETOOBIG, "blob of %zu bytes is too large", len);
	p_id(&p, id);
	p_int(&p, (long long)len);
	p_int(&p, want_index ? 2 : 0);
	p_bin(&p, data, len);
	if ((error = run_done(pb, S_BLOB_INS, &p, "cannot write a blob", &n)) < 0)
		return error;
	if (n == 1 || !want_index)
		return 0;
	memset(&p, 0, sizeof(p));
	p_id(&p, id);
	return run_done(pb, S_BLOB_REINDEX, &p, "cannot index a blob", NULL);
}

static int pg_blob_get(cmv_store_backend *b, cmv_buf *out, const cmv_id *id)
{
	pg_backend *pb = PB(b);
	params p = { 0 };
	PGresult *r;
	char hex[CMV_ID_HEXSZ + 1];
	int error;

	p_id(&p, id);
	if (!(r = run(pb, S_BLOB_GET, &p, "cannot read a blob", &error)))
		return error;
	if (PQntuples(r) == 0)
		error = cmv_error__set(CMV_ENOTFOUND, "blob '%s' not found", cmv_id_tostr(hex, sizeof(hex), id));
	else
		error = cmv_buf_set(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	PQclear(r);
	return error;
}

static int pg_blob_exists(cmv_store_backend *b, const cmv_id *id)
{
	pg_backend *pb = PB(b);
	params p = { 0 };
	PGresult *r;
	int error;

	p_id(&p, id);
	if (!(r = run(pb, S_BLOB_EXISTS, &p, "cannot look up an object", &error)))
		return error;
	error = PQntuples(r) > 0;
	PQclear(r);
	return error;
}

/* ---- nodes ----------------------------------------------------------------- */

static int hex_list(cmv_buf *out, const cmv_id *ids, size_t n, int kind)
{
	char hex[CMV_ID_HEXSZ + 1];
	int error = 0;

	for (size_t i = 0; i < n && !error; i++) {
		if (out->size)
			error = cmv_buf_putc(out, ',');
		if (!error && kind)
			error = cmv_buf_printf(out, "%d:%zu:", kind, i);
		if (!error)
			error = cmv_buf_puts(out, cmv_id_tostr(hex, sizeof(hex), &ids[i]));
	}
	return error;
}

static int blob_list(cmv_buf *out, const cmv_node *n)
{
	char hex[CMV_ID_HEXSZ + 1];
	int error = 0;

	cmv_buf_clear(out);
	if ((error = cmv_buf_puts(out, "")) < 0)
		return error;
	for (size_t i = 0; i < n->n_blocks && !error; i++)
		error = cmv_buf_printf(out, "%s%s", i ? "," : "", cmv_id_tostr(hex, sizeof(hex), &n->blocks[i].blob));
	return error;
}

static int pg_node_put(cmv_store_backend *b, const cmv_node *n)
{
	pg_backend *pb = PB(b);
	cmv_buf users = CMV_BUF_INIT(CMV_BUF_CONTENT), edges = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_edge_list el[CMV_EDGE_KINDS];
	params p = { 0 };
	int error;

	cmv_buf_clear(&pb->scratch);
	if ((error = cmv_dag__blocks_encode(&pb->scratch, n->blocks, n->n_blocks)) < 0 ||
	    (error = blob_list(&users, n)) < 0 || (error = cmv_buf_puts(&edges, "")) < 0)
		goto done;
	cmv_dag__node_edges(el, n);
	for (int k = 0; k < CMV_EDGE_KINDS && !error; k++)
		error = hex_list(&edges, el[k].ids, el[k].n, el[k].kind);
	if (error)
		goto done;
	p_id(&p, &n->id);
	p_id(&p, &n->parent);
	p_int(&p, (long long)n->role);
	p_int(&p, (long long)n->kind);
	p_int(&p, (long long)n->depth);
	if (n->meta)
		p_bin(&p, n->meta, n->meta_len);
	else
		p_null(&p);
	p_bin(&p, pb->scratch.ptr, pb->scratch.size);
	p_int(&p, (long long)cmv_dag__node_n_edges(n));
	p_text(&p, users.ptr);
	p_text(&p, edges.ptr);
	error = run_done(pb, S_NODE_INS, &p, "cannot write a node", NULL);
done:
	cmv_buf_dispose(&users);
	cmv_buf_dispose(&edges);
	return error;
}

static int node_read(pg_backend *pb, cmv_node **out, const cmv_id *id)
{
	params p = { 0 };
	PGresult *r, *re = NULL;
	cmv_node head;
	cmv_id *edges = NULL;
	size_t counts[CMV_EDGE_KINDS] = { 0 };
	char hex[CMV_ID_HEXSZ + 1];
	int error;

	*out = NULL;
	p_id(&p, id);
	if (!(r = run(pb, S_NODE_GET, &p, "cannot read a node", &error)))
		return error;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return cmv_error__set(CMV_ENOTFOUND, "node '%s' not found", cmv_id_tostr(hex, sizeof(hex), id));
	}
	memset(&head, 0, sizeof(head));
	head.id = *id;
	r_id(&head.parent, r, 0, 1);
	head.role = (cmv_role)r_int(r, 0, 2);
	head.kind = (cmv_kind)r_int(r, 0, 3);
	head.depth = (uint64_t)r_int(r, 0, 4);
	if (!PQgetisnull(r, 0, 5)) {
		head.meta = PQgetvalue(r, 0, 5);
		head.meta_len = (size_t)PQgetlength(r, 0, 5);
	}
	if (r_int(r, 0, 7) > 0) {
		params pe = { 0 };
		p_int(&pe, (long long)r_int(r, 0, 0));
		if (!(re = run(pb, S_EDGES_GET, &pe, "cannot read edges", &error)))
			goto done;
		int ne = PQntuples(re);
		if (!(edges = cmv__calloc((size_t)ne + 1, sizeof(*edges)))) {
			error = cmv_error__oom();
			goto done;
		}
		for (int i = 0; i < ne; i++) {
			int kind = (int)r_int(re, i, 0);
			if (kind < 1 || kind > CMV_EDGE_KINDS) {
				error = cmv_error__set(CMV_ECORRUPT, "node has an edge of unknown kind %d", kind);
				goto done;
			}
			counts[kind - 1]++;
			r_id(&edges[i], re, i, 1);
		}
		cmv_dag__node_set_edges(&head, edges, counts);
	}
	error = cmv_dag__node_from_parts(out, &head, PQgetvalue(r, 0, 6), (size_t)PQgetlength(r, 0, 6));
done:
	free(edges);
	PQclear(re);
	PQclear(r);
	return error;
}

static int pg_node_get(cmv_store_backend *b, cmv_node **out, const cmv_id *id)
{
	return node_read(PB(b), out, id);
}

static int pg_node_parent(cmv_store_backend *b, cmv_id *parent, uint64_t *depth, const cmv_id *id)
{
	pg_backend *pb = PB(b);
	params p = { 0 };
	PGresult *r;
	char hex[CMV_ID_HEXSZ + 1];
	int error;

	p_id(&p, id);
	if (!(r = run(pb, S_NODE_PARENT, &p, "cannot read a node", &error)))
		return error;
	if (PQntuples(r) == 0) {
		error = cmv_error__set(CMV_ENOTFOUND, "node '%s' not found", cmv_id_tostr(hex, sizeof(hex), id));
	} else {
		r_id(parent, r, 0, 0);
		if (depth)
			*depth = (uint64_t)r_int(r, 0, 1);
	}
	PQclear(r);
	return error;
}

/* ---- refs ------------------------------------------------------------------ */

static int ref_from_row(cmv_ref **out, const PGresult *r, int row)
{
	cmv_ref ref;
	const char *tags = r_text(r, row, 4);
	const char *tagv[256];
	char *tagcopy = NULL;
	size_t n_tags = 0;

	memset(&ref, 0, sizeof(ref));
	ref.name = r_text(r, row, 0);
	ref.type = (cmv_ref_type)r_int(r, row, 1);
	r_id(&ref.target, r, row, 2);
	ref.description = r_text(r, row, 3);
	ref.created = r_int(r, row, 5);
	ref.updated = r_int(r, row, 6);
	ref.from_ref = r_text(r, row, 7);
	if (tags && *tags) {
		char *q;
		if (!(tagcopy = cmv__strdup(tags)))
			return cmv_error__oom();
		q = tagcopy;
		while (q && n_tags < CMV_ARRAY_SIZE(tagv)) {
			char *nl = strchr(q, '\n');
			if (nl)
				*nl = '\0';
			tagv[n_tags++] = q;
			q = nl ? nl + 1 : NULL;
		}
	}
	ref.tags = tagv;
	ref.n_tags = n_tags;
	*out = cmv_dag__ref_copy(&ref);
	free(tagcopy);
	return *out ? 0 : cmv_error__oom();
}

static int pg_ref_get(cmv_store_backend *b, cmv_ref **out, const char *name)
{
	pg_backend *pb = PB(b);
	params p = { 0 };
	PGresult *r;
	int error;

	*out = NULL;
	p_text(&p, name);
	/* in a write transaction the ref is about to move: hold it (see the top) */
	if (!(r = run(pb, pb->in_txn && !pb->readonly ? S_REF_GET_LOCK : S_REF_GET, &p, "cannot read a ref", &error)))
		return error;
	if (PQntuples(r) == 0)
		error = cmv_error__set(CMV_ENOTFOUND, "no branch or snapshot named '%s'", name);
	else
		error = ref_from_row(out, r, 0);
	PQclear(r);
	return error;
}

static int pg_ref_put(cmv_store_backend *b, const cmv_ref *ref, unsigned int flags, const cmv_id *expected)
{
	pg_backend *pb = PB(b);
	params p = { 0 };
	uint64_t n = 0;
	int error = 0;

	if (flags & CMV_STORE_REF_CREATE) {
		cmv_buf tags = CMV_BUF_INIT(CMV_BUF_SMALL);
		for (size_t i = 0; i < ref->n_tags && !error; i++)
			error = cmv_buf_printf(&tags, "%s%s", i ? "\n" : "", ref->tags[i]);
		if (error) {
			cmv_buf_dispose(&tags);
			return error;
		}
		p_text(&p, ref->name);
		p_int(&p, (long long)ref->type);
		p_id(&p, &ref->target);
		p_text(&p, ref->description);
		p_text(&p, ref->n_tags ? tags.ptr : NULL);
		p_int(&p, (long long)ref->created);
		p_int(&p, (long long)ref->updated);
		p_text(&p, ref->from_ref);
		/* ON CONFLICT DO NOTHING: a taken name must not abort the caller's transaction */
		error = run_done(pb, S_REF_INS, &p, "cannot create a ref", &n);
		cmv_buf_dispose(&tags);
		if (error < 0)
			return error;
		if (n == 0)
			return cmv_error__set(CMV_EEXISTS, "a branch or snapshot named '%s' already exists", ref->name);
		return 0;
	}
	p_text(&p, ref->name);
	p_id(&p, &ref->target);
	p_int(&p, (long long)ref->updated);
	if (flags & CMV_STORE_REF_CAS)
		p_id(&p, expected);
	if ((error = run_done(pb, (flags & CMV_STORE_REF_CAS) ? S_REF_UPD_CAS : S_REF_UPD, &p,
			      "cannot update a ref", &n)) < 0)
		return error;
	if (n == 0) {
		if (flags & CMV_STORE_REF_CAS)
			return cmv_error__set(CMV_EMODIFIED, "branch '%s' moved concurrently", ref->name);
		return cmv_error__set(CMV_ENOTFOUND, "no branch named '%s'", ref->name);
	}
	return 0;
}

static int pg_ref_delete(cmv_store_backend *b, const char *name)
{
	pg_backend *pb = PB(b);
	params p = { 0 };
	uint64_t n = 0;
	int error;

	p_text(&p, name);
	if ((error = run_done(pb, S_REF_DEL, &p, "cannot delete a ref", &n)) < 0)
		return error;
	if (n == 0)
		return cmv_error__set(CMV_ENOTFOUND, "no branch or snapshot named '%s'", name);
	return 0;
}

static int pg_ref_foreach(cmv_store_backend *b, int (*cb)(const cmv_ref *, void *), void *payload)
{
	pg_backend *pb = PB(b);
	PGresult *r;
	int error = 0;

	/* Listing every ref in a write transaction is gc marking: no writer may run beside it. */
	if (pb->in_txn && !pb->readonly &&
	    (error = run_done(pb, S_LOCK_EXCL, NULL, "cannot lock the store", NULL)) < 0)
		return error;
	if (!(r = run(pb, S_REF_ALL, NULL, "cannot list refs", &error)))
		return error;
	/* the rows are all here: a callback may use the store */
	for (int i = 0; i < PQntuples(r) && !error; i++) {
		cmv_ref *ref = NULL;
		if ((error = ref_from_row(&ref, r, i)) == 0)
			error = cb(ref, payload);
		cmv_ref_free(ref);
	}
	PQclear(r);
	return error;
}

/* ---- config and per-branch state ------------------------------------------ */

static int get_value(pg_backend *pb, cmv_buf *out, int sid, const char *a, const char *b, const char *what)
{
	params p = { 0 };
	PGresult *r;
	int error;

	p_text(&p, a);
	if (b)
		p_text(&p, b);
	if (!(r = run(pb, sid, &p, "cannot read settings", &error)))
		return error;
	if (PQntuples(r) == 0)
		error = cmv_error__set(CMV_ENOTFOUND, "%s not set", what);
	else
		error = cmv_buf_set(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	PQclear(r);
	return error;
}

static int pg_config_get(cmv_store_backend *b, cmv_buf *out, const char *key)
{
	return get_value(PB(b), out, S_CFG_GET, key, NULL, key);
}

static int pg_config_set(cmv_store_backend *b, const char *key, const char *value)
{
	params p = { 0 };

	p_text(&p, key);
	if (value)
		p_text(&p, value);
	return run_done(PB(b), value ? S_CFG_SET : S_CFG_DEL, &p, "cannot write settings", NULL);
}

static int pg_state_get(cmv_store_backend *b, cmv_buf *out, const char *branch, const char *key)
{
	return get_value(PB(b), out, S_STATE_GET, branch, key, key);
}

static int pg_state_set(cmv_store_backend *b, const char *branch, const char *key, const char *value)
{
	params p = { 0 };

	p_text(&p, branch);
	p_text(&p, key);
	if (value)
		p_bin(&p, value, strlen(value));
	return run_done(PB(b), value ? S_STATE_SET : S_STATE_DEL, &p, "cannot write branch state", NULL);
}

static int pg_state_drop(cmv_store_backend *b, const char *branch)
{
	params p = { 0 };
	int error;

	p_text(&p, branch);
	if ((error = run_done(PB(b), S_STATE_DROP, &p, "cannot drop branch state", NULL)) < 0)
		return error;
	return run_done(PB(b), S_USAGE_DROP, &p, "cannot drop branch usage", NULL);
}

static int pg_usage_begin(cmv_store_backend *b, const char *branch, const cmv_usage_segment *seg)
{
	params p = { 0 };

	p_text(&p, branch);
	p_text(&p, seg->signature);
	p_id(&p, &seg->start_node);
	p_int(&p, (long long)seg->start_turn);
	p_int(&p, (long long)seg->started);
	return run_done(PB(b), S_USAGE_INS, &p, "cannot start a usage segment", NULL);
}

static int pg_usage_add(cmv_store_backend *b, const char *branch, const cmv_usage_segment *d)
{
	params p = { 0 };
	uint64_t n = 0;
	int error;

	p_text(&p, branch);
	p_int(&p, (long long)d->calls);
	p_int(&p, (long long)d->input_tokens);
	p_int(&p, (long long)d->output_tokens);
	p_int(&p, (long long)d->cache_read_tokens);
	p_int(&p, (long long)d->cache_write_tokens);
	if ((error = run_done(PB(b), S_USAGE_ADD, &p, "cannot record usage", &n)) < 0)
		return error;
	if (n == 0)
		return cmv_error__set(CMV_ENOTFOUND, "branch '%s' has no model set", branch);
	return 0;
}

static int pg_usage_foreach(cmv_store_backend *b, const char *branch,
			    int (*cb)(const cmv_usage_segment *, void *), void *payload)
{
	params p = { 0 };
	PGresult *r;
	int error = 0;

	p_text(&p, branch);
	if (!(r = run(PB(b), S_USAGE_ALL, &p, "cannot read usage", &error)))
		return error;
	for (int i = 0; i < PQntuples(r) && !error; i++) {
		cmv_usage_segment seg;
		seg.signature = r_text(r, i, 0);
		r_id(&seg.start_node, r, i, 1);
		seg.start_turn = (uint64_t)r_int(r, i, 2);
		seg.started = r_int(r, i, 3);
		seg.calls = (uint64_t)r_int(r, i, 4);
		seg.input_tokens = (uint64_t)r_int(r, i, 5);
		seg.output_tokens = (uint64_t)r_int(r, i, 6);
		seg.cache_read_tokens = (uint64_t)r_int(r, i, 7);
		seg.cache_write_tokens = (uint64_t)r_int(r, i, 8);
		error = cb(&seg, payload);
	}
	PQclear(r);
	return error;
}

/* ---- ids, iteration, deletion --------------------------------------------- */

static int pg_lookup_prefix(cmv_store_backend *b, cmv_id *out, cmv_object_type *types_out, size_t max,
			    size_t *n_out, const char *prefix, size_t n_digits)
{
	pg_backend *pb = PB(b);
	unsigned char lo[CMV_ID_RAWSZ], hi[CMV_ID_RAWSZ];
	size_t n = 0;
	int error;

	memset(lo, 0x00, sizeof(lo));
	memset(hi, 0xff, sizeof(hi));
	for (size_t i = 0; i < n_digits && i < CMV_ID_HEXSZ; i++) {
		char c = prefix[i];
		unsigned v = (c >= '0' && c <= '9') ? (unsigned)(c - '0')
			   : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
			   : (unsigned)(c - 'A' + 10);
		if (i % 2) {
			lo[i / 2] = (unsigned char)((lo[i / 2] & 0xf0) | v);
			hi[i / 2] = (unsigned char)((hi[i / 2] & 0xf0) | v);
		} else {
			lo[i / 2] = (unsigned char)(v << 4);
			hi[i / 2] = (unsigned char)((v << 4) | 0x0f);
		}
	}
	for (int t = 0; t < 2; t++) {
		params p = { 0 };
		PGresult *r;
		p_bin(&p, lo, sizeof(lo));
		p_bin(&p, hi, sizeof(hi));
		p_int(&p, (long long)max + 1);
		if (!(r = run(pb, t == 0 ? S_PREFIX_NODE : S_PREFIX_BLOB, &p, "cannot look up an id prefix", &error)))
			return error;
		for (int i = 0; i < PQntuples(r); i++, n++)
			if (n < max) {
				r_id(&out[n], r, i, 0);
				types_out[n] = t == 0 ? CMV_OBJ_NODE : CMV_OBJ_BLOB;
			}
		PQclear(r);
	}
	*n_out = n;
	return 0;
}

static int pg_object_foreach(cmv_store_backend *b, cmv_object_type type, int (*cb)(const cmv_id *, void *),
			     void *payload)
{
	pg_backend *pb = PB(b);
	PGresult *r;
	int error = 0;

	/* ids only: 17 bytes a row, a million objects is tens of MB at most */
	if (!(r = run(pb, type == CMV_OBJ_BLOB ? S_ALL_BLOBS : S_ALL_NODES, NULL, "cannot list objects", &error)))
		return error;
	for (int i = 0; i < PQntuples(r) && !error; i++) {
		cmv_id id;
		r_id(&id, r, i, 0);
		error = cb(&id, payload);
	}
	PQclear(r);
	return error;
}

static int pg_object_delete(cmv_store_backend *b, cmv_object_type type, const cmv_id *id)
{
	pg_backend *pb = PB(b);
	params p = { 0 };
	int error;

	p_id(&p, id);
	if (type == CMV_OBJ_BLOB)
		return run_done(pb, S_BLOB_DEL, &p, "cannot delete a blob", NULL);
	cmv_node *n = NULL;
	if ((error = node_read(pb, &n, id)) == CMV_ENOTFOUND) {
		cmv_error_clear();
		return 0;
	}
	if (error < 0)
		return error;
	if ((error = blob_list(&pb->scratch2, n)) == 0) {
		p_text(&p, pb->scratch2.ptr);
		error = run_done(pb, S_NODE_DEL, &p, "cannot delete a node", NULL);
	}
	cmv_node_free(n);
	return error;
}

/* ---- search ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (0: not one). */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/*
 * Cut text into words as FTS5's unicode61 does: ASCII letters and digits
 * and every non-ASCII character make words, everything else separates.
 * Bytes that are not UTF-8 separate too (PostgreSQL would refuse them).
 * Appends to out, escaped for an array literal's quoted element.
 */
static int words_append(cmv_buf *out, const char *text, size_t len, bool array_escape)
{
	const unsigned char *s = (const unsigned char *)text;
	int error = 0;

	for (size_t i = 0; i < len && !error;) {
		size_t n = utf8_seq(s + i, len - i);
		if (n == 0) {
			error = cmv_buf_putc(out, ' ');
			i++;
		} else if (n == 1) {
			unsigned char c = s[i];
			bool word = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
			error = cmv_buf_putc(out, word ? (char)c : ' ');
			i++;
		} else {
			error = cmv_buf_put(out, s + i, n);
			i += n;
		}
	}
	(void)array_escape; /* no quote or backslash survives the cut */
	return error;
}

static int pg_index_pending(cmv_store_backend *b, size_t *n_out)
{
	pg_backend *pb = PB(b);
	cmv_buf rids = CMV_BUF_INIT(CMV_BUF_CONTENT), texts = CMV_BUF_INIT((size_t)1 << 31);
	int error = 0;

	*n_out = 0;
	for (;;) {
		params p = { 0 };
		PGresult *r;
		int rows;

		p_int(&p, PG_INDEX_BATCH);
		if (!(r = run(pb, S_PENDING, &p, "cannot read pending blobs", &error)))
			break;
		rows = PQntuples(r);
		cmv_buf_clear(&rids);
		cmv_buf_clear(&texts);
		error = cmv_buf_putc(&rids, '{');
		if (!error)
			error = cmv_buf_putc(&texts, '{');
		for (int i = 0; i < rows && !error; i++) {
			error = cmv_buf_printf(&rids, "%s%lld", i ? "," : "", (long long)r_int(r, i, 0));
			if (!error)
				error = cmv_buf_puts(&texts, i ? ",\"" : "\"");
			if (!error)
				error = words_append(&texts, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), true);
			if (!error)
				error = cmv_buf_putc(&texts, '"');
		}
		PQclear(r);
		if (!error)
			error = cmv_buf_putc(&rids, '}');
		if (!error)
			error = cmv_buf_putc(&texts, '}');
		if (error || rows == 0)
			break;
		memset(&p, 0, sizeof(p));
		p_text(&p, rids.ptr);
		p_text(&p, texts.ptr);
		if ((error = run_done(pb, S_INDEX_BATCH, &p, "cannot index blobs", NULL)) < 0)
			break;
		*n_out += (size_t)rows;
		if (rows < PG_INDEX_BATCH)
			break;
	}
	/*
	 * Many texts indexed: the planner's idea of how many are pending is
	 * stale (an import is analyzed while all of it is pending), and with it
	 * "is anything pending", asked before every search, was a scan of the
	 * table (19 ms at 100k texts) rather than of the empty pending index,
	 * until autovacuum analyzed again. One column, a sample: milliseconds.
	 * Skipped when another analyze holds the table (it will do); a role
	 * that does not own the table gets a warning, not an error.
	 */
	if (!error && *n_out >= PG_REANALYZE_AFTER)
		error = exec_simple(pb, "ANALYZE (SKIP_LOCKED) blobs (indexed)", "cannot analyze the blobs");
	cmv_buf_dispose(&rids);
	cmv_buf_dispose(&texts);
	return error;
}

static int pg_index_behind(cmv_store_backend *b, bool *behind)
{
	PGresult *r;
	int error;

	*behind = true;
	if (!(r = run(PB(b), S_BEHIND, NULL, "cannot read the index state", &error)))
		return error;
	*behind = PQntuples(r) == 1 && *PQgetvalue(r, 0, 0) != 0;
	PQclear(r);
	return 0;
}

/*
 * NEAR("a" "b", N) after "NEAR" (p at its parenthesis) as tsquery: the two
 * words at most N words apart, in either order, as FTS5 means it, which is
 * one of 'a' <d> 'b' and 'b' <d> 'a' for d up to N + 1 (N is 10 when not
 * given). Only two phrases, what the pager's query asks (docs/pager.md,
 * "Query fault-in"); anything else is a syntax error (1). A phrase is one
 * word as the pager writes it, but the cut may make it more (a byte that
 * is not UTF-8 separates: Latin-1 "caf\xe9s" is caf, s) or none. On success
 * *end is past the closing parenthesis, and each phrase's words are in
 * out[0] and out[1], separated by spaces (empty: none).
 */
static int near_words(cmv_buf out[2], long *distance, const char **end, const char *p)
{
	int n = 0;
	*distance = 10;
	p++;
	while (*p == ' ')
		p++;
	for (; *p == '"' && n < 2; n++) {
		const char *s = ++p;
		while (*p && *p != '"')
			p++;
		if (*p != '"')
			return 1;
		cmv_buf_clear(&out[n]);
		if (cmv_buf_puts(&out[n], "") < 0 || words_append(&out[n], s, (size_t)(p - s), false) < 0)
			return -1;
		for (p++; *p == ' '; p++)
			;
	}
	if (n != 2)
		return 1;
	if (*p == ',') {
		char *e;
		for (p++; *p == ' '; p++)
			;
		if (*p < '0' || *p > '9')
			return 1;
		*distance = strtol(p, &e, 10);
		if (*distance > 1000)
			return 1;
		for (p = e; *p == ' '; p++)
			;
	}
	if (*p != ')')
		return 1;
	*end = p + 1;
	return 0;
}

/*
 * An operand dropped (no word in it) takes the operator before it along:
 * "a OR <none>" is "a", not a dangling "|" (a syntax error).
 */
static void drop_operator(cmv_buf *tsq, bool *op_pending, size_t op_at, bool *expect, bool *negate)
{
	if (!*op_pending)
		return;
	tsq->size = op_at;
	tsq->ptr[op_at] = '\0';
	*op_pending = false;
	*expect = false;
	*negate = false;
}

/*
 * FTS5 query syntax to tsquery: "a phrase" -> ('a' <-> 'phrase'), word* ->
 * 'word':*, NEAR("a" "b", N) (near_words), AND / OR / NOT / ( ) as FTS5
 * means them, juxtaposition is AND. `terms` gets the words not under NOT:
 * what BM25 scores.
 */
static int fts_to_tsquery(cmv_buf *tsq, cmv_buf *terms, const char *q)
{
	cmv_buf words = CMV_BUF_INIT(CMV_BUF_CONTENT);
	bool expect = true, negate = false; /* expecting an operand; the next operand is under NOT */
	bool op_pending = false;            /* an operator written, its operand not yet: tsq was op_at long before it */
	size_t op_at = 0;
	int depth = 0, operands = 0, error = 0;
	const char *p = q;

	cmv_buf_clear(tsq);
	cmv_buf_clear(terms);
	cmv_buf_puts(tsq, "");
	cmv_buf_puts(terms, "");
	while (*p && !error) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			p++;
			continue;
		}
		if (*p == '(' || *p == ')') {
			if (*p == '(') {
				if (!expect)
					error = cmv_buf_puts(tsq, " & ");
				expect = true;
				op_pending = false;
				depth++;
				if (!error)
					error = cmv_buf_putc(tsq, '(');
			} else {
				if (expect || depth == 0)
					goto syntax;
				depth--;
				error = cmv_buf_putc(tsq, ')');
			}
			p++;
			continue;
		}
		cmv_buf_clear(&words);
		if (*p == '"') {
			/* a phrase; "" inside is a quote */
			p++;
			for (;;) {
				if (!*p)
					goto syntax;
				if (*p == '"' && p[1] == '"') {
					p += 2;
					continue;
				}
				if (*p == '"')
					break;
				const char *s = p;
				while (*p && *p != '"')
					p++;
				if ((error = words_append(&words, s, (size_t)(p - s), false)) < 0)
					goto done;
			}
			p++;
		} else {
			const char *s = p;
			while (*p && !strchr(" \t\r\n()\"*", *p))
				p++;
			size_t n = (size_t)(p - s);
			bool op_and = n == 3 && !strncmp(s, "AND", 3), op_or = n == 2 && !strncmp(s, "OR", 2),
			     op_not = n == 3 && !strncmp(s, "NOT", 3);
			if (op_and || op_or || op_not) {
				if (expect)
					goto syntax;
				op_at = tsq->size;
				op_pending = true;
				error = cmv_buf_puts(tsq, op_or ? " | " : op_not ? " & !" : " & ");
				expect = true;
				negate = op_not;
				continue;
			}
			if (n == 4 && !strncmp(s, "NEAR", 4) && *p == '(') {
				cmv_buf near[2] = { CMV_BUF_INIT(CMV_BUF_CONTENT), CMV_BUF_INIT(CMV_BUF_CONTENT) };
				cmv_buf side[2] = { CMV_BUF_INIT(CMV_BUF_CONTENT), CMV_BUF_INIT(CMV_BUF_CONTENT) };
				long distance;
				int bad = near_words(near, &distance, &p, p);
				bool empty = false;
				if (bad < 0)
					error = cmv_error__oom();
				/* each phrase as its words in a row ('caf' <-> 's'), as a phrase operand is */
				for (int k = 0; k < 2 && !bad && !error; k++) {
					size_t n_tok = 0;
					char *save = NULL;
					error = cmv_buf_puts(&side[k], "(");
					for (char *tok = strtok_r(near[k].ptr, " ", &save); tok && !error; tok = strtok_r(NULL, " ", &save)) {
						error = cmv_buf_printf(&side[k], "%s'%s'", n_tok++ ? " <-> " : "", tok);
						if (!error && !negate)
							error = cmv_buf_printf(terms, "%s%s", terms->size ? " " : "", tok);
					}
					if (!error)
						error = cmv_buf_putc(&side[k], ')');
					empty = empty || !n_tok;
				}
				if (!bad && !error && !empty) {
					if (!expect)
						error = cmv_buf_puts(tsq, " & ");
					if (!error)
						error = cmv_buf_putc(tsq, '(');
					for (long d = 1; d <= distance + 1 && !error; d++)
						error = cmv_buf_printf(tsq, "%s%s <%ld> %s | %s <%ld> %s", d > 1 ? " | " : "", side[0].ptr,
								       d, side[1].ptr, side[1].ptr, d, side[0].ptr);
					if (!error)
						error = cmv_buf_putc(tsq, ')');
				}
				for (int k = 0; k < 2; k++) {
					cmv_buf_dispose(&near[k]);
					cmv_buf_dispose(&side[k]);
				}
				if (error)
					goto done;
				if (bad)
					goto syntax;
				if (empty) { /* a phrase of no word: FTS5 matches nothing for it; dropped, as a phrase is */
					drop_operator(tsq, &op_pending, op_at, &expect, &negate);
					continue;
				}
				expect = false;
				negate = false;
				op_pending = false;
				operands++;
				continue;
			}
			if (n == 0 || memchr(s, ':', n) || memchr(s, '^', n) || memchr(s, '+', n) ||
			    (n == 4 && !strncmp(s, "NEAR", 4)))
				goto syntax;
			if ((error = words_append(&words, s, n, false)) < 0)
				goto done;
		}
		bool prefix = *p == '*';
		if (prefix)
			p++;
		/* the phrase's words, each quoted, joined by "followed by" */
		size_t before = tsq->size;
		bool any = false;
		char *w = words.ptr, *save = NULL;
		if (!expect)
			error = cmv_buf_puts(tsq, " & ");
		if (!error)
			error = cmv_buf_putc(tsq, '(');
		for (char *tok = w ? strtok_r(w, " ", &save) : NULL; tok && !error; tok = strtok_r(NULL, " ", &save)) {
			error = cmv_buf_printf(tsq, "%s'%s'", any ? " <-> " : "", tok);
			if (!error && !negate)
				error = cmv_buf_printf(terms, "%s%s", terms->size ? " " : "", tok);
			any = true;
		}
		if (!error && any && prefix)
			error = cmv_buf_puts(tsq, ":*");
		if (!error)
			error = cmv_buf_putc(tsq, ')');
		if (!any) {
			/* no word in it (punctuation only): FTS5 matches nothing for it; drop it */
			tsq->size = before;
			tsq->ptr[before] = '\0';
			drop_operator(tsq, &op_pending, op_at, &expect, &negate);
			continue;
		}
		expect = false;
		negate = false;
		op_pending = false;
		operands++;
	}
	if (error)
		goto done;
	if (expect && operands)
		goto syntax;
	if (depth)
		goto syntax;
	error = operands ? 0 : CMV_ENOTFOUND;
	goto done;
syntax:
	error = cmv_error__set(CMV_EINVALID, "bad search query '%s': not FTS5 syntax this store supports", q);
done:
	cmv_buf_dispose(&words);
	return error;
}

static int pg_search(cmv_store_backend *b, const char *query, size_t limit,
		     int (*cb)(const cmv_id *, double, void *), void *payload)
{
	pg_backend *pb = PB(b);
	cmv_buf tsq = CMV_BUF_INIT(CMV_BUF_CONTENT), terms = CMV_BUF_INIT(CMV_BUF_CONTENT);
	params p = { 0 };
	PGresult *r;
	int error;

	if ((error = fts_to_tsquery(&tsq, &terms, query)) < 0) {
		if (error == CMV_ENOTFOUND)
			error = 0; /* no word at all: nothing matches */
		goto done;
	}
	p_text(&p, tsq.ptr);
	p_text(&p, terms.ptr);
	if (limit)
		p_int(&p, (long long)limit);
	else
		p_null(&p);
	if (!(r = run(pb, S_SEARCH, &p, "bad search query", &error)))
		goto done;
	/* the rows are all here: callbacks may use the store */
	for (int i = 0; i < PQntuples(r) && !error; i++) {
		cmv_id id;
		r_id(&id, r, i, 0);
		error = cb(&id, r_double(r, i, 1), payload);
	}
	PQclear(r);
done:
	cmv_buf_dispose(&tsq);
	cmv_buf_dispose(&terms);
	return error;
}

static int pg_search_count(cmv_store_backend *b, const char *const *queries, size_t n, uint64_t *n_match,
			   uint64_t *n_indexed)
{
	pg_backend *pb = PB(b);
	cmv_buf tsq = CMV_BUF_INIT(CMV_BUF_CONTENT), terms = CMV_BUF_INIT(CMV_BUF_CONTENT);
	PGresult *r;
	int error = 0;
	bool counted = false;

	*n_indexed = 0;
	/* each row has N too; with no query of a word, one more round asks for it alone */
	for (size_t i = 0; (i < n || !counted) && !error; i++) {
		params p = { 0 };
		cmv_buf_clear(&tsq);
		cmv_buf_clear(&terms);
		if (i < n && (error = fts_to_tsquery(&tsq, &terms, queries[i])) == CMV_ENOTFOUND) {
			error = 0; /* no word at all: nothing matches */
			n_match[i] = 0;
			continue;
		}
		if (error < 0)
			break;
		p_text(&p, i < n ? tsq.ptr : "");
		if (!(r = run(pb, S_SEARCH_COUNT, &p, "bad search query", &error)))
			break;
		if (i < n)
			n_match[i] = (uint64_t)r_int(r, 0, 0);
		*n_indexed = (uint64_t)r_int(r, 0, 1);
		counted = true;
		PQclear(r);
	}
	cmv_buf_dispose(&tsq);
	cmv_buf_dispose(&terms);
	return error;
}

static int pg_blob_users(cmv_store_backend *b, const cmv_id *blob, int (*cb)(const cmv_id *, size_t, void *),
			 void *payload)
{
	params p = { 0 };
	PGresult *r;
	int error = 0;

	p_id(&p, blob);
	if (!(r = run(PB(b), S_BLOB_USERS, &p, "cannot find the users of a blob", &error)))
		return error;
	for (int i = 0; i < PQntuples(r) && !error; i++) {
		cmv_id id;
		r_id(&id, r, i, 0);
		error = cb(&id, (size_t)r_int(r, i, 1), payload);
	}
	PQclear(r);
	return error;
}

/* ---- token cache ------------------------------------------------------------ */

static int pg_tokcache_get(cmv_store_backend *b, uint64_t *out, const cmv_id *blob, const char *tokenizer)
{
	params p = { 0 };
	PGresult *r;
	int error;

	p_id(&p, blob);
	p_text(&p, tokenizer);
	if (!(r = run(PB(b), S_TOK_GET, &p, "cannot read the token cache", &error)))
		return error;
	if (PQntuples(r) == 0)
		error = CMV_ENOTFOUND; /* a cache miss is routine: no message */
	else
		*out = (uint64_t)r_int(r, 0, 0);
	PQclear(r);
	return error;
}

static int pg_tokcache_put(cmv_store_backend *b, const cmv_id *blob, const char *tokenizer, uint64_t count)
{
	params p = { 0 };

	p_id(&p, blob);
	p_text(&p, tokenizer);
	p_int(&p, (long long)count);
	return run_done(PB(b), S_TOK_PUT, &p, "cannot write the token cache", NULL);
}

/* ---- stats and integrity ---------------------------------------------------- */

static int pg_stats(cmv_store_backend *b, cmv_store_stats *out)
{
	PGresult *r;
	int error;

	memset(out, 0, sizeof(*out));
	if (!(r = run(PB(b), S_STATS, NULL, "cannot count rows", &error)))
		return error;
	out->n_blobs = (uint64_t)r_int(r, 0, 0);
	out->blob_bytes = (uint64_t)r_int(r, 0, 1);
	out->n_nodes = (uint64_t)r_int(r, 0, 2);
	out->n_blocks = (uint64_t)r_int(r, 0, 3);
	out->n_edges = (uint64_t)r_int(r, 0, 4);
	out->n_refs = (uint64_t)r_int(r, 0, 5);
	out->n_other_rows = (uint64_t)r_int(r, 0, 6);
	out->file_bytes = (uint64_t)r_int(r, 0, 7);
	PQclear(r);
	return 0;
}

static int pg_integrity(cmv_store_backend *b, size_t *n_problems, int (*cb)(const char *, void *), void *payload)
{
	PGresult *r;
	int error = 0;

	*n_problems = 0;
	if (!(r = run(PB(b), S_CHECK, NULL, "cannot check the store", &error)))
		return error;
	for (int i = 0; i < PQntuples(r) && !error; i++) {
		(*n_problems)++;
		if (cb)
			error = cb(PQgetvalue(r, i, 0), payload);
	}
	PQclear(r);
	return error;
}

/* ---- plans, for tests -------------------------------------------------------- */

/*
 * EXPLAIN of the statement a search of `query` runs (S_SEARCH), a count
 * (S_SEARCH_COUNT), the check before each search (S_BEHIND: "index_behind")
 * or the indexer's (S_PENDING: "pending"), on this connection, as the plan
 * cache would run it: its custom plan, or with `generic` its generic one
 * (what a prepared statement may switch to after five runs). The plan's
 * text into `plan`.
 */
int cmv_dag__pg_explain(cmv_buf *plan, cmv_store_backend *b, const char *what, const char *query, bool generic)
{
	pg_backend *pb = PB(b);
	cmv_buf tsq = CMV_BUF_INIT(CMV_BUF_CONTENT), terms = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_buf sql = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int sid = !strcmp(what, "search") ? S_SEARCH : !strcmp(what, "search_count") ? S_SEARCH_COUNT
		: !strcmp(what, "index_behind") ? S_BEHIND : !strcmp(what, "pending") ? S_PENDING : -1;
	char *l1 = NULL, *l2 = NULL;
	PGresult *r = NULL;
	int error;

	if (strcmp(b->name, "postgresql") || sid < 0)
		return cmv_error__set(CMV_EINVALID, "no plan to explain for '%s' on a %s store", what, b->name);
	cmv_buf_clear(plan);
	if ((sid == S_SEARCH || sid == S_SEARCH_COUNT) && (error = fts_to_tsquery(&tsq, &terms, query)) < 0)
		goto done;
	if (!pb->prepared[sid]) { /* prepared as a search prepares it */
		char name[16];
		snprintf(name, sizeof(name), "cmv%d", sid);
		r = PQprepare(pb->conn, name, stmt_sql[sid], 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			error = pg_error_msg(pb, r, "cannot prepare");
			goto done;
		}
		PQclear(r);
		r = NULL;
		pb->prepared[sid] = true;
	}
	if ((sid == S_SEARCH || sid == S_SEARCH_COUNT) &&
	    (!(l1 = PQescapeLiteral(pb->conn, tsq.ptr, tsq.size)) ||
	     !(l2 = PQescapeLiteral(pb->conn, terms.ptr, terms.size)))) {
		error = pg_error_msg(pb, NULL, "cannot quote a query");
		goto done;
	}
	if ((error = cmv_buf_printf(&sql, "SET plan_cache_mode = %s; EXPLAIN EXECUTE cmv%d",
				    generic ? "force_generic_plan" : "force_custom_plan", sid)) < 0 ||
	    (sid == S_SEARCH && (error = cmv_buf_printf(&sql, "(%s, %s, 20)", l1, l2)) < 0) ||
	    (sid == S_SEARCH_COUNT && (error = cmv_buf_printf(&sql, "(%s)", l1)) < 0) ||
	    (sid == S_PENDING && (error = cmv_buf_printf(&sql, "(%d)", PG_INDEX_BATCH)) < 0))
		goto done;
	r = PQexec(pb->conn, sql.ptr);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		error = pg_error_msg(pb, r, "cannot explain");
		goto done;
	}
	for (int i = 0; i < PQntuples(r) && !error; i++)
		error = cmv_buf_printf(plan, "%s\n", PQgetvalue(r, i, 0));
done:
	PQclear(r);
	PQclear(PQexec(pb->conn, "RESET plan_cache_mode"));
	PQfreemem(l1);
	PQfreemem(l2);
	cmv_buf_dispose(&tsq);
	cmv_buf_dispose(&terms);
	cmv_buf_dispose(&sql);
	return error;
}

/* ---- open and close --------------------------------------------------------- */

static void pg_free(cmv_store_backend *b)
{
	pg_backend *pb = PB(b);

	if (!pb)
		return;
	if (pb->conn)
		PQfinish(pb->conn); /* an open transaction dies with the session */
	log_clear(pb);
	free(pb->log);
	free(pb->where);
	cmv_buf_dispose(&pb->scratch);
	cmv_buf_dispose(&pb->scratch2);
	free(pb);
}

static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static int migrate(pg_backend *pb, unsigned int flags)
{
	PGresult *r;
	int version = -1, error;
	const int latest = (int)CMV_ARRAY_SIZE(migrations);
	char sql[96];

	/* Exclusive: two hosts running `cmv init` at once create the schema once. */
	if ((error = exec_simple(pb, "BEGIN; SELECT pg_advisory_xact_lock(" PG_LOCK_KEY ")",
				 "cannot lock the store to open it")) < 0)
		return error;
	r = PQexec(pb->conn, "SELECT to_regclass('cmv_schema') IS NOT NULL, to_regclass('blobs') IS NOT NULL"
			     " OR to_regclass('nodes') IS NOT NULL OR to_regclass('refs') IS NOT NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		error = pg_error_msg(pb, r, "cannot read the schema");
		PQclear(r);
		goto fail;
	}
	bool has_schema = *PQgetvalue(r, 0, 0) == 't', has_tables = *PQgetvalue(r, 0, 1) == 't';
	PQclear(r);
	if (!has_schema) {
		if (has_tables) {
			error = cmv_error__set(CMV_ECORRUPT, "'%s' has tables of another program; not a cmv store",
					       pb->where);
			goto fail;
		}
		if (!(flags & CMV_REPO_OPEN_CREATE)) {
			error = cmv_error__set(CMV_ENOTFOUND, "no cmv store in '%s' (run 'cmv init' with its URL)",
					       pb->where);
			goto fail;
		}
		if ((error = exec_simple(pb, "CREATE TABLE cmv_schema(version integer NOT NULL);"
					     " INSERT INTO cmv_schema VALUES(0)",
					 "cannot create the store")) < 0)
			goto fail;
	}
	r = PQexec(pb->conn, "SELECT version FROM cmv_schema");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		version = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (version < 0) {
		error = cmv_error__set(CMV_ECORRUPT, "'%s': cmv_schema holds no version", pb->where);
		goto fail;
	}
	if (version > latest) {
		error = cmv_error__set(CMV_EVERSION, "store '%s' has schema version %d; this cmv knows up to %d",
				       pb->where, version, latest);
		goto fail;
	}
	if (version < latest && pb->readonly) {
		error = cmv_error__set(CMV_EVERSION, "store '%s' needs an upgrade; open it for writing", pb->where);
		goto fail;
	}
	for (int v = version; v < latest; v++)
		if ((error = exec_simple(pb, migrations[v], "cannot upgrade the schema")) < 0)
			goto fail;
	snprintf(sql, sizeof(sql), "UPDATE cmv_schema SET version = %d", latest);
	if (version < latest && (error = exec_simple(pb, sql, "cannot upgrade the schema")) < 0)
		goto fail;
	return exec_simple(pb, "COMMIT", "cannot open the store");
fail:
	PQclear(PQexec(pb->conn, "ROLLBACK"));
	return error;
}

static const cmv_store_backend pg_backend_template = {
	.version = CMV_STORE_BACKEND_VERSION,
	.name = "postgresql",
	.capabilities = CMV_STORE_CAP_FTS | CMV_STORE_CAP_CONCURRENT | CMV_STORE_CAP_PERSISTENT,
	.txn_begin = pg_txn_begin,
	.txn_commit = pg_txn_commit,
	.txn_rollback = pg_txn_rollback,
	.blob_put = pg_blob_put,
	.blob_get = pg_blob_get,
	.blob_exists = pg_blob_exists,
	.node_put = pg_node_put,
	.node_get = pg_node_get,
	.node_parent = pg_node_parent,
	.ref_get = pg_ref_get,
	.ref_put = pg_ref_put,
	.ref_delete = pg_ref_delete,
	.ref_foreach = pg_ref_foreach,
	.config_get = pg_config_get,
	.config_set = pg_config_set,
	.lookup_prefix = pg_lookup_prefix,
	.object_foreach = pg_object_foreach,
	.object_delete = pg_object_delete,
	.index_pending = pg_index_pending,
	.index_behind = pg_index_behind,
	.search = pg_search,
	.search_count = pg_search_count,
	.blob_users = pg_blob_users,
	.tokcache_get = pg_tokcache_get,
	.tokcache_put = pg_tokcache_put,
	.state_get = pg_state_get,
	.state_set = pg_state_set,
	.state_drop = pg_state_drop,
	.usage_begin = pg_usage_begin,
	.usage_add = pg_usage_add,
	.usage_foreach = pg_usage_foreach,
	.stats = pg_stats,
	.integrity = pg_integrity,
	.free = pg_free,
};

int cmv_store_pg_open(cmv_store_backend **out, const char *url, unsigned int flags)
{
	pg_backend *pb;
	cmv_buf where = CMV_BUF_INIT(4096);
	long timeout_ms = 30000;
	const char *env;
	char sql[160];
	int error;

	*out = NULL;
	if (!(pb = cmv__calloc(1, sizeof(*pb))))
		return cmv_error__oom();
	pb->parent = pg_backend_template;
	cmv_buf_init(&pb->scratch, (size_t)64 << 20);
	cmv_buf_init(&pb->scratch2, (size_t)64 << 20);
	pb->readonly = (flags & CMV_REPO_OPEN_READONLY) != 0;
	if ((error = cmv_store_display(&where, url)) < 0 || !(pb->where = cmv_buf_detach(&where))) {
		cmv_buf_dispose(&where);
		pg_free(&pb->parent);
		return error < 0 ? error : cmv_error__oom();
	}
	pb->conn = PQconnectdb(url);
	if (!pb->conn || PQstatus(pb->conn) != CONNECTION_OK) {
		const char *msg = pb->conn ? PQerrorMessage(pb->conn) : "out of memory";
		int n = (int)strlen(msg);
		while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			n--;
		error = cmv_error__set(CMV_EIO, "cannot connect to store '%s': %.*s", pb->where, n, msg);
		goto fail;
	}
	PQsetNoticeProcessor(pb->conn, quiet_notices, NULL);
	if ((env = getenv("CMV_BUSY_TIMEOUT_MS")) && *env)
		timeout_ms = strtol(env, NULL, 10);
	/* the busy timeout of SQLite, as PostgreSQL's lock wait */
	/*
	 * No JIT: every statement here is short, and compiling one (a search on
	 * a few hundred rows) took 1.8 s of a 2.1 s query.
	 */
	snprintf(sql, sizeof(sql), "SET client_encoding = 'UTF8'; SET jit = off; SET lock_timeout = %ld;%s", timeout_ms,
		 pb->readonly ? " SET default_transaction_read_only = on" : "");
	if ((error = exec_simple(pb, sql, "cannot configure the session")) < 0 ||
	    (error = migrate(pb, flags)) < 0)
		goto fail;
	*out = &pb->parent;
	return 0;
fail:
	pg_free(&pb->parent);
	return error;
}

#endif
