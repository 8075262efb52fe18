/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store backend: one file in WAL mode, FTS5 for search.
 *
 * Design notes
 *  - Blobs and nodes live in rowid tables with a UNIQUE index on the 16-byte
 *    id; large rows do badly in WITHOUT ROWID tables, small ones (blocks,
 *    edges, the token cache) use them.
 *  - A node's block list lives in its row, encoded as in the node's
 *    canonical bytes (object.c): reading a node is one row, not a join.
 *    blob_users maps each blob back to the nodes using it (for search);
 *    blocks name blobs by id, not rowid, so fsck can find a missing blob.
 *  - nodes.n_edges says whether the edges table has rows for the node, so
 *    the common node (no derived_from, covers or includes) costs no second
 *    query. edges.kind is 1 derived_from, 2 covers, 3 includes.
 *  - The search index is a contentless FTS5 table keyed by the blob's rowid:
 *    the text already lives in `blobs`, so it is not stored twice. Deleting
 *    from it needs the original text, which gc has (it deletes the blob in
 *    the same step).
 *  - Indexing is deferred: a text blob is written as pending and indexed in
 *    one batch by index_pending(), which search runs first. FTS5 is about a
 *    third of the instructions of an append (measured with callgrind), and
 *    appends are on an agent's hot path while searches are not. Pending
 *    blobs are found by rowid above a watermark, so no extra index is kept.
 *    SQLite gives a new row max(rowid) + 1, so when gc deletes the newest
 *    blobs it lowers the watermark to the new maximum: a later blob can
 *    then never land at or below it.
 *  - Writers take the lock at BEGIN (BEGIN IMMEDIATE) and wait for it up to
 *    the busy timeout, so two processes appending to one branch serialise
 *    instead of failing on a lock upgrade.
 *  - synchronous=NORMAL in WAL mode: a commit survives a process crash
 *    (the kill test); only a power loss can drop the last commits, never
 *    corrupt the file.
 *  - Servers take checkpoints, and the WAL restart that follows one, off
 *    their requests: a thread with its own connection runs them
 *    (cmv_repo_checkpoint_background, at the end of this file;
 *    docs/store.md, "Checkpoints").
 *
 * Invariants
 *  1. PRAGMA user_version is the schema version; migrations only go forward
 *     and each runs in the transaction that bumps the version.
 *  2. blobs.indexed is 0 for content that is never indexed (images), 2 for
 *     text waiting to be indexed, 1 exactly when the text is in the FTS
 *     table. Every blob with indexed = 2 has a rowid above the watermark
 *     kept in config under "fts_watermark".
 *  3. A node row never exists without all of its blocks and edges: they are
 *     written together in node_put, inside the caller's transaction.
 *  4. The index changes only by indexing text above the watermark, or in a
 *     transaction that also moves the epoch in config ("fts_epoch"): what
 *     is indexed at or below a watermark once read stays so while the
 *     epoch holds (the search caches rest on it: index_state).
 */
#include <pthread.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include "repo.h"

#define SQLITE_APP_ID 0x636d7601 /* "cmv\1" */
#define BUSY_TIMEOUT_MS_DEFAULT 30000

static const char *const migrations[] = {
	/* version 1 */
	"CREATE TABLE blobs(rid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
	" size INTEGER NOT NULL, indexed INTEGER NOT NULL DEFAULT 0, data BLOB NOT NULL);"
	"CREATE TABLE nodes(rid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, parent BLOB,"
	" role INTEGER NOT NULL, kind INTEGER NOT NULL, depth INTEGER NOT NULL, meta BLOB,"
	" blocks BLOB NOT NULL, n_edges INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE blob_users(blob BLOB NOT NULL, node INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" PRIMARY KEY(blob, node, seq)) WITHOUT ROWID;"
	"CREATE TABLE edges(node INTEGER NOT NULL, kind INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" target BLOB NOT NULL, PRIMARY KEY(node, kind, seq)) WITHOUT ROWID;"
	"CREATE INDEX edges_target ON edges(target);"
	"CREATE TABLE refs(name TEXT PRIMARY KEY, type INTEGER NOT NULL, target BLOB,"
	" description TEXT, tags TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL,"
	" from_ref TEXT);"
	"CREATE TABLE config(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE tokcache(blob BLOB NOT NULL, tokenizer TEXT NOT NULL,"
	" count INTEGER NOT NULL, PRIMARY KEY(blob, tokenizer)) WITHOUT ROWID;"
	"CREATE TABLE branch_state(branch TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
	" PRIMARY KEY(branch, key)) WITHOUT ROWID;"
	"CREATE TABLE usage_segments(rid INTEGER PRIMARY KEY, branch TEXT NOT NULL,"
	" signature TEXT NOT NULL, start_node BLOB, start_turn INTEGER NOT NULL,"
	" started INTEGER NOT NULL, calls INTEGER NOT NULL DEFAULT 0,"
	" input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,"
	" cache_read_tokens INTEGER NOT NULL DEFAULT 0,"
	" cache_write_tokens INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX usage_branch ON usage_segments(branch, rid);"
	"CREATE VIRTUAL TABLE fts USING fts5(text, content='',"
	" tokenize='unicode61 remove_diacritics 2');",
	/*
	 * version 2: Porter stemming ("painted" finds "paint"; 2 to 3 points of
	 * recall on LoCoMo). The index is built again from the blobs, lazily:
	 * every indexed text is pending again, above a watermark of 0.
	 */
	"DROP TABLE fts;"
	"CREATE VIRTUAL TABLE fts USING fts5(text, content='',"
	" tokenize='porter unicode61 remove_diacritics 2');"
	"UPDATE blobs SET indexed = 2 WHERE indexed = 1;"
	"DELETE FROM config WHERE key = 'fts_watermark';",
	/*
	 * version 3: branch notes in a rowid table with the key in an index of
	 * its own. A WITHOUT ROWID row lives in the key's b-tree, and a seek
	 * compares whole rows: with the pager's kept requests (hundreds of KB)
	 * among them, each lookup copied them in, 1.7 ms a read on a 1M-token
	 * history, where the keys alone take microseconds.
	 */
	"CREATE TABLE branch_state_v3(branch TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
	" UNIQUE(branch, key));"
	"INSERT INTO branch_state_v3(branch, key, value) SELECT branch, key, value FROM branch_state;"
	"DROP TABLE branch_state;"
	"ALTER TABLE branch_state_v3 RENAME TO branch_state;",
};

enum stmt_id {
	S_BEGIN_W, S_BEGIN_R, S_COMMIT, S_ROLLBACK,
	S_BLOB_INS, S_BLOB_META, S_BLOB_GET, S_BLOB_EXISTS, S_BLOB_SETIDX, S_FTS_INS, S_FTS_DEL,
	S_BLOB_DEL, S_TOK_DEL,
	S_NODE_INS, S_USER_INS, S_EDGE_INS, S_NODE_GET, S_EDGES_GET, S_NODE_PARENT,
	S_NODE_DEL, S_USER_DEL, S_EDGES_DEL,
	S_REF_GET, S_REF_INS, S_REF_UPD, S_REF_UPD_CAS, S_REF_DEL, S_REF_ALL,
	S_CFG_GET, S_CFG_SET, S_CFG_DEL,
	S_PREFIX_BLOB, S_PREFIX_NODE, S_ALL_BLOBS, S_ALL_NODES,
	S_SEARCH, S_SEARCH_OWN, S_SEARCH_COUNT, S_INDEXED_COUNT, S_DATA_VERSION, S_BLOB_USERS,
	S_SEARCH_COUNT_SINCE, S_INDEXED_COUNT_SINCE, S_INDEX_STATE, S_EPOCH_BUMP,
	S_TOK_GET, S_TOK_PUT,
	S_STATE_GET, S_STATE_SET, S_STATE_DEL, S_STATE_DROP, S_USAGE_DROP,
	S_USAGE_INS, S_USAGE_ADD, S_USAGE_ALL,
	S_PENDING, S_PENDING_DONE, S_BLOB_SETPENDING,
	S__COUNT
};

