/* SPDX-License-Identifier: MIT */
/*
 * The store backend interface: what a storage engine implements so that
 * dag/ can keep conversations in it.
 *
 * Stability: two persistent backends implement it (SQLite, PostgreSQL in
 * dag/store_pg.c); from now on methods are only appended and each version
 * bump is listed here.
 *
 * Contract for every backend (tests/dag/conformance.c checks it):
 *  1. Ids are computed above the backend. A backend stores what it is given
 *     and never rewrites an id; puts of an existing id are no-ops.
 *  2. dag/ calls every mutating method inside a transaction opened with
 *     txn_begin; nothing is visible to other connections until txn_commit,
 *     and txn_rollback undoes all of it. Reads may run outside one.
 *  3. ref_put with CMV_STORE_REF_CAS compares and swaps atomically with
 *     respect to every other writer of the same store.
 *  4. Methods report failures through cmv_error__set (errors.h), with the
 *     backend's own message, and return the matching CMV_E* code.
 *  5. Memory a method hands back (nodes, refs) is allocated with malloc and
 *     owned by the caller.
 */
#ifndef CMV_SYS_STORE_BACKEND_H
#define CMV_SYS_STORE_BACKEND_H

#include <stdbool.h>
#include "../dag.h"

/*
 * 2: index_behind (a backend built against 1 is refused, not read past its end)
 * 3: search_count
 */
#define CMV_STORE_BACKEND_VERSION 3

enum cmv_store_capabilities {
	CMV_STORE_CAP_FTS = (1u << 0),        /**< search() works */
	CMV_STORE_CAP_CONCURRENT = (1u << 1), /**< several processes may write */
	CMV_STORE_CAP_PERSISTENT = (1u << 2), /**< survives the process */
};

enum cmv_store_blob_flags {
	CMV_STORE_BLOB_INDEX = (1u << 0), /**< the blob's text belongs in the search index */
};

enum cmv_store_ref_flags {
	CMV_STORE_REF_CREATE = (1u << 0), /**< fail with CMV_EEXISTS if it exists */
	CMV_STORE_REF_CAS = (1u << 1),    /**< fail with CMV_EMODIFIED unless target == expected */
};

typedef struct cmv_store_backend cmv_store_backend;

struct cmv_store_backend {
	unsigned int version; /**< CMV_STORE_BACKEND_VERSION */
	const char *name;
	unsigned int capabilities;

	int (*txn_begin)(cmv_store_backend *b);
	int (*txn_commit)(cmv_store_backend *b);
	int (*txn_rollback)(cmv_store_backend *b);

	/** Store a blob; a no-op (apart from indexing) if the id exists. */
	int (*blob_put)(cmv_store_backend *b, const cmv_id *id, const void *data, size_t len,
			unsigned int flags);
	int (*blob_get)(cmv_store_backend *b, cmv_buf *out, const cmv_id *id);
	/** @return 1 (there), 0 (not), or an error */
	int (*blob_exists)(cmv_store_backend *b, const cmv_id *id);

	/** Store a node with its blocks and edges (id and depth set by the caller). */
	int (*node_put)(cmv_store_backend *b, const cmv_node *node);
	int (*node_get)(cmv_store_backend *b, cmv_node **out, const cmv_id *id);
	/** Parent and depth only: what walks need. @return 0, CMV_ENOTFOUND */
	int (*node_parent)(cmv_store_backend *b, cmv_id *parent_out, uint64_t *depth_out,
			   const cmv_id *id);

	int (*ref_get)(cmv_store_backend *b, cmv_ref **out, const char *name);
	/** Create or update a ref (see cmv_store_ref_flags). `expected` may be NULL. */
	int (*ref_put)(cmv_store_backend *b, const cmv_ref *ref, unsigned int flags,
		       const cmv_id *expected);
	int (*ref_delete)(cmv_store_backend *b, const char *name);
	int (*ref_foreach)(cmv_store_backend *b, int (*cb)(const cmv_ref *, void *), void *payload);

	/** Store-wide settings ("HEAD"). value NULL deletes. */
	int (*config_get)(cmv_store_backend *b, cmv_buf *out, const char *key);
	int (*config_set)(cmv_store_backend *b, const char *key, const char *value);

	/**
	 * Objects whose id starts with the `n_digits` hex digits in `prefix`;
	 * at most `max` are written to out/types_out, *n_out gets the total
	 * number found up to max + 1 (so callers can tell "more than max").
	 */
	int (*lookup_prefix)(cmv_store_backend *b, cmv_id *out, cmv_object_type *types_out,
			     size_t max, size_t *n_out, const char *prefix, size_t n_digits);

