/* SPDX-License-Identifier: MIT */
/* Internal declarations shared by the files of dag/. */
#ifndef CMV_DAG_INTERNAL_H
#define CMV_DAG_INTERNAL_H

#include "base/base.h"
#include <cmv/dag.h>
#include <cmv/sys/store_backend.h>

struct cmv_repo {
	cmv_store_backend *backend;
	unsigned int flags;
	/* Nesting depth of cmv_repo_txn_begin; only depth 0 -> 1 touches the backend. */
	int txn_depth;
	/* An inner level rolled back: the outermost commit must fail. */
	bool txn_doomed;
	/*
	 * The node written last and its depth. Writers build chains, so the
	 * next node's parent is almost always this one: its depth is known
	 * without asking the store. Valid only inside the transaction that
	 * wrote it: cleared when a new outermost transaction begins (another
	 * process may have collected it since) and on rollback.
	 */
	cmv_id last_node;
	uint64_t last_depth;
};

/*
 * Begin a transaction for one library call, joining the caller's if one is
 * open. Pair with cmv_dag__txn_end(repo, error): commits on error == 0,
 * rolls back otherwise, and returns the error to pass up.
 */
int cmv_dag__txn_start(cmv_repo *repo);
int cmv_dag__txn_end(cmv_repo *repo, int error);

/*
 * The canonical bytes of a node: what its id hashes. Everything but the id
 * and the depth is encoded, fields length-prefixed so no two different
 * nodes share an encoding. Format in docs/store.md.
 */
int cmv_dag__node_encode(cmv_buf *out, const cmv_node *node);
void cmv_dag__node_hash(cmv_id *out, const cmv_node *node, cmv_buf *scratch);

/* The block list alone, in the node encoding's format (what stores may keep). */
int cmv_dag__blocks_encode(cmv_buf *out, const cmv_block *blocks, size_t n_blocks);
/*
 * Build a node (one allocation) from its fields in `head` (blocks ignored)
 * and an encoded block list. @return 0, CMV_ECORRUPT, CMV_ENOMEM
 */
int cmv_dag__node_from_parts(cmv_node **out, const cmv_node *head, const void *blocks_enc,
			     size_t blocks_len);

/* Deep copies into one malloc'd block (what backends return). */
cmv_node *cmv_dag__node_copy(const cmv_node *src);
cmv_ref *cmv_dag__ref_copy(const cmv_ref *src);

/* A set of ids (open addressing), for gc marks and walks. */
typedef struct cmv_idset {
	cmv_id *slots;
	size_t n, cap;
} cmv_idset;
void cmv_idset_init(cmv_idset *s);
void cmv_idset_dispose(cmv_idset *s);
/* @return 1 if added, 0 if already there, CMV_ENOMEM */
int cmv_idset_add(cmv_idset *s, const cmv_id *id);
bool cmv_idset_has(const cmv_idset *s, const cmv_id *id);

/*
 * A node's edge lists, by kind, so that code handling edges handles all of
 * them. Kinds are stored numbers: never renumber one.
 */
enum { CMV_EDGE_DERIVED_FROM = 1, CMV_EDGE_COVERS = 2, CMV_EDGE_INCLUDES = 3, CMV_EDGE_KINDS = 3 };
typedef struct cmv_edge_list {
	int kind;
	const char *name;
	const cmv_id *ids;
	size_t n;
} cmv_edge_list;
void cmv_dag__node_edges(cmv_edge_list out[CMV_EDGE_KINDS], const cmv_node *node);
/* Point a node's edge fields at `ids`, laid out kind after kind with `counts`. */
void cmv_dag__node_set_edges(cmv_node *node, const cmv_id *ids, const size_t counts[CMV_EDGE_KINDS]);
size_t cmv_dag__node_n_edges(const cmv_node *node);

/*
 * Background checkpoints for the SQLite backend (a no-op on others), behind
 * cmv_repo_checkpoint_background. The bounds are variables so that tests can
 * cross them with few commits: the WAL size, in pages, past which a commit
 * wakes the thread, and past which the committing connection checkpoints
 * itself (the thread has fallen behind).
 */
extern size_t cmv_dag__ckpt_trigger_pages, cmv_dag__ckpt_fallback_pages;
typedef struct cmv_dag__ckpt_stats {
	unsigned long n_done;     /* checkpoints the thread ran */
	unsigned long n_fallback; /* checkpoints a commit ran, past the fallback */
	unsigned long n_restarts; /* WAL restarts (and their header syncs) the thread paid */
	int wal_frames, backfilled; /* the thread's last checkpoint: frames in the WAL, copied back */
} cmv_dag__ckpt_stats;
int cmv_dag__sqlite_checkpoint_background(cmv_store_backend *b, bool on);
/* The running thread's, else the last stopped one's, else zeros. */
void cmv_dag__sqlite_checkpoint_stats(cmv_store_backend *b, cmv_dag__ckpt_stats *out);
/* For tests: until the thread has nothing left to do (no wake-up pending, none running). */
void cmv_dag__sqlite_checkpoint_wait_idle(cmv_store_backend *b);

/*
 * For tests: what the SQLite backend's search caches did (docs/store.md,
 * "Search"); zeros on other backends. A drop is a cache thrown away that
 * held something.
 */
typedef struct cmv_dag__search_cache_stats {
	unsigned long count_drops;  /* search_count's kept counts */
	unsigned long counted_all;  /* counts taken over the whole index */
	unsigned long counted_since; /* kept counts brought up to date over the texts indexed since */
	unsigned long length_drops; /* cmv_bm25's kept lengths */
	unsigned long state_reads;  /* the watermark and epoch read again */
} cmv_dag__search_cache_stats;
void cmv_dag__sqlite_search_cache_stats(cmv_store_backend *b, cmv_dag__search_cache_stats *out);

/*
 * For tests (PostgreSQL only, else CMV_EINVALID): EXPLAIN's text of the
 * statement `what` ("search", "search_count" for the FTS5 `query`;
 * "index_behind", "pending", which take none) runs,
 * the custom plan or the generic one.
 */
int cmv_dag__pg_explain(cmv_buf *plan, cmv_store_backend *b, const char *what, const char *query, bool generic);

/* Whether a block type's content is text worth indexing. */
bool cmv_dag__block_is_text(const char *type, const char *media_type);

#endif