static const char *const stmt_sql[S__COUNT] = {
	[S_BEGIN_W] = "BEGIN IMMEDIATE",
	[S_BEGIN_R] = "BEGIN",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_BLOB_INS] = "INSERT INTO blobs(id, size, indexed, data) VALUES(?1, ?2, ?3, ?4)"
		       " ON CONFLICT(id) DO NOTHING",
	[S_BLOB_META] = "SELECT rid, indexed FROM blobs WHERE id = ?1",
	[S_BLOB_GET] = "SELECT data FROM blobs WHERE id = ?1",
	[S_BLOB_EXISTS] = "SELECT 1 FROM blobs WHERE id = ?1",
	[S_BLOB_SETIDX] = "UPDATE blobs SET indexed = 1 WHERE rid = ?1",
	[S_BLOB_SETPENDING] = "UPDATE blobs SET indexed = 2 WHERE rid = ?1",
	[S_PENDING] = "SELECT rid, data FROM blobs WHERE rid > ?1 AND indexed = 2 ORDER BY rid",
	[S_PENDING_DONE] = "UPDATE blobs SET indexed = 1 WHERE rid > ?1 AND rid <= ?2 AND indexed = 2",
	[S_FTS_INS] = "INSERT INTO fts(rowid, text) VALUES(?1, ?2)",
	[S_FTS_DEL] = "INSERT INTO fts(fts, rowid, text) VALUES('delete', ?1, ?2)",
	[S_BLOB_DEL] = "DELETE FROM blobs WHERE rid = ?1",
	[S_TOK_DEL] = "DELETE FROM tokcache WHERE blob = ?1",
	[S_NODE_INS] = "INSERT INTO nodes(id, parent, role, kind, depth, meta, blocks, n_edges)"
		       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(id) DO NOTHING",
	[S_USER_INS] = "INSERT OR IGNORE INTO blob_users(blob, node, seq) VALUES(?1, ?2, ?3)",
	[S_EDGE_INS] = "INSERT INTO edges(node, kind, seq, target) VALUES(?1, ?2, ?3, ?4)",
	[S_NODE_GET] = "SELECT rid, parent, role, kind, depth, meta, blocks, n_edges FROM nodes"
		       " WHERE id = ?1",
	[S_EDGES_GET] = "SELECT kind, target FROM edges WHERE node = ?1 ORDER BY kind, seq",
	[S_NODE_PARENT] = "SELECT parent, depth FROM nodes WHERE id = ?1",
	[S_NODE_DEL] = "DELETE FROM nodes WHERE rid = ?1",
	[S_USER_DEL] = "DELETE FROM blob_users WHERE blob = ?1 AND node = ?2 AND seq = ?3",
	[S_EDGES_DEL] = "DELETE FROM edges WHERE node = ?1",
	[S_REF_GET] = "SELECT name, type, target, description, tags, created, updated, from_ref"
		      " FROM refs WHERE name = ?1",
	[S_REF_INS] = "INSERT INTO refs(name, type, target, description, tags, created, updated,"
		      " from_ref) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_REF_UPD] = "UPDATE refs SET target = ?2, updated = ?3 WHERE name = ?1",
	[S_REF_UPD_CAS] = "UPDATE refs SET target = ?2, updated = ?3 WHERE name = ?1"
			  " AND target IS ?4",
	[S_REF_DEL] = "DELETE FROM refs WHERE name = ?1",
	[S_REF_ALL] = "SELECT name, type, target, description, tags, created, updated, from_ref"
		      " FROM refs ORDER BY created, rowid",
	[S_CFG_GET] = "SELECT value FROM config WHERE key = ?1",
	[S_CFG_SET] = "INSERT INTO config(key, value) VALUES(?1, ?2)"
		      " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
	[S_CFG_DEL] = "DELETE FROM config WHERE key = ?1",
	[S_PREFIX_BLOB] = "SELECT id FROM blobs WHERE id BETWEEN ?1 AND ?2 ORDER BY id LIMIT ?3",
	[S_PREFIX_NODE] = "SELECT id FROM nodes WHERE id BETWEEN ?1 AND ?2 ORDER BY id LIMIT ?3",
	[S_ALL_BLOBS] = "SELECT id FROM blobs",
	[S_ALL_NODES] = "SELECT id FROM nodes",
	/*
	 * Ranked first, then joined: joined first, each matching row's id was
	 * read before the sort, a third of a query's time where a word is in
	 * most texts. Ties go by the row id, which is the order blobs came in.
	 */
	[S_SEARCH_COUNT] = "SELECT count(*) FROM fts WHERE fts MATCH ?1",
	/* one row per indexed text (FTS5 keeps each one's length), a b-tree count */
	[S_INDEXED_COUNT] = "SELECT count(*) FROM fts_docsize",
	[S_DATA_VERSION] = "PRAGMA data_version",
	/* the same counts over the texts indexed since (FTS5 seeks to a rowid; fts_docsize's key is it) */
	[S_SEARCH_COUNT_SINCE] = "SELECT count(*) FROM fts WHERE fts MATCH ?1 AND rowid > ?2 AND rowid <= ?3",
	[S_INDEXED_COUNT_SINCE] = "SELECT count(*) FROM fts_docsize WHERE id > ?1 AND id <= ?2",
	/* the watermark and the index's epoch (index_state), in one snapshot */
	[S_INDEX_STATE] = "SELECT (SELECT value FROM config WHERE key = 'fts_watermark'),"
			  " (SELECT value FROM config WHERE key = 'fts_epoch')",
	[S_EPOCH_BUMP] = "INSERT INTO config(key, value) VALUES('fts_epoch', '1')"
			 " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
	[S_SEARCH] = "SELECT b.id, f.score FROM (SELECT rowid AS r, bm25(fts) AS score FROM fts"
		     " WHERE fts MATCH ?1 ORDER BY score, r LIMIT ?2) f JOIN blobs b ON b.rid = f.r"
		     " ORDER BY f.score, f.r",
	/* the same with cmv_bm25 (below): the same scores, each text's length kept */
	[S_SEARCH_OWN] = "SELECT b.id, f.score FROM (SELECT rowid AS r, cmv_bm25(fts) AS score FROM fts"
			 " WHERE fts MATCH ?1 ORDER BY score, r LIMIT ?2) f JOIN blobs b ON b.rid = f.r"
			 " ORDER BY f.score, f.r",
	[S_BLOB_USERS] = "SELECT n.id, u.seq FROM blob_users u JOIN nodes n ON n.rid = u.node"
			 " WHERE u.blob = ?1 ORDER BY n.depth, n.id, u.seq",
	[S_TOK_GET] = "SELECT count FROM tokcache WHERE blob = ?1 AND tokenizer = ?2",
	[S_TOK_PUT] = "INSERT INTO tokcache(blob, tokenizer, count) VALUES(?1, ?2, ?3)"
		      " ON CONFLICT(blob, tokenizer) DO UPDATE SET count = excluded.count",
	[S_STATE_GET] = "SELECT rowid FROM branch_state WHERE branch = ?1 AND key = ?2",
	[S_STATE_SET] = "INSERT INTO branch_state(branch, key, value) VALUES(?1, ?2, ?3)"
			" ON CONFLICT(branch, key) DO UPDATE SET value = excluded.value",
	[S_STATE_DEL] = "DELETE FROM branch_state WHERE branch = ?1 AND key = ?2",
	[S_STATE_DROP] = "DELETE FROM branch_state WHERE branch = ?1",
	[S_USAGE_DROP] = "DELETE FROM usage_segments WHERE branch = ?1",
	[S_USAGE_INS] = "INSERT INTO usage_segments(branch, signature, start_node, start_turn,"
			" started) VALUES(?1, ?2, ?3, ?4, ?5)",
	[S_USAGE_ADD] = "UPDATE usage_segments SET calls = calls + ?2,"
			" input_tokens = input_tokens + ?3, output_tokens = output_tokens + ?4,"
			" cache_read_tokens = cache_read_tokens + ?5,"
			" cache_write_tokens = cache_write_tokens + ?6"
			" WHERE rid = (SELECT max(rid) FROM usage_segments WHERE branch = ?1)",
	[S_USAGE_ALL] = "SELECT signature, start_node, start_turn, started, calls, input_tokens,"
			" output_tokens, cache_read_tokens, cache_write_tokens"
			" FROM usage_segments WHERE branch = ?1 ORDER BY rid",
};

typedef struct sqlite_backend {
	cmv_store_backend parent;
	sqlite3 *db;
	char *path;
	bool readonly;
	bool in_txn; /* between a BEGIN that worked and its COMMIT or ROLLBACK */
	sqlite3_stmt *stmts[S__COUNT];
	cmv_buf scratch; /* encoded block lists */
	struct ckpt_thread *ckpt; /* background checkpoints, when a server asked for them */
	cmv_dag__ckpt_stats ckpt_last; /* the last thread's, once stopped */
	/*
	 * The index as last read (index_state): the watermark (every indexed
	 * rowid is at or below it) and the epoch, moved by every change to the
	 * index other than indexing above the watermark; read again when
	 * another connection committed or this handle wrote to the index.
	 */
	uint64_t fts_writes; /* this handle's writes to the index and rollbacks */
	uint64_t fts_drops;  /* of which changes to what is indexed at or below the watermark, and rollbacks */
	bool state_read;
	sqlite3_int64 state_version, state_wm, state_epoch;
	uint64_t state_writes;
	/*
	 * search_count's counts, each over the rowids up to its own mark, while
	 * the epoch holds (count_fresh). A query of one term (a word, quoted,
	 * as cmv_search_count writes it) is kept by its term too, and counted
	 * up as this handle indexes a text with the term (sq_index_pending).
	 */
	cmv__strmap counted; /* query -> its index in counts */
	cmv__strmap terms;   /* term -> its index in counts, for the queries of one term */
	struct kept_count {
		uint64_t n, add;            /* add: the texts being indexed that have the term */
		sqlite3_int64 upto, seen;   /* seen: the last such text */
		bool term;
	} *counts;
	size_t n_counts, cap_counts;
	struct kept_count total;
	uint64_t counted_drops;
	sqlite3_int64 counted_epoch;
	/* cmv_bm25's lengths of indexed texts by rowid, -1 unknown, while the epoch holds (bm25_lengths) */
	bool bm25_own;
	int *lengths;
	size_t n_lengths;
	uint64_t lengths_drops;
	sqlite3_int64 lengths_epoch;
	cmv_dag__search_cache_stats cache_stats;
	/* the index's tokenizer (the fts table's, as its migration names it), where FTS5 gives it */
	fts5_tokenizer tok_api;
	Fts5Tokenizer *tok;
	cmv_buf term;
	sqlite3_int64 fts_text; /* the text terms_follow reads */
} sqlite_backend;

#define SB(b) ((sqlite_backend *)(b))

static int sq_error(sqlite_backend *sb, int rc, const char *what)
{
	int code;

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		code = CMV_ELOCKED;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		code = CMV_ECORRUPT;
		break;
	case SQLITE_NOMEM:
		return cmv_error__oom();
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_PERM:
		code = CMV_EIO;
		break;
	case SQLITE_TOOBIG:
		code = CMV_ETOOBIG;
		break;
	default:
		code = CMV_ERROR;
	}
	return cmv_error__set(code, "%s in store '%s': %s", what, sb->path,
			      sb->db ? sqlite3_errmsg(sb->db) : sqlite3_errstr(rc));
}

static sqlite3_stmt *stmt(sqlite_backend *sb, enum stmt_id id)
{
	sqlite3_stmt *s = sb->stmts[id];
	int rc;

	/*
	 * SQLite rolls a whole transaction back by itself after some errors
	 * (out of memory, a full disk, I/O). A caller that goes on after such
	 * an error (a cache it could not fill) must not write the rest outside
	 * any transaction: nothing more runs until the caller rolls back.
	 */
	if (sb->in_txn && id != S_ROLLBACK && sqlite3_get_autocommit(sb->db)) {
		cmv_error__set(CMV_ERROR, "the transaction on store '%s' was rolled back after an earlier error",
			       sb->path);
		return NULL;
	}

	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return s;
	}
	rc = sqlite3_prepare_v3(sb->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK) {
		sq_error(sb, rc, "cannot prepare a statement");
		return NULL;
	}
	sb->stmts[id] = s;
	return s;
}

static void bind_id(sqlite3_stmt *s, int col, const cmv_id *id)
{
	if (!id || id->type == CMV_ID_NONE)
		sqlite3_bind_null(s, col);
	else
		sqlite3_bind_blob(s, col, id->raw, CMV_ID_RAWSZ, SQLITE_STATIC);
}

static void bind_text(sqlite3_stmt *s, int col, const char *t)
{
	if (t)
		sqlite3_bind_text(s, col, t, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, col);
}

static void column_id(cmv_id *out, sqlite3_stmt *s, int col)
{
	const void *p = sqlite3_column_blob(s, col);

	if (p && sqlite3_column_bytes(s, col) == CMV_ID_RAWSZ) {
		out->type = CMV_ID_XXH3_128;
		memcpy(out->raw, p, CMV_ID_RAWSZ);
	} else {
		cmv_id_clear(out);
	}
}

static const char *column_text(sqlite3_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(s, col);
}

/* Run a statement that returns no rows. */
static int exec_done(sqlite_backend *sb, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return sq_error(sb, rc, what);
	return 0;
}

static int exec_sql(sqlite_backend *sb, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(sb->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		int code = sq_error(sb, rc, what);
		sqlite3_free(msg);
		return code;
	}
	return 0;
}

/* ---- transactions ------------------------------------------------------ */

static void ckpt_gate(sqlite_backend *sb, bool lock);

static int sq_txn_begin(cmv_store_backend *b)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, sb->readonly ? S_BEGIN_R : S_BEGIN_W);
	int error;

	/* a write waits out the checkpoint thread's WAL restart, if one is running (see ckpt_restart) */
	ckpt_gate(sb, true);
	error = s ? exec_done(sb, s, "cannot begin a transaction") : CMV_ERROR;
	ckpt_gate(sb, false);
	sb->in_txn = error == 0;
	return error;
}

static int sq_txn_commit(cmv_store_backend *b)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_COMMIT);
	int error = s ? exec_done(sb, s, "cannot commit") : CMV_ERROR;

	if (error == 0)
		sb->in_txn = false;
	return error;
}

static int sq_txn_rollback(cmv_store_backend *b)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s;

	/* the index may be as it was before: search_count's kept counts and cmv_bm25's lengths go */
	sb->fts_writes++;
	sb->fts_drops++;
	/* After some errors SQLite has already rolled back by itself. */
	if (sqlite3_get_autocommit(sb->db)) {
		sb->in_txn = false;
		return 0;
	}
	s = stmt(sb, S_ROLLBACK);
	int error = s ? exec_done(sb, s, "cannot roll back") : CMV_ERROR;
	/* closed only when SQLite says so: a ROLLBACK that could not run leaves the transaction open */
	if (sqlite3_get_autocommit(sb->db))
		sb->in_txn = false;
	return error;
}

/* ---- blobs ------------------------------------------------------------- */

static int fts_insert(sqlite_backend *sb, sqlite3_int64 rid, const void *data, int len)
{
	sqlite3_stmt *s = stmt(sb, S_FTS_INS);

	if (!s)
		return CMV_ERROR;
	sb->fts_writes++;
	sqlite3_bind_int64(s, 1, rid);
	sqlite3_bind_text(s, 2, data, len, SQLITE_STATIC);
	return exec_done(sb, s, "cannot index a blob");
}

/*
 * A change to the index other than indexing above the watermark (an
 * unindex, a text indexed at an old rowid, the watermark lowered): the
 * epoch moves in the same transaction, so that every handle's kept counts
 * and lengths go (index_state), where indexing new text keeps them.
 */