	/** Every object of one type, in no particular order. cb's non-zero return stops. */
	int (*object_foreach)(cmv_store_backend *b, cmv_object_type type,
			      int (*cb)(const cmv_id *, void *), void *payload);
	/** Remove one object (a node with its blocks and edges; a blob with its index entry). */
	int (*object_delete)(cmv_store_backend *b, cmv_object_type type, const cmv_id *id);

	/**
	 * Bring the search index up to date with every blob written with
	 * CMV_STORE_BLOB_INDEX (a backend may index those late, in batches;
	 * search must see them all). *n_indexed gets the number indexed now.
	 */
	int (*index_pending)(cmv_store_backend *b, size_t *n_indexed);
	/**
	 * Optional: whether index_pending has anything to do, read without a
	 * write lock, so that a search with nothing pending takes none.
	 */
	int (*index_behind)(cmv_store_backend *b, bool *behind);
	/** FTS query in the backend's syntax; calls cb per matching blob, best first. */
	int (*search)(cmv_store_backend *b, const char *fts_query, size_t limit,
		      int (*cb)(const cmv_id *blob, double score, void *), void *payload);
	/** The nodes whose blocks use a blob: cb(node, block index). */
	int (*blob_users)(cmv_store_backend *b, const cmv_id *blob,
			  int (*cb)(const cmv_id *, size_t, void *), void *payload);

	int (*tokcache_get)(cmv_store_backend *b, uint64_t *out, const cmv_id *blob,
			    const char *tokenizer);
	int (*tokcache_put)(cmv_store_backend *b, const cmv_id *blob, const char *tokenizer,
			    uint64_t count);

	/** Per-branch key/value state (such as "llm"). value NULL deletes the key. */
	int (*state_get)(cmv_store_backend *b, cmv_buf *out, const char *branch, const char *key);
	int (*state_set)(cmv_store_backend *b, const char *branch, const char *key,
			 const char *value);
	/** Drop everything kept per branch (state and usage): the branch is gone. */
	int (*state_drop)(cmv_store_backend *b, const char *branch);

	/** Begin a usage segment for a branch. */
	int (*usage_begin)(cmv_store_backend *b, const char *branch,
			   const cmv_usage_segment *seg);
	/** Add to the newest segment of a branch. @return 0, CMV_ENOTFOUND */
	int (*usage_add)(cmv_store_backend *b, const char *branch, const cmv_usage_segment *delta);
	int (*usage_foreach)(cmv_store_backend *b, const char *branch,
			     int (*cb)(const cmv_usage_segment *, void *), void *payload);

	int (*stats)(cmv_store_backend *b, cmv_store_stats *out);
	/** The backend's own consistency check; cb per problem (may be NULL). */
	int (*integrity)(cmv_store_backend *b, size_t *n_problems,
			 int (*cb)(const char *message, void *), void *payload);

	/**
	 * Optional: how many indexed blobs each of n FTS queries (the
	 * backend's syntax, as for search) matches, into n_match[], and how
	 * many are indexed in all: words' document frequencies, for a caller
	 * that weighs words by rarity.
	 */
	int (*search_count)(cmv_store_backend *b, const char *const *fts_queries, size_t n,
			    uint64_t *n_match, uint64_t *n_indexed);

	/** Close and free. Required. */
	void (*free)(cmv_store_backend *b);
};

/**
 * Open the SQLite backend on a file (created with CMV_REPO_OPEN_CREATE) or
 * ":memory:". @return 0, CMV_ENOTFOUND, CMV_EIO, CMV_ECORRUPT, CMV_EVERSION
 */
CMV_EXTERN(int) cmv_store_sqlite_open(cmv_store_backend **out, const char *path,
				      unsigned int flags);

/**
 * Open the PostgreSQL backend on a libpq URL ("postgresql://..." or
 * "postgres://..."); CMV_REPO_OPEN_CREATE creates the schema in an empty
 * database. A build without libpq answers CMV_EUNSUPPORTED.
 * @return 0, CMV_ENOTFOUND, CMV_EIO, CMV_ECORRUPT, CMV_EVERSION, CMV_EUNSUPPORTED
 */
CMV_EXTERN(int) cmv_store_pg_open(cmv_store_backend **out, const char *url, unsigned int flags);

/**
 * Wrap a backend in a repository. The repository takes ownership of the
 * backend (and frees it, also on failure).
 */
CMV_EXTERN(int) cmv_repo_wrap_backend(cmv_repo **out, cmv_store_backend *backend,
				      unsigned int flags);

#endif