static int epoch_bump(sqlite_backend *sb)
{
	sqlite3_stmt *s = stmt(sb, S_EPOCH_BUMP);

	sb->fts_writes++;
	sb->fts_drops++;
	return s ? exec_done(sb, s, "cannot mark the index changed") : CMV_ERROR;
}

static int watermark_get(sqlite_backend *sb, sqlite3_int64 *out);
static int count_query(sqlite_backend *sb, const char *sql, uint64_t *out);

static int sq_blob_put(cmv_store_backend *b, const cmv_id *id, const void *data, size_t len,
		       unsigned int flags)
{
	sqlite_backend *sb = SB(b);
	bool want_index = (flags & CMV_STORE_BLOB_INDEX) != 0;
	sqlite3_stmt *s;
	sqlite3_int64 rid, wm;
	int rc, error, state;

	if (len > INT32_MAX)
		return cmv_error__set(CMV_ETOOBIG, "blob of %zu bytes is too large", len);
	if (!(s = stmt(sb, S_BLOB_INS)))
		return CMV_ERROR;
	bind_id(s, 1, id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)len);
	/* New text is pending: index_pending() indexes it in one batch later. */
	sqlite3_bind_int(s, 3, want_index ? 2 : 0);
	sqlite3_bind_blob(s, 4, len ? data : "", (int)len, SQLITE_STATIC);
	if ((error = exec_done(sb, s, "cannot write a blob")) < 0)
		return error;
	if (!want_index || sqlite3_changes(sb->db) == 1)
		return 0;
	/* It existed as content that was not indexed (rare: bytes first seen as an image). */
	if (!(s = stmt(sb, S_BLOB_META)))
		return CMV_ERROR;
	bind_id(s, 1, id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return sq_error(sb, rc, "cannot read a blob");
	}
	rid = sqlite3_column_int64(s, 0);
	state = sqlite3_column_int(s, 1);
	sqlite3_reset(s);
	if (state != 0)
		return 0;
	if ((error = watermark_get(sb, &wm)) < 0)
		return error;
	if (rid > wm) {
		/* Above the watermark: the next batch will find it. */
		if (!(s = stmt(sb, S_BLOB_SETPENDING)))
			return CMV_ERROR;
		sqlite3_bind_int64(s, 1, rid);
		return exec_done(sb, s, "cannot index a blob");
	}
	/* at or below the watermark: counts kept up to it would miss it */
	if ((error = fts_insert(sb, rid, data, (int)len)) < 0 || (error = epoch_bump(sb)) < 0 ||
	    !(s = stmt(sb, S_BLOB_SETIDX)))
		return error < 0 ? error : CMV_ERROR;
	sqlite3_bind_int64(s, 1, rid);
	return exec_done(sb, s, "cannot index a blob");
}

static int sq_blob_get(cmv_store_backend *b, cmv_buf *out, const cmv_id *id)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_BLOB_GET);
	int rc, error;
	char hex[CMV_ID_HEXSZ + 1];

	if (!s)
		return CMV_ERROR;
	bind_id(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return cmv_error__set(CMV_ENOTFOUND, "blob '%s' not found",
				      cmv_id_tostr(hex, CMV_ID_HEXSZ, id));
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return sq_error(sb, rc, "cannot read a blob");
	}
	error = cmv_buf_set(out, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0));
	sqlite3_reset(s);
	return error;
}

static int exists_query(sqlite_backend *sb, enum stmt_id sid, const cmv_id *id)
{
	sqlite3_stmt *s = stmt(sb, sid);
	int rc;

	if (!s)
		return CMV_ERROR;
	bind_id(s, 1, id);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sq_error(sb, rc, "cannot look up an object");
}

static int sq_blob_exists(cmv_store_backend *b, const cmv_id *id)
{
	return exists_query(SB(b), S_BLOB_EXISTS, id);
}

/* ---- nodes ------------------------------------------------------------- */

static int sq_node_put(cmv_store_backend *b, const cmv_node *n)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s;
	sqlite3_int64 rid;
	int error;
	size_t i;

	cmv_buf_clear(&sb->scratch);
	if ((error = cmv_dag__blocks_encode(&sb->scratch, n->blocks, n->n_blocks)) < 0)
		return error;
	if (!(s = stmt(sb, S_NODE_INS)))
		return CMV_ERROR;
	bind_id(s, 1, &n->id);
	bind_id(s, 2, &n->parent);
	sqlite3_bind_int(s, 3, (int)n->role);
	sqlite3_bind_int(s, 4, (int)n->kind);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)n->depth);
	if (n->meta)
		sqlite3_bind_blob(s, 6, n->meta_len ? n->meta : "", (int)n->meta_len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 7, sb->scratch.ptr, (int)sb->scratch.size, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, (sqlite3_int64)cmv_dag__node_n_edges(n));
	if ((error = exec_done(sb, s, "cannot write a node")) < 0)
		return error;
	if (sqlite3_changes(sb->db) == 0)
		return 0; /* already stored, with its users and edges */
	rid = sqlite3_last_insert_rowid(sb->db);

	for (i = 0; i < n->n_blocks; i++) {
		if (!(s = stmt(sb, S_USER_INS)))
			return CMV_ERROR;
		bind_id(s, 1, &n->blocks[i].blob);
		sqlite3_bind_int64(s, 2, rid);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
		if ((error = exec_done(sb, s, "cannot write a node")) < 0)
			return error;
	}
	cmv_edge_list edges[CMV_EDGE_KINDS];
	cmv_dag__node_edges(edges, n);
	for (int k = 0; k < CMV_EDGE_KINDS; k++)
		for (i = 0; i < edges[k].n; i++) {
			if (!(s = stmt(sb, S_EDGE_INS)))
				return CMV_ERROR;
			sqlite3_bind_int64(s, 1, rid);
			sqlite3_bind_int(s, 2, edges[k].kind);
			sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
			bind_id(s, 4, &edges[k].ids[i]);
			if ((error = exec_done(sb, s, "cannot write an edge")) < 0)
				return error;
		}
	return 0;
}

/* Read a node; *rid_out (may be NULL) gets its row id. */
static int node_read(sqlite_backend *sb, cmv_node **out, sqlite3_int64 *rid_out, const cmv_id *id)
{
	sqlite3_stmt *s, *se = NULL;
	cmv_node head;
	cmv_id *edges = NULL;
	size_t n_edges = 0, cap_edges = 0, counts[CMV_EDGE_KINDS] = { 0 };
	sqlite3_int64 rid;
	int rc, error = 0;
	char hex[CMV_ID_HEXSZ + 1];

	*out = NULL;
	if (!(s = stmt(sb, S_NODE_GET)))
		return CMV_ERROR;
	bind_id(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return cmv_error__set(CMV_ENOTFOUND, "node '%s' not found",
				      cmv_id_tostr(hex, CMV_ID_HEXSZ, id));
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return sq_error(sb, rc, "cannot read a node");
	}
	/* Column memory stays valid until `s` is stepped or reset: used below, then reset. */
	memset(&head, 0, sizeof(head));
	head.id = *id;
	rid = sqlite3_column_int64(s, 0);
	column_id(&head.parent, s, 1);
	head.role = (cmv_role)sqlite3_column_int(s, 2);
	head.kind = (cmv_kind)sqlite3_column_int(s, 3);
	head.depth = (uint64_t)sqlite3_column_int64(s, 4);
	if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
		head.meta = sqlite3_column_blob(s, 5);
		head.meta_len = (size_t)sqlite3_column_bytes(s, 5);
		if (!head.meta)
			head.meta = "";
	}
	if (sqlite3_column_int64(s, 7) > 0) {
		if (!(se = stmt(sb, S_EDGES_GET))) {
			error = CMV_ERROR;
			goto done;
		}
		sqlite3_bind_int64(se, 1, rid);
		while ((rc = sqlite3_step(se)) == SQLITE_ROW) {
			if (n_edges == cap_edges) {
				size_t ncap = cap_edges ? cap_edges * 2 : 4;
				cmv_id *ne = cmv__realloc(edges, ncap * sizeof(*ne));
				if (!ne) {
					error = cmv_error__oom();
					goto done;
				}
				edges = ne;
				cap_edges = ncap;
			}
			int kind = sqlite3_column_int(se, 0);
			if (kind < 1 || kind > CMV_EDGE_KINDS) {
				error = cmv_error__set(CMV_ECORRUPT, "node has an edge of unknown kind %d", kind);
				goto done;
			}
			counts[kind - 1]++;
			column_id(&edges[n_edges++], se, 1);
		}
		if (rc != SQLITE_DONE) {
			error = sq_error(sb, rc, "cannot read edges");
			goto done;
		}
		/* rows come ordered by kind, then position */
		cmv_dag__node_set_edges(&head, edges, counts);
	}
	error = cmv_dag__node_from_parts(out, &head, sqlite3_column_blob(s, 6),
					 (size_t)sqlite3_column_bytes(s, 6));
	if (rid_out)
		*rid_out = rid;
done:
	free(edges);
	if (se)
		sqlite3_reset(se);
	sqlite3_reset(s);
	return error;
}

static int sq_node_get(cmv_store_backend *b, cmv_node **out, const cmv_id *id)
{
	return node_read(SB(b), out, NULL, id);
}

static int sq_node_parent(cmv_store_backend *b, cmv_id *parent, uint64_t *depth,
			  const cmv_id *id)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_NODE_PARENT);
	int rc;
	char hex[CMV_ID_HEXSZ + 1];

	if (!s)
		return CMV_ERROR;
	bind_id(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		column_id(parent, s, 0);
		if (depth)
			*depth = (uint64_t)sqlite3_column_int64(s, 1);
		sqlite3_reset(s);
		return 0;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return cmv_error__set(CMV_ENOTFOUND, "node '%s' not found",
				      cmv_id_tostr(hex, CMV_ID_HEXSZ, id));
	return sq_error(sb, rc, "cannot read a node");
}

/* ---- refs -------------------------------------------------------------- */

/* Tags are stored as one text column, separated by newlines (tags cannot hold one). */
static int ref_from_row(cmv_ref **out, sqlite3_stmt *s)
{
	cmv_ref r;
	const char *tags = column_text(s, 4);
	const char *tagv[256];
	char *tagcopy = NULL;
	size_t n_tags = 0;

	memset(&r, 0, sizeof(r));
	r.name = column_text(s, 0);
	r.type = (cmv_ref_type)sqlite3_column_int(s, 1);
	column_id(&r.target, s, 2);
	r.description = column_text(s, 3);
	r.created = sqlite3_column_int64(s, 5);
	r.updated = sqlite3_column_int64(s, 6);
	r.from_ref = column_text(s, 7);
	if (tags && *tags) {
		char *p;
		if (!(tagcopy = cmv__strdup(tags)))
			return cmv_error__oom();
		p = tagcopy;
		while (p && n_tags < CMV_ARRAY_SIZE(tagv)) {
			char *nl = strchr(p, '\n');
			if (nl)
				*nl = '\0';
			tagv[n_tags++] = p;
			p = nl ? nl + 1 : NULL;
		}
	}
	r.tags = tagv;
	r.n_tags = n_tags;
	*out = cmv_dag__ref_copy(&r);
	free(tagcopy);
	return *out ? 0 : CMV_ENOMEM;
}

static int sq_ref_get(cmv_store_backend *b, cmv_ref **out, const char *name)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_REF_GET);
	int rc, error;

	*out = NULL;
	if (!s)
		return CMV_ERROR;
	bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return cmv_error__set(CMV_ENOTFOUND, "no branch or snapshot named '%s'", name);
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return sq_error(sb, rc, "cannot read a ref");
	}
	error = ref_from_row(out, s);
	sqlite3_reset(s);
	return error;
}

static int sq_ref_put(cmv_store_backend *b, const cmv_ref *ref, unsigned int flags,
		      const cmv_id *expected)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s;
	int rc;

	if (flags & CMV_STORE_REF_CREATE) {
		cmv_buf tags = CMV_BUF_INIT(CMV_BUF_SMALL);
		int error = 0;
		for (size_t i = 0; i < ref->n_tags && !error; i++)
			error = cmv_buf_printf(&tags, "%s%s", i ? "\n" : "", ref->tags[i]);
		if (error || !(s = stmt(sb, S_REF_INS))) {
			cmv_buf_dispose(&tags);
			return error ? error : CMV_ERROR;
		}
		bind_text(s, 1, ref->name);
		sqlite3_bind_int(s, 2, (int)ref->type);
		bind_id(s, 3, &ref->target);
		bind_text(s, 4, ref->description);
		if (ref->n_tags)
			sqlite3_bind_text(s, 5, tags.ptr, (int)tags.size, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 6, ref->created);
		sqlite3_bind_int64(s, 7, ref->updated);
		bind_text(s, 8, ref->from_ref);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		cmv_buf_dispose(&tags);
		if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT)
			return cmv_error__set(CMV_EEXISTS, "a branch or snapshot named '%s' already exists",
					      ref->name);
		if (rc != SQLITE_DONE)
			return sq_error(sb, rc, "cannot create a ref");
		return 0;
	}

	if (!(s = stmt(sb, (flags & CMV_STORE_REF_CAS) ? S_REF_UPD_CAS : S_REF_UPD)))
		return CMV_ERROR;
	bind_text(s, 1, ref->name);
	bind_id(s, 2, &ref->target);
	sqlite3_bind_int64(s, 3, ref->updated);
	if (flags & CMV_STORE_REF_CAS)
		bind_id(s, 4, expected);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return sq_error(sb, rc, "cannot update a ref");
	if (sqlite3_changes(sb->db) == 0) {
		if (flags & CMV_STORE_REF_CAS)
			return cmv_error__set(CMV_EMODIFIED, "branch '%s' moved concurrently",
					      ref->name);
		return cmv_error__set(CMV_ENOTFOUND, "no branch named '%s'", ref->name);
	}
	return 0;
}

static int sq_ref_delete(cmv_store_backend *b, const char *name)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_REF_DEL);
	int error;

	if (!s)
		return CMV_ERROR;
	bind_text(s, 1, name);
	if ((error = exec_done(sb, s, "cannot delete a ref")) < 0)
		return error;
	if (sqlite3_changes(sb->db) == 0)
		return cmv_error__set(CMV_ENOTFOUND, "no branch or snapshot named '%s'", name);
	return 0;
}

static int sq_ref_foreach(cmv_store_backend *b, int (*cb)(const cmv_ref *, void *), void *payload)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s;
	int rc, error = 0;

	/* Collect first: a callback may itself use the store. */
	cmv_ref **refs = NULL;
	size_t n = 0, cap = 0;

	if (!(s = stmt(sb, S_REF_ALL)))
		return CMV_ERROR;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			cmv_ref **nr = cmv__realloc(refs, ncap * sizeof(*nr));
			if (!nr) {
				error = cmv_error__oom();
				break;
			}
			refs = nr;
			cap = ncap;
		}
		if ((error = ref_from_row(&refs[n], s)) < 0)
			break;
		n++;
	}
	sqlite3_reset(s);
	if (!error && rc != SQLITE_DONE)
		error = sq_error(sb, rc, "cannot list refs");
	for (size_t i = 0; i < n; i++) {
		if (!error)
			error = cb(refs[i], payload);
		cmv_ref_free(refs[i]);
	}
	free(refs);
	return error;
}

/* ---- config and per-branch state -------------------------------------- */

static int get_text(sqlite_backend *sb, cmv_buf *out, enum stmt_id sid, const char *a,
		    const char *b, const char *what)
{
	sqlite3_stmt *s = stmt(sb, sid);
	int rc, error;

	if (!s)
		return CMV_ERROR;
	bind_text(s, 1, a);
	if (b)
		bind_text(s, 2, b);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return cmv_error__set(CMV_ENOTFOUND, "%s not set", what);
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return sq_error(sb, rc, "cannot read settings");
	}
	error = cmv_buf_set(out, sqlite3_column_text(s, 0), (size_t)sqlite3_column_bytes(s, 0));
	sqlite3_reset(s);
	return error;
}

static int sq_config_get(cmv_store_backend *b, cmv_buf *out, const char *key)
{
	return get_text(SB(b), out, S_CFG_GET, key, NULL, key);
}

static int sq_config_set(cmv_store_backend *b, const char *key, const char *value)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, value ? S_CFG_SET : S_CFG_DEL);

	if (!s)
		return CMV_ERROR;
	bind_text(s, 1, key);
	if (value)
		bind_text(s, 2, value);
	return exec_done(sb, s, "cannot write settings");
}

/*
 * A note is read with the incremental-blob interface, straight into out:
 * a plain SELECT would first copy a large value (a kept request is hundreds
 * of KB) into a buffer of SQLite's own, fresh memory each time.
 */
static int sq_state_get(cmv_store_backend *b, cmv_buf *out, const char *branch, const char *key)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_STATE_GET);
	sqlite3_blob *blob = NULL;
	sqlite3_int64 rowid;
	int rc, error;

	if (!s)
		return CMV_ERROR;
	bind_text(s, 1, branch);
	bind_text(s, 2, key);
	rc = sqlite3_step(s);
	rowid = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return cmv_error__set(CMV_ENOTFOUND, "%s not set", key);
	if (rc != SQLITE_ROW)
		return sq_error(sb, rc, "cannot read settings");
	if ((rc = sqlite3_blob_open(sb->db, "main", "branch_state", "value", rowid, 0, &blob)) != SQLITE_OK) {
		sqlite3_blob_close(blob);
		return sq_error(sb, rc, "cannot read settings");
	}
	size_t n = (size_t)sqlite3_blob_bytes(blob);
	cmv_buf_clear(out);
	if ((error = cmv_buf_grow(out, n)) == 0) {
		if ((rc = sqlite3_blob_read(blob, out->ptr, (int)n, 0)) != SQLITE_OK) {
			error = sq_error(sb, rc, "cannot read settings");
		} else {
			out->size = n;
			out->ptr[n] = '\0';
		}
	}
	sqlite3_blob_close(blob);
	return error;
}

static int sq_state_set(cmv_store_backend *b, const char *branch, const char *key,
			const char *value)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, value ? S_STATE_SET : S_STATE_DEL);

	if (!s)
		return CMV_ERROR;
	bind_text(s, 1, branch);
	bind_text(s, 2, key);
	if (value)
		bind_text(s, 3, value);
	return exec_done(sb, s, "cannot write branch state");
}

static int sq_state_drop(cmv_store_backend *b, const char *branch)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s;
	int error;

	if (!(s = stmt(sb, S_STATE_DROP)))
		return CMV_ERROR;
	bind_text(s, 1, branch);
	if ((error = exec_done(sb, s, "cannot drop branch state")) < 0)
		return error;
	if (!(s = stmt(sb, S_USAGE_DROP)))
		return CMV_ERROR;
	bind_text(s, 1, branch);
	return exec_done(sb, s, "cannot drop branch usage");
}

static int sq_usage_begin(cmv_store_backend *b, const char *branch, const cmv_usage_segment *seg)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_USAGE_INS);

	if (!s)
		return CMV_ERROR;
	bind_text(s, 1, branch);
	bind_text(s, 2, seg->signature);
	bind_id(s, 3, &seg->start_node);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)seg->start_turn);
	sqlite3_bind_int64(s, 5, seg->started);
	return exec_done(sb, s, "cannot start a usage segment");
}

static int sq_usage_add(cmv_store_backend *b, const char *branch, const cmv_usage_segment *d)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_USAGE_ADD);
	int error;

	if (!s)
		return CMV_ERROR;
	bind_text(s, 1, branch);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)d->calls);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)d->input_tokens);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)d->output_tokens);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)d->cache_read_tokens);
	sqlite3_bind_int64(s, 6, (sqlite3_int64)d->cache_write_tokens);
	if ((error = exec_done(sb, s, "cannot record usage")) < 0)
		return error;
	if (sqlite3_changes(sb->db) == 0)
		return cmv_error__set(CMV_ENOTFOUND, "branch '%s' has no model set", branch);
	return 0;
}

static int sq_usage_foreach(cmv_store_backend *b, const char *branch,
			    int (*cb)(const cmv_usage_segment *, void *), void *payload)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_USAGE_ALL);
	int rc, error = 0;

	if (!s)
		return CMV_ERROR;
	bind_text(s, 1, branch);
	/* Segments are few; the callback must not use the store (documented). */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cmv_usage_segment seg;
		seg.signature = column_text(s, 0);
		column_id(&seg.start_node, s, 1);
		seg.start_turn = (uint64_t)sqlite3_column_int64(s, 2);
		seg.started = sqlite3_column_int64(s, 3);
		seg.calls = (uint64_t)sqlite3_column_int64(s, 4);
		seg.input_tokens = (uint64_t)sqlite3_column_int64(s, 5);
		seg.output_tokens = (uint64_t)sqlite3_column_int64(s, 6);
		seg.cache_read_tokens = (uint64_t)sqlite3_column_int64(s, 7);
		seg.cache_write_tokens = (uint64_t)sqlite3_column_int64(s, 8);
		if ((error = cb(&seg, payload)) != 0)
			break;
	}
	sqlite3_reset(s);
	if (!error && rc != SQLITE_DONE)
		return sq_error(sb, rc, "cannot read usage");
	return error;
}

/* ---- ids, iteration, deletion ----------------------------------------- */

static int sq_lookup_prefix(cmv_store_backend *b, cmv_id *out, cmv_object_type *types_out,
			    size_t max, size_t *n_out, const char *prefix, size_t n_digits)
{
	sqlite_backend *sb = SB(b);
	unsigned char lo[CMV_ID_RAWSZ], hi[CMV_ID_RAWSZ];
	size_t n = 0;

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
		sqlite3_stmt *s = stmt(sb, t == 0 ? S_PREFIX_NODE : S_PREFIX_BLOB);
		int rc;
		if (!s)
			return CMV_ERROR;
		sqlite3_bind_blob(s, 1, lo, sizeof(lo), SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, hi, sizeof(hi), SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)max + 1);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			if (n < max) {
				column_id(&out[n], s, 0);
				types_out[n] = t == 0 ? CMV_OBJ_NODE : CMV_OBJ_BLOB;
			}
			n++;
		}
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return sq_error(sb, rc, "cannot look up an id prefix");
	}
	*n_out = n;
	return 0;
}

static int sq_object_foreach(cmv_store_backend *b, cmv_object_type type,
			     int (*cb)(const cmv_id *, void *), void *payload)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, type == CMV_OBJ_BLOB ? S_ALL_BLOBS : S_ALL_NODES);
	int rc, error = 0;

	if (!s)
		return CMV_ERROR;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cmv_id id;
		column_id(&id, s, 0);
		if ((error = cb(&id, payload)) != 0)
			break;
	}
	sqlite3_reset(s);
	if (!error && rc != SQLITE_DONE)
		return sq_error(sb, rc, "cannot list objects");
	return error;
}

static int sq_object_delete(cmv_store_backend *b, cmv_object_type type, const cmv_id *id)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s;
	sqlite3_int64 rid;
	int rc, error;

	if (type == CMV_OBJ_NODE) {
		cmv_node *n = NULL;
		error = node_read(sb, &n, &rid, id);
		if (error == CMV_ENOTFOUND) {
			cmv_error_clear();
			return 0;
		}
		if (error < 0)
			return error;
		for (size_t i = 0; i < n->n_blocks && !error; i++) {
			if (!(s = stmt(sb, S_USER_DEL))) {
				error = CMV_ERROR;
				break;
			}
			bind_id(s, 1, &n->blocks[i].blob);
			sqlite3_bind_int64(s, 2, rid);
			sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
			error = exec_done(sb, s, "cannot delete a node");
		}
		cmv_node_free(n);
		enum stmt_id dels[] = { S_EDGES_DEL, S_NODE_DEL };
		for (size_t i = 0; i < CMV_ARRAY_SIZE(dels) && !error; i++) {
			if (!(s = stmt(sb, dels[i])))
				return CMV_ERROR;
			sqlite3_bind_int64(s, 1, rid);
			error = exec_done(sb, s, "cannot delete a node");
		}
		return error;
	}

	/* A blob: drop its index entry (which needs its text), then the row. */
	if (!(s = stmt(sb, S_BLOB_META)))
		return CMV_ERROR;
	bind_id(s, 1, id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return rc == SQLITE_DONE ? 0 : sq_error(sb, rc, "cannot delete a blob");
	}
	rid = sqlite3_column_int64(s, 0);
	bool indexed = sqlite3_column_int(s, 1) == 1;
	sqlite3_reset(s);
	if (indexed) {
		cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT);
		if ((error = sq_blob_get(b, &text, id)) < 0) {
			cmv_buf_dispose(&text);
			return error;
		}
		if (!(s = stmt(sb, S_FTS_DEL))) {
			cmv_buf_dispose(&text);
			return CMV_ERROR;
		}
		sb->fts_writes++;
		sqlite3_bind_int64(s, 1, rid);
		sqlite3_bind_text(s, 2, text.ptr, (int)text.size, SQLITE_STATIC);
		error = exec_done(sb, s, "cannot unindex a blob");
		cmv_buf_dispose(&text);
		if (error < 0 || (error = epoch_bump(sb)) < 0)
			return error;
	}
	if (!(s = stmt(sb, S_BLOB_DEL)))
		return CMV_ERROR;
	sqlite3_bind_int64(s, 1, rid);
	if ((error = exec_done(sb, s, "cannot delete a blob")) < 0)
		return error;
	if ((error = exec_sql(sb, "UPDATE config SET value = (SELECT coalesce(max(rid), 0) FROM blobs)"
				  " WHERE key = 'fts_watermark'"
				  " AND CAST(value AS INTEGER) > (SELECT coalesce(max(rid), 0) FROM blobs)",
			      "cannot lower the index watermark")) < 0)
		return error;
	/* a later text may be indexed at a rowid that counts kept up to the old watermark have passed */
	if (sqlite3_changes(sb->db) > 0 && (error = epoch_bump(sb)) < 0)
		return error;
	if (!(s = stmt(sb, S_TOK_DEL)))
		return CMV_ERROR;
	bind_id(s, 1, id);
	return exec_done(sb, s, "cannot delete token counts");
}

/* ---- search ------------------------------------------------------------ */

#define WATERMARK_KEY "fts_watermark"

static int watermark_get(sqlite_backend *sb, sqlite3_int64 *out)
{
	cmv_buf v = CMV_BUF_INIT(64);
	int error = get_text(sb, &v, S_CFG_GET, WATERMARK_KEY, NULL, WATERMARK_KEY);

	*out = 0;
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
	} else if (error == 0) {
		*out = strtoll(v.ptr, NULL, 10);
	}
	cmv_buf_dispose(&v);
	return error;
}

/* A token of a text being indexed: a kept term's text counted once. */
static int term_seen(void *ctx, int flags, const char *token, int n, int start, int end)
{
	sqlite_backend *sb = ctx;
	size_t at;

	(void)flags; /* a colocated token is indexed as any other */
	(void)start;
	(void)end;
	cmv_buf_clear(&sb->term);
	if (n <= 0 || memchr(token, 0, (size_t)n) || cmv_buf_put(&sb->term, token, (size_t)n) < 0 ||
	    cmv_buf_putc(&sb->term, 0) < 0) {
		cmv_error_clear();
		return n <= 0 || memchr(token, 0, (size_t)n) ? SQLITE_OK : SQLITE_NOMEM;
	}
	if (cmv__strmap_get(&sb->terms, sb->term.ptr, &at, NULL) && sb->counts[at].seen != sb->fts_text) {
		sb->counts[at].seen = sb->fts_text;
		sb->counts[at].add++;
	}
	return SQLITE_OK;
}

/* The kept terms in a text being indexed (term_seen), 0; else what failed, and they are not followed. */
static int terms_follow(sqlite_backend *sb, sqlite3_int64 rid, const void *text, int len)
{
	sb->fts_text = rid;
	return sb->tok_api.xTokenize(sb->tok, sb, FTS5_TOKENIZE_DOCUMENT, text, len, term_seen) == SQLITE_OK ? 0 : -1;
}

static int sq_index_pending(cmv_store_backend *b, size_t *n_out)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s;
	sqlite3_int64 wm, top;
	size_t n = 0;
	int rc, error;
	char v[32];

	*n_out = 0;
	if ((error = watermark_get(sb, &wm)) < 0)
		return error;
	top = wm;
	if (!(s = stmt(sb, S_PENDING)))
		return CMV_ERROR;
	sqlite3_bind_int64(s, 1, wm);
	/* kept counts of one term are counted up as the texts go in (a large batch: counted after) */
	bool follow = sb->tok && sb->n_counts > 0;
	for (size_t i = 0; follow && i < sb->n_counts; i++)
		sb->counts[i].add = 0, sb->counts[i].seen = -1;
	/* Reading blobs while inserting into fts: different tables, one connection. */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		sqlite3_int64 rid = sqlite3_column_int64(s, 0);
		const void *text = sqlite3_column_blob(s, 1);
		int len = sqlite3_column_bytes(s, 1);
		if ((error = fts_insert(sb, rid, text, len)) < 0) {
			sqlite3_reset(s);
			return error;
		}
		follow = follow && n < 4096 && terms_follow(sb, rid, text, len) == 0;
		top = rid;
		n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return sq_error(sb, rc, "cannot read pending blobs");
	/* The watermark moves to the newest blob, pending or not. */
	uint64_t max_rid = 0;
	if ((error = count_query(sb, "SELECT coalesce(max(rid), 0) FROM blobs", &max_rid)) < 0)
		return error;
	top = (sqlite3_int64)max_rid;
	if (top <= wm)
		return 0;
	/* counts that were up to the old watermark are up to the new one (a rollback drops them all) */
	for (size_t i = 0; follow && i < sb->n_counts; i++)
		if (sb->counts[i].term && sb->counts[i].upto == wm)
			sb->counts[i].n += sb->counts[i].add, sb->counts[i].upto = top;
	if (follow && sb->total.upto == wm)
		sb->total.n += n, sb->total.upto = top;
	if (!(s = stmt(sb, S_PENDING_DONE)))
		return CMV_ERROR;
	sqlite3_bind_int64(s, 1, wm);
	sqlite3_bind_int64(s, 2, top);
	if ((error = exec_done(sb, s, "cannot mark blobs indexed")) < 0)
		return error;
	snprintf(v, sizeof(v), "%lld", (long long)top);
	if ((error = sq_config_set(b, WATERMARK_KEY, v)) < 0)
		return error;
	*n_out = n;
	return 0;
}

/* Pending text is above the watermark: a blob newer than it means index_pending has work. */
static int sq_index_behind(cmv_store_backend *b, bool *behind)
{
	sqlite_backend *sb = SB(b);
	sqlite3_int64 wm;
	uint64_t max_rid = 0;
	int error;

	*behind = true;
	if ((error = watermark_get(sb, &wm)) < 0 ||
	    (error = count_query(sb, "SELECT coalesce(max(rid), 0) FROM blobs", &max_rid)) < 0)
		return error;
	*behind = (sqlite3_int64)max_rid > wm;
	return 0;
}

/*
 * FTS5's bm25() as SQLite 3.40 computes it (ext/fts5/fts5_aux.c, public
 * domain; the same operations in the same order, so the same doubles, and
 * the same ranking), but for where a text's length comes from: bm25()
 * asks the index for it (xColumnSize, a lookup in fts_docsize) on every
 * row of every search, half of a search's time where a query's words are
 * in thousands of texts; here a length asked once is kept by rowid. A
 * text's length does not change while it is indexed, and a rowid is used
 * again only after its text is unindexed: the kept lengths are dropped
 * when this handle unindexes a text or rolls back, and when the index's
 * epoch moves (index_state: another handle unindexed), not when another
 * handle only indexed new text or wrote something else (bm25_lengths).
 */
typedef struct {
	int n;
	double avgdl, *idf, *freq;
} bm25_data;

static int bm25_count(const Fts5ExtensionApi *api, Fts5Context *fts, void *ctx)
{
	(void)api;
	(void)fts;
	(*(sqlite3_int64 *)ctx)++;
	return SQLITE_OK;
}

static int bm25_data_of(const Fts5ExtensionApi *api, Fts5Context *fts, bm25_data **out)
{
	bm25_data *p = api->xGetAuxdata(fts, 0);
	sqlite3_int64 n_row = 0, n_token = 0;
	size_t size;
	int rc, n;

	if (p) {
		*out = p;
		return SQLITE_OK;
	}
	n = api->xPhraseCount(fts);
	size = sizeof(*p) + (size_t)n * 2 * sizeof(double);
	if (!(p = sqlite3_malloc64(size)))
		return SQLITE_NOMEM;
	memset(p, 0, size);
	p->n = n;
	p->idf = (double *)&p[1];
	p->freq = &p->idf[n];
	rc = api->xRowCount(fts, &n_row);
	if (rc == SQLITE_OK)
		rc = api->xColumnTotalSize(fts, -1, &n_token);
	if (rc == SQLITE_OK)
		p->avgdl = (double)n_token / (double)n_row;
	for (int i = 0; rc == SQLITE_OK && i < n; i++) {
		sqlite3_int64 hits = 0;
		rc = api->xQueryPhrase(fts, i, &hits, bm25_count);
		if (rc == SQLITE_OK) {
			/* BM25's idf; where it would be negative (a phrase in most rows), almost nil */
			double idf = log((n_row - hits + 0.5) / (hits + 0.5));
			if (idf <= 0.0)
				idf = 1e-6;
			p->idf[i] = idf;
		}
	}
	if (rc == SQLITE_OK)
		rc = api->xSetAuxdata(fts, p, sqlite3_free);
	else
		sqlite3_free(p);
	if (rc == SQLITE_OK)
		*out = p;
	return rc;
}

/* The row's length in tokens: kept, or asked of the index and kept. */
static int bm25_length(sqlite_backend *sb, const Fts5ExtensionApi *api, Fts5Context *fts, int *out)
{
	sqlite3_int64 r = api->xRowid(fts);
	int rc;
	if (r >= 0 && (size_t)r < sb->n_lengths && sb->lengths[r] >= 0) {
		*out = sb->lengths[r];
		return SQLITE_OK;
	}
	if ((rc = api->xColumnSize(fts, -1, out)) != SQLITE_OK || r < 0 || r >= ((sqlite3_int64)1 << 28))
		return rc; /* a rowid past 2^28 is not kept (a gigabyte of lengths) */
	if ((size_t)r >= sb->n_lengths) {
		size_t n = sb->n_lengths ? sb->n_lengths : 4096;
		while (n <= (size_t)r)
			n *= 2;
		int *grown = cmv__realloc(sb->lengths, n * sizeof(*grown));
		if (!grown) {
			cmv_error_clear(); /* not kept: asked again next time */
			return SQLITE_OK;
		}
		memset(grown + sb->n_lengths, 0xff, (n - sb->n_lengths) * sizeof(*grown));
		sb->lengths = grown;
		sb->n_lengths = n;
	}
	sb->lengths[r] = *out;
	return SQLITE_OK;
}

static void cmv_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int n_val,
		     sqlite3_value **val)
{
	const double k1 = 1.2, b = 0.75;
	double score = 0.0, d = 0.0, *freq = NULL;
	bm25_data *p = NULL;
	int rc, n_inst = 0;

	(void)n_val; /* no column weights: the store has one column */
	(void)val;
	rc = bm25_data_of(api, fts, &p);
	if (rc == SQLITE_OK) {
		freq = p->freq;
		memset(freq, 0, sizeof(double) * (size_t)p->n);
		rc = api->xInstCount(fts, &n_inst);
	}
	for (int i = 0; rc == SQLITE_OK && i < n_inst; i++) {
		int ip, ic, io;
		rc = api->xInst(fts, i, &ip, &ic, &io);
		if (rc == SQLITE_OK)
			freq[ip] += 1.0;
	}
	if (rc == SQLITE_OK) {
		int n_tok = 0;
		rc = bm25_length(api->xUserData(fts), api, fts, &n_tok);
		d = (double)n_tok;
	}
	if (rc == SQLITE_OK) {
		for (int i = 0; i < p->n; i++)
			score += p->idf[i] * ((freq[i] * (k1 + 1.0)) / (freq[i] + k1 * (1 - b + b * d / p->avgdl)));
		sqlite3_result_double(ctx, -1.0 * score);
	} else {
		sqlite3_result_error_code(ctx, rc);
	}
}

/* PRAGMA data_version: it changes when another connection commits. */
static int data_version(sqlite_backend *sb, sqlite3_int64 *out)
{
	sqlite3_stmt *s = stmt(sb, S_DATA_VERSION);
	if (!s)
		return CMV_ERROR;
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return sq_error(sb, sqlite3_errcode(sb->db), "cannot read the data version");
	}
	*out = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

/*
 * The watermark and the epoch (see sqlite_backend), read again only where
 * they may have moved: another connection committed (PRAGMA data_version,
 * which moves for any commit: a checkpoint thread's restart too, which
 * leaves both as they were), or this handle wrote to the index.
 */
static int index_state(sqlite_backend *sb)
{
	sqlite3_stmt *s;
	sqlite3_int64 version = 0;
	int rc, error;

	if ((error = data_version(sb, &version)) < 0)
		return error;
	if (sb->state_read && version == sb->state_version && sb->fts_writes == sb->state_writes)
		return 0;
	if (!(s = stmt(sb, S_INDEX_STATE)))
		return CMV_ERROR;
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		sqlite3_reset(s);
		return sq_error(sb, rc, "cannot read the index's state");
	}
	/* none yet: 0 (a NULL reads as 0) */
	sb->state_wm = sqlite3_column_int64(s, 0);
	sb->state_epoch = sqlite3_column_int64(s, 1);
	sqlite3_reset(s);
	sb->state_version = version;
	sb->state_writes = sb->fts_writes;
	sb->state_read = true;
	sb->cache_stats.state_reads++;
	return 0;
}

/* Whether cmv_bm25's kept lengths still hold (see above): else they are dropped. */
static int bm25_lengths(sqlite_backend *sb)
{
	int error;
	if ((error = index_state(sb)) < 0)
		return error;
	if (sb->fts_drops != sb->lengths_drops || sb->state_epoch != sb->lengths_epoch) {
		if (sb->lengths)
			sb->cache_stats.length_drops++;
		free(sb->lengths);
		sb->lengths = NULL;
		sb->n_lengths = 0;
		sb->lengths_drops = sb->fts_drops;
		sb->lengths_epoch = sb->state_epoch;
	}
	return 0;
}

static int sq_search(cmv_store_backend *b, const char *query, size_t limit,
		     int (*cb)(const cmv_id *, double, void *), void *payload)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s;
	cmv_id *ids = NULL;
	double *scores = NULL;
	size_t n = 0, cap = 0;
	int rc, error = 0;
	bool retried = false;

again:
	if (sb->bm25_own && (error = bm25_lengths(sb)) < 0)
		return error;
	if (!(s = stmt(sb, sb->bm25_own ? S_SEARCH_OWN : S_SEARCH)))
		return CMV_ERROR;
	bind_text(s, 1, query);
	sqlite3_bind_int64(s, 2, limit ? (sqlite3_int64)limit : -1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			cmv_id *ni = cmv__realloc(ids, ncap * sizeof(*ni));
			double *ns;
			if (!ni) {
				error = cmv_error__oom();
				break;
			}
			ids = ni;
			if (!(ns = cmv__realloc(scores, ncap * sizeof(*ns)))) {
				error = cmv_error__oom();
				break;
			}
			scores = ns;
			cap = ncap;
		}
		column_id(&ids[n], s, 0);
		scores[n++] = sqlite3_column_double(s, 1);
	}
	if (!error && rc != SQLITE_DONE)
		error = cmv_error__set(CMV_EINVALID, "bad search query '%s': %s", query,
				       sqlite3_errmsg(sb->db));
	sqlite3_reset(s);
	/*
	 * Outside a transaction the search read its own snapshot, after the
	 * epoch was checked: another connection's commit in between (gc
	 * giving a text's rowid to another) could have left a kept length
	 * stale. The epoch unchanged after says there was none (it moves in
	 * the transaction that unindexes, so a snapshot with the change has
	 * it moved); else the search is run once more, its kept lengths
	 * dropped first, so every length it uses is read in its own snapshot,
	 * as FTS5's bm25() reads them.
	 */
	if (!error && sb->bm25_own && !sb->in_txn && !retried) {
		if ((error = index_state(sb)) == 0 && sb->state_epoch != sb->lengths_epoch) {
			retried = true;
			n = 0;
			goto again;
		}
	}
	/* Callbacks run after the statement is done, so they may use the store. */
	for (size_t i = 0; i < n && !error; i++)
		error = cb(&ids[i], scores[i], payload);
	free(ids);
	free(scores);
	return error;
}

static int sq_blob_users(cmv_store_backend *b, const cmv_id *blob,
			 int (*cb)(const cmv_id *, size_t, void *), void *payload)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_BLOB_USERS);
	int rc, error = 0;

	if (!s)
		return CMV_ERROR;
	bind_id(s, 1, blob);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cmv_id id;
		column_id(&id, s, 0);
		if ((error = cb(&id, (size_t)sqlite3_column_int64(s, 1), payload)) != 0)
			break;
	}
	sqlite3_reset(s);
	if (!error && rc != SQLITE_DONE)
		return sq_error(sb, rc, "cannot find the users of a blob");
	return error;
}

/* ---- token cache ------------------------------------------------------- */

static int sq_tokcache_get(cmv_store_backend *b, uint64_t *out, const cmv_id *blob,
			   const char *tokenizer)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_TOK_GET);
	int rc;

	if (!s)
		return CMV_ERROR;
	bind_id(s, 1, blob);
	bind_text(s, 2, tokenizer);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return CMV_ENOTFOUND; /* a cache miss is routine: no message */
	return sq_error(sb, rc, "cannot read the token cache");
}

static int sq_tokcache_put(cmv_store_backend *b, const cmv_id *blob, const char *tokenizer,
			   uint64_t count)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s = stmt(sb, S_TOK_PUT);

	if (!s)
		return CMV_ERROR;
	bind_id(s, 1, blob);
	bind_text(s, 2, tokenizer);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)count);
	return exec_done(sb, s, "cannot write the token cache");
}

/* ---- stats and integrity ---------------------------------------------- */

static int count_query(sqlite_backend *sb, const char *sql, uint64_t *out)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(sb->db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return sq_error(sb, rc, "cannot count rows");
	rc = sqlite3_step(s);
	*out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : sq_error(sb, rc, "cannot count rows");
}

static int sq_stats(cmv_store_backend *b, cmv_store_stats *out)
{
	sqlite_backend *sb = SB(b);
	uint64_t a, c, d, e;
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = count_query(sb, "SELECT count(*) FROM blobs", &out->n_blobs)) < 0 ||
	    (error = count_query(sb, "SELECT coalesce(sum(size),0) FROM blobs", &out->blob_bytes)) < 0 ||
	    (error = count_query(sb, "SELECT count(*) FROM nodes", &out->n_nodes)) < 0 ||
	    (error = count_query(sb, "SELECT count(*) FROM blob_users", &out->n_blocks)) < 0 ||
	    (error = count_query(sb, "SELECT count(*) FROM edges", &out->n_edges)) < 0 ||
	    (error = count_query(sb, "SELECT count(*) FROM refs", &out->n_refs)) < 0 ||
	    (error = count_query(sb, "SELECT count(*) FROM config", &a)) < 0 ||
	    (error = count_query(sb, "SELECT count(*) FROM tokcache", &c)) < 0 ||
	    (error = count_query(sb, "SELECT count(*) FROM branch_state", &d)) < 0 ||
	    (error = count_query(sb, "SELECT count(*) FROM usage_segments", &e)) < 0)
		return error;
	out->n_other_rows = a + c + d + e;
	if (strcmp(sb->path, ":memory:")) {
		struct stat st;
		cmv_buf p = CMV_BUF_INIT(CMV_BUF_SMALL);
		if (stat(sb->path, &st) == 0)
			out->file_bytes += (uint64_t)st.st_size;
		if (cmv_buf_printf(&p, "%s-wal", sb->path) == 0 && stat(p.ptr, &st) == 0)
			out->file_bytes += (uint64_t)st.st_size;
		cmv_buf_dispose(&p);
	}
	return 0;
}

static int sq_integrity(cmv_store_backend *b, size_t *n_problems,
			int (*cb)(const char *, void *), void *payload)
{
	sqlite_backend *sb = SB(b);
	sqlite3_stmt *s;
	int rc, error = 0;

	*n_problems = 0;
	rc = sqlite3_prepare_v2(sb->db, "PRAGMA quick_check", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_error(sb, rc, "cannot check the store");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *msg = column_text(s, 0);
		if (msg && strcmp(msg, "ok")) {
			(*n_problems)++;
			if (cb && (error = cb(msg, payload)) != 0)
				break;
		}
	}
	if (!error && rc != SQLITE_DONE) {
		/* A file too damaged to check is itself the finding. */
		(*n_problems)++;
		if (cb)
			error = cb(sqlite3_errmsg(sb->db), payload);
	}
	sqlite3_finalize(s);
	return error;
}

/* ---- open and close ---------------------------------------------------- */

static void ckpt_stop(sqlite_backend *sb);

static void sq_free(cmv_store_backend *b)
{
	sqlite_backend *sb = SB(b);

	if (!sb)
		return;
	ckpt_stop(sb);
	for (size_t i = 0; i < S__COUNT; i++)
		sqlite3_finalize(sb->stmts[i]);
	if (sb->db) {
		if (!sqlite3_get_autocommit(sb->db))
			sqlite3_exec(sb->db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close_v2(sb->db);
	}
	free(sb->path);
	cmv_buf_dispose(&sb->scratch);
	cmv__strmap_dispose(&sb->counted);
	cmv__strmap_dispose(&sb->terms);
	free(sb->counts);
	if (sb->tok)
		sb->tok_api.xDelete(sb->tok);
	cmv_buf_dispose(&sb->term);
	free(sb->lengths);
	free(sb);
}

static int migrate(sqlite_backend *sb)
{
	sqlite3_stmt *s;
	int version, app_id, rc, error;
	const int latest = (int)CMV_ARRAY_SIZE(migrations);
	char sql[64];

	rc = sqlite3_prepare_v2(sb->db, "PRAGMA user_version", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_error(sb, rc, "cannot read the schema version");
	rc = sqlite3_step(s);
	version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	if (version < 0)
		return sq_error(sb, rc, "cannot read the schema version");
	rc = sqlite3_prepare_v2(sb->db, "PRAGMA application_id", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_error(sb, rc, "cannot read the application id");
	rc = sqlite3_step(s);
	app_id = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);

	if (app_id != 0 && app_id != SQLITE_APP_ID)
		return cmv_error__set(CMV_ECORRUPT, "'%s' is an SQLite file but not a cmv store",
				      sb->path);
	if (version > latest)
		return cmv_error__set(CMV_EVERSION,
				      "store '%s' has schema version %d; this cmv knows up to %d",
				      sb->path, version, latest);
	if (version == latest)
		return 0;
	if (sb->readonly)
		return cmv_error__set(CMV_EVERSION, "store '%s' needs an upgrade; open it for writing",
				      sb->path);
	if ((error = exec_sql(sb, "BEGIN IMMEDIATE", "cannot lock the store to upgrade it")) < 0)
		return error;
	/* Another process may have migrated while we waited for the lock. */
	rc = sqlite3_prepare_v2(sb->db, "PRAGMA user_version", -1, &s, NULL);
	if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version == 0) {
		/* A brand-new file must be empty: never migrate someone else's database. */
		uint64_t n_tables = 0;
		if ((error = count_query(sb, "SELECT count(*) FROM sqlite_schema", &n_tables)) < 0)
			goto fail;
		if (n_tables) {
			error = cmv_error__set(CMV_ECORRUPT, "'%s' is an SQLite file but not a cmv store",
					       sb->path);
			goto fail;
		}
	}
	for (int v = version; v < latest; v++)
		if ((error = exec_sql(sb, migrations[v], "cannot upgrade the schema")) < 0)
			goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", latest);
	if ((error = exec_sql(sb, sql, "cannot upgrade the schema")) < 0)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", SQLITE_APP_ID);
	if ((error = exec_sql(sb, sql, "cannot upgrade the schema")) < 0)
		goto fail;
	return exec_sql(sb, "COMMIT", "cannot upgrade the schema");
fail:
	sqlite3_exec(sb->db, "ROLLBACK", NULL, NULL, NULL);
	return error;
}

/*
 * Whether search_count's kept counts still hold, else they are dropped:
 * each is exact over the rowids up to its own mark, which holds as long
 * as nothing at or below the watermark changed (the epoch, index_state,
 * and this handle's fts_drops: its unindexes and rollbacks). Texts
 * indexed since, by this handle or another, are all above the mark and
 * are counted apart (sq_search_count); another connection's commit that
 * did not touch the index (a checkpoint thread's restart) drops nothing.
 */
static int count_fresh(sqlite_backend *sb)
{
	int error;
	if ((error = index_state(sb)) < 0)
		return error;
	/* a bound, as a server runs for long: a question's words are tens */
	if (sb->fts_drops != sb->counted_drops || sb->state_epoch != sb->counted_epoch || sb->counted.n >= 65536) {
		if (sb->counted.n || sb->total.upto >= 0)
			sb->cache_stats.count_drops++;
		cmv__strmap_dispose(&sb->counted);
		memset(&sb->counted, 0, sizeof(sb->counted));
		cmv__strmap_dispose(&sb->terms);
		memset(&sb->terms, 0, sizeof(sb->terms));
		sb->n_counts = 0;
		sb->total.upto = -1;
		sb->counted_drops = sb->fts_drops;
		sb->counted_epoch = sb->state_epoch;
	}
	return 0;
}

/* A count brought up to the watermark: whole (upto < 0), or over the rowids indexed since. */
static int count_upto(sqlite_backend *sb, struct kept_count *c, const char *query)
{
	sqlite3_int64 wm = sb->state_wm;
	sqlite3_stmt *s;
	int error = 0;

	if (c->upto == wm)
		return 0;
	if (c->upto > wm)
		c->upto = -1; /* not after an epoch check; as a guard, counted again whole */
	if (!(s = stmt(sb, query ? (c->upto < 0 ? S_SEARCH_COUNT : S_SEARCH_COUNT_SINCE) :
				   (c->upto < 0 ? S_INDEXED_COUNT : S_INDEXED_COUNT_SINCE))))
		return CMV_ERROR;
	if (query)
		bind_text(s, 1, query);
	if (c->upto >= 0) {
		sqlite3_bind_int64(s, query ? 2 : 1, c->upto);
		sqlite3_bind_int64(s, query ? 3 : 2, wm);
	}
	if (sqlite3_step(s) == SQLITE_ROW) {
		uint64_t n = (uint64_t)sqlite3_column_int64(s, 0);
		if (c->upto < 0)
			c->n = n, sb->cache_stats.counted_all++;
		else
			c->n += n, sb->cache_stats.counted_since++;
		c->upto = wm;
	} else if (query) {
		error = cmv_error__set(CMV_EINVALID, "bad search query '%s': %s", query, sqlite3_errmsg(sb->db));
	} else {
		error = cmv_error__set(CMV_EIO, "cannot count the indexed texts: %s", sqlite3_errmsg(sb->db));
	}
	sqlite3_reset(s);
	return error;
}

typedef struct {
	sqlite_backend *sb;
	int n;
} query_terms;

static int query_term(void *ctx, int flags, const char *token, int n, int start, int end)
{
	query_terms *q = ctx;

	(void)start;
	(void)end;
	if (flags & FTS5_TOKEN_COLOCATED)
		return SQLITE_OK;
	if (q->n++ == 0) {
		cmv_buf_clear(&q->sb->term);
		if (n <= 0 || memchr(token, 0, (size_t)n) || cmv_buf_put(&q->sb->term, token, (size_t)n) < 0 ||
		    cmv_buf_putc(&q->sb->term, 0) < 0) {
			cmv_error_clear();
			q->n = 2; /* not kept by its term */
		}
	}
	return SQLITE_OK;
}

/* Whether a query is one quoted term (in sb->term), as cmv_search_count writes a word. */
static bool query_is_term(sqlite_backend *sb, const char *query)
{
	size_t len = strlen(query);
	query_terms q = { sb, 0 };

	if (!sb->tok || len < 3 || query[0] != '"' || query[len - 1] != '"' || memchr(query + 1, '"', len - 2))
		return false;
	if (sb->tok_api.xTokenize(sb->tok, &q, FTS5_TOKENIZE_QUERY, query + 1, (int)len - 2, query_term) != SQLITE_OK)
		return false;
	return q.n == 1;
}

/*
 * Each query's matches are a pass over its words' doclists (a word in a
 * fifth of a million-token store's texts, 0.04 ms); the pager counts the
 * same common words for question after question, so the counts are kept
 * (count_fresh), and on a live store, where each question comes after an
 * append, only the new texts are counted (FTS5 seeks each doclist to the
 * mark: microseconds). Outside a transaction the counts are taken in one
 * read transaction, so that the watermark they are brought up to and the
 * rows they count are of one snapshot.
 */
static int sq_search_count(cmv_store_backend *b, const char *const *queries, size_t n, uint64_t *n_match,
			   uint64_t *n_indexed)
{
	sqlite_backend *sb = SB(b);
	bool own_txn = !sb->in_txn;
	size_t at;
	int error;

	if (own_txn) {
		sqlite3_stmt *s = stmt(sb, S_BEGIN_R);
		if (!s || (error = exec_done(sb, s, "cannot begin a transaction")) < 0)
			return s ? error : CMV_ERROR;
	}
	error = count_fresh(sb);
	for (size_t i = 0; i < n && !error; i++) {
		bool term;
		if (cmv__strmap_get(&sb->counted, queries[i], &at, NULL)) {
			error = count_upto(sb, &sb->counts[at], queries[i]);
		} else if ((term = query_is_term(sb, queries[i])) && cmv__strmap_get(&sb->terms, sb->term.ptr, &at, NULL)) {
			/* another query of a kept term ("painted", "paint") */
			if ((error = cmv__strmap_put(&sb->counted, queries[i], at, NULL)) == 0)
				error = count_upto(sb, &sb->counts[at], queries[i]);
		} else {
			if (sb->n_counts == sb->cap_counts) {
				size_t cap = sb->cap_counts ? sb->cap_counts * 2 : 64;
				struct kept_count *grown = cmv__realloc(sb->counts, cap * sizeof(*grown));
				if (!grown) {
					error = cmv_error__oom();
					break;
				}
				sb->counts = grown;
				sb->cap_counts = cap;
			}
			at = sb->n_counts;
			sb->counts[at] = (struct kept_count){ .upto = -1 };
			if ((error = count_upto(sb, &sb->counts[at], queries[i])) < 0)
				break;
			sb->n_counts++;
			/* counted up by its term only once found by it (a failed put: brought up by counting) */
			if ((error = cmv__strmap_put(&sb->counted, queries[i], at, NULL)) == 0 && term &&
			    (error = cmv__strmap_put(&sb->terms, sb->term.ptr, at, NULL)) == 0)
				sb->counts[at].term = true;
		}
		if (!error)
			n_match[i] = sb->counts[at].n;
	}
	if (!error && (error = count_upto(sb, &sb->total, NULL)) == 0)
		*n_indexed = sb->total.n;
	if (own_txn) {
		/* a read's end; after an error SQLite may have ended it already */
		sqlite3_stmt *s = sqlite3_get_autocommit(sb->db) ? NULL : stmt(sb, S_COMMIT);
		int end = s ? exec_done(sb, s, "cannot end a read") : 0;
		if (end < 0 && !sqlite3_get_autocommit(sb->db))
			sqlite3_exec(sb->db, "ROLLBACK", NULL, NULL, NULL);
		if (!error)
			error = end;
	}
	return error;
}

static const cmv_store_backend sqlite_backend_template = {
	.version = CMV_STORE_BACKEND_VERSION,
	.name = "sqlite",
	.capabilities = CMV_STORE_CAP_FTS | CMV_STORE_CAP_CONCURRENT | CMV_STORE_CAP_PERSISTENT,
	.txn_begin = sq_txn_begin,
	.txn_commit = sq_txn_commit,
	.txn_rollback = sq_txn_rollback,
	.blob_put = sq_blob_put,
	.blob_get = sq_blob_get,
	.blob_exists = sq_blob_exists,
	.node_put = sq_node_put,
	.node_get = sq_node_get,
	.node_parent = sq_node_parent,
	.ref_get = sq_ref_get,
	.ref_put = sq_ref_put,
	.ref_delete = sq_ref_delete,
	.ref_foreach = sq_ref_foreach,
	.config_get = sq_config_get,
	.config_set = sq_config_set,
	.lookup_prefix = sq_lookup_prefix,
	.object_foreach = sq_object_foreach,
	.object_delete = sq_object_delete,
	.search = sq_search,
	.search_count = sq_search_count,
	.index_pending = sq_index_pending,
	.index_behind = sq_index_behind,
	.blob_users = sq_blob_users,
	.tokcache_get = sq_tokcache_get,
	.tokcache_put = sq_tokcache_put,
	.state_get = sq_state_get,
	.state_set = sq_state_set,
	.state_drop = sq_state_drop,
	.usage_begin = sq_usage_begin,
	.usage_add = sq_usage_add,
	.usage_foreach = sq_usage_foreach,
	.stats = sq_stats,
	.integrity = sq_integrity,
	.free = sq_free,
};

/* cmv_bm25 where FTS5 takes it; where it does not, every search is bm25()'s. */
static void bm25_register(sqlite_backend *sb)
{
	fts5_api *api = NULL;
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(sb->db, "SELECT fts5(?1)", -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_pointer(s, 1, (void *)&api, "fts5_api_ptr", NULL);
		sqlite3_step(s);
	}
	sqlite3_finalize(s);
	sb->bm25_own = api && api->iVersion >= 2 &&
		       api->xCreateFunction(api, "cmv_bm25", sb, cmv_bm25, NULL) == SQLITE_OK;
	/* the fts table's tokenizer (migrations[1]): without it, kept counts are brought up by counting */
	void *user = NULL;
	const char *args[] = { "unicode61", "remove_diacritics", "2" };
	if (api && api->xFindTokenizer(api, "porter", &user, &sb->tok_api) == SQLITE_OK &&
	    sb->tok_api.xCreate(user, args, 3, &sb->tok) != SQLITE_OK)
		sb->tok = NULL;
}

int cmv_store_sqlite_open(cmv_store_backend **out, const char *path, unsigned int flags)
{
	sqlite_backend *sb;
	bool memory = !strcmp(path, ":memory:");
	int oflags, rc, error;
	struct stat st;
	long timeout_ms = BUSY_TIMEOUT_MS_DEFAULT;
	const char *env;

	*out = NULL;
	if (!memory && !(flags & CMV_REPO_OPEN_CREATE) && stat(path, &st) != 0)
		return cmv_error__set(CMV_ENOTFOUND, "no store at '%s'", path);
	if (!(sb = cmv__calloc(1, sizeof(*sb))))
		return cmv_error__oom();
	sb->parent = sqlite_backend_template;
	cmv_buf_init(&sb->scratch, (size_t)64 << 20);
	cmv_buf_init(&sb->term, (size_t)1 << 20);
	sb->readonly = (flags & CMV_REPO_OPEN_READONLY) != 0;
	sb->total.upto = -1; /* none kept yet */
	if (!(sb->path = cmv__strdup(path))) {
		free(sb);
		return cmv_error__oom();
	}
	oflags = SQLITE_OPEN_NOMUTEX | (sb->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
	if (flags & CMV_REPO_OPEN_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &sb->db, oflags, NULL);
	if (rc != SQLITE_OK) {
		error = sq_error(sb, rc, "cannot open");
		goto fail;
	}
	sqlite3_extended_result_codes(sb->db, 0);
	if ((env = getenv("CMV_BUSY_TIMEOUT_MS")) && *env)
		timeout_ms = strtol(env, NULL, 10);
	sqlite3_busy_timeout(sb->db, (int)timeout_ms);
	if (!memory && !sb->readonly &&
	    (error = exec_sql(sb, "PRAGMA journal_mode=WAL", "cannot enable WAL")) < 0)
		goto fail;
	if ((error = exec_sql(sb, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
				  " PRAGMA temp_store=MEMORY",
			      "cannot configure")) < 0)
		goto fail;
	if ((error = migrate(sb)) < 0)
		goto fail;
	bm25_register(sb);
	*out = &sb->parent;
	return 0;
fail:
	sq_free(&sb->parent);
	return error;
}

/* ---- background checkpoints (docs/store.md, "Checkpoints") ------------------------------ */

size_t cmv_dag__ckpt_trigger_pages = 1000;    /* SQLite's own autocheckpoint point */
size_t cmv_dag__ckpt_fallback_pages = 16000;  /* ~64 MiB of 4 KiB pages */

typedef struct ckpt_thread {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/*
	 * Held through each checkpoint: a checkpoint already running makes
	 * another fail at once (SQLite never waits for that lock), so the
	 * fallback waits here for the thread's to end.
	 */
	pthread_mutex_t run;
	/*
	 * Held by the thread through its restart transaction and by the
	 * request connection around its BEGIN IMMEDIATE: a write that comes
	 * meanwhile waits for the restart to commit (a wake-up, not SQLite's
	 * busy handler, which sleeps a millisecond and more).
	 */
	pthread_mutex_t gate;
	pthread_cond_t idle_cv; /* signalled when the thread has nothing left to do */
	sqlite3 *db; /* the thread's own: the request connection is the server's, under its lock */
	bool want, stop, busy;
	int restart_frames; /* the WAL's frames after the thread's last commit (its wal hook) */
	cmv_dag__ckpt_stats stats;
} ckpt_thread;

static void ckpt_gate(sqlite_backend *sb, bool lock)
{
	if (!sb->ckpt || sb->readonly)
		return;
	if (lock)
		pthread_mutex_lock(&sb->ckpt->gate);
	else
		pthread_mutex_unlock(&sb->ckpt->gate);
}

/*
 * SQLite's commit hook for WAL mode, on the request connection, after the
 * commit has released its write lock. It takes the place of SQLite's
 * autocheckpoint hook (which checkpoints right here, on the request):
 * past the trigger it only wakes the thread. The WAL starts over only when
 * a write begins with every frame copied back, so under a steady stream of
 * commits the thread's passive checkpoints can lag forever, the WAL
 * growing; past the fallback this commit therefore runs a FULL checkpoint
 * here, which waits for the thread's checkpoint to end, then (busy
 * timeout) for readers of older snapshots, and copies everything back:
 * the next write starts the WAL over. Only a reader holding one snapshot
 * past the busy timeout can push the WAL beyond the fallback (as it can
 * SQLite's own).
 */
static int ckpt_hook(void *arg, sqlite3 *db, const char *name, int n_pages)
{
	ckpt_thread *c = arg;

	if ((size_t)n_pages >= cmv_dag__ckpt_fallback_pages) {
		pthread_mutex_lock(&c->run);
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_FULL, NULL, NULL);
		pthread_mutex_unlock(&c->run);
		pthread_mutex_lock(&c->mu);
		c->stats.n_fallback++;
		/* all copied back: the thread can pay the restart that the next write would */
		c->want = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	} else if ((size_t)n_pages >= cmv_dag__ckpt_trigger_pages) {
		pthread_mutex_lock(&c->mu);
		if (!c->want) {
			c->want = true;
			pthread_cond_signal(&c->cv);
		}
		pthread_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

/* The thread connection's commit hook: how many frames its commit left in the WAL. */
static int ckpt_own_hook(void *arg, sqlite3 *db, const char *name, int n_pages)
{
	(void)db;
	(void)name;
	((ckpt_thread *)arg)->restart_frames = n_pages;
	return SQLITE_OK;
}

/*
 * SQLite's wal.c (3.40): a write transaction whose snapshot began with
 * every frame of the WAL copied back (or with an empty WAL) starts the WAL
 * over (walRestartLog), and writing its first frame writes the WAL header
 * and syncs it (sqlite3WalFrames, "if( iFrame==0 )": even with
 * synchronous=NORMAL, lest a write reordered after the restart corrupt the
 * database). Left alone, that write is the next request's. So right after
 * a checkpoint that copied everything back the thread makes that write
 * itself: a row put into config and deleted in one transaction (a page
 * changed, nothing visible). A request that writes meanwhile waits at the
 * gate, then appends to a WAL already started. Only when a write got in
 * between the checkpoint and the gate (the transaction finds the writer's
 * lock taken: no busy wait here) does that write pay, as it would have
 * anyway.
 */
static void ckpt_restart(ckpt_thread *c)
{
	int rc;

	c->restart_frames = -1;
	pthread_mutex_lock(&c->gate);
	rc = sqlite3_exec(c->db,
			  "BEGIN IMMEDIATE;"
			  " INSERT OR REPLACE INTO config(key, value) VALUES('wal_restart', '');"
			  " DELETE FROM config WHERE key = 'wal_restart';"
			  " COMMIT",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&c->gate);
	/* a restarted WAL holds this commit's few pages; a longer one had frames nobody copied back yet */
	if (rc == SQLITE_OK && c->restart_frames >= 0 && c->restart_frames <= 8) {
		pthread_mutex_lock(&c->mu);
		c->stats.n_restarts++;
		pthread_mutex_unlock(&c->mu);
	}
}

static void *ckpt_main(void *arg)
{
	ckpt_thread *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->want && !c->stop) {
			c->busy = false;
			pthread_cond_broadcast(&c->idle_cv);
			pthread_cond_wait(&c->cv, &c->mu);
		}
		bool last = c->stop;
		int n_log = -1, n_done = -1, rc;
		c->want = false;
		c->busy = true;
		pthread_mutex_unlock(&c->mu);
		/* PASSIVE: never waits for readers or writers, never blocks a commit */
		pthread_mutex_lock(&c->run);
		rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, &n_log, &n_done);
		pthread_mutex_unlock(&c->run);
		/* everything copied back (or nothing to copy): the next write would restart the WAL */
		if (!last && rc == SQLITE_OK && n_log >= 0 && n_done == n_log)
			ckpt_restart(c);
		pthread_mutex_lock(&c->mu);
		if (rc == SQLITE_OK && n_log >= 0) {
			c->stats.n_done++;
			c->stats.wal_frames = n_log;
			c->stats.backfilled = n_done;
		}
		if (last)
			break;
	}
	c->busy = false;
	pthread_cond_broadcast(&c->idle_cv);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* The thread's connection and locks, once it has stopped or never started. */
static void ckpt_dispose(ckpt_thread *c)
{
	sqlite3_close_v2(c->db);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->run);
	pthread_mutex_destroy(&c->gate);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->idle_cv);
	free(c);
}

static void ckpt_stop(sqlite_backend *sb)
{
	ckpt_thread *c = sb->ckpt;

	if (!c)
		return;
	/* back to SQLite's own hook first, so no commit can signal a thread that is gone */
	sqlite3_wal_autocheckpoint(sb->db, 1000); /* SQLite's default */
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->th, NULL); /* after one last checkpoint */
	sb->ckpt_last = c->stats;
	ckpt_dispose(c);
	sb->ckpt = NULL;
}

int cmv_dag__sqlite_checkpoint_background(cmv_store_backend *b, bool on)
{
	sqlite_backend *sb = SB(b);
	ckpt_thread *c;
	int rc;

	/* other backends have no WAL of ours to checkpoint; nor has a store in memory or read-only */
	if (b->free != sq_free || sb->readonly || !strcmp(sb->path, ":memory:"))
		return 0;
	if (!on) {
		ckpt_stop(sb);
		return 0;
	}
	if (sb->ckpt)
		return 0;
	if (!(c = cmv__calloc(1, sizeof(*c))))
		return cmv_error__oom();
	rc = sqlite3_open_v2(sb->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		int error = cmv_error__set(CMV_EIO, "cannot open a checkpoint connection to '%s': %s",
					   sb->path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		sqlite3_close_v2(c->db);
		free(c);
		return error;
	}
	/*
	 * A connection opens the WAL on its first read; until then a checkpoint
	 * on it is a no-op that reports success.
	 */
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS_DEFAULT);
	rc = sqlite3_exec(c->db, "SELECT 1 FROM sqlite_schema LIMIT 1; PRAGMA synchronous=NORMAL", NULL, NULL,
			  NULL);
	if (rc != SQLITE_OK) {
		int error = cmv_error__set(CMV_EIO, "cannot read '%s' for checkpoints: %s", sb->path,
					   sqlite3_errmsg(c->db));
		sqlite3_close_v2(c->db);
		free(c);
		return error;
	}
	/*
	 * Its restart never waits for the writer's lock (ckpt_restart); its own
	 * commits are counted, not checkpointed (that is the loop's job).
	 */
	sqlite3_busy_timeout(c->db, 0);
	sqlite3_wal_hook(c->db, ckpt_own_hook, c);
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->run, NULL);
	pthread_mutex_init(&c->gate, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->idle_cv, NULL);
	/* a first round at once: a fresh or fully copied WAL is the first request's header sync otherwise */
	c->want = c->busy = true;
	if (pthread_create(&c->th, NULL, ckpt_main, c) != 0) {
		ckpt_dispose(c);
		return cmv_error__set(CMV_ERROR, "cannot start the checkpoint thread");
	}
	sb->ckpt = c;
	/* replaces SQLite's autocheckpoint (wal_autocheckpoint=0) on the request connection */
	sqlite3_wal_hook(sb->db, ckpt_hook, c);
	return 0;
}

void cmv_dag__sqlite_search_cache_stats(cmv_store_backend *b, cmv_dag__search_cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (b->free == sq_free)
		*out = SB(b)->cache_stats;
}

void cmv_dag__sqlite_checkpoint_stats(cmv_store_backend *b, cmv_dag__ckpt_stats *out)
{
	sqlite_backend *sb = SB(b);

	memset(out, 0, sizeof(*out));
	if (b->free != sq_free)
		return;
	if (!sb->ckpt) {
		*out = sb->ckpt_last;
		return;
	}
	pthread_mutex_lock(&sb->ckpt->mu);
	*out = sb->ckpt->stats;
	pthread_mutex_unlock(&sb->ckpt->mu);
}

void cmv_dag__sqlite_checkpoint_wait_idle(cmv_store_backend *b)
{
	sqlite_backend *sb = SB(b);
	ckpt_thread *c;

	if (b->free != sq_free || !(c = sb->ckpt))
		return;
	pthread_mutex_lock(&c->mu);
	while (c->busy || c->want)
		pthread_cond_wait(&c->idle_cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}
