/* SPDX-License-Identifier: MIT */
/*
 * The content-addressed conversation store: repositories, blobs, nodes,
 * refs, walks, search, gc and fsck.
 *
 * Model (docs/store.md has the full page):
 *  - a blob is immutable bytes, stored once per id (the xxh3-128 of the bytes);
 *  - a node is one entry of a conversation: parent, role, kind, an ordered
 *    list of blocks (type + blob id + small fields), source meta, and
 *    `derived_from` / `covers` / `includes` edges. Its id hashes all of that,
 *    so the same history written twice is stored once;
 *  - a branch is a movable name for a node, moved by compare-and-swap; a
 *    snapshot is an immutable name for a node. Both cost one row;
 *  - the conversation at a ref is the path from the root to its node.
 *
 * Transactions: every mutating call runs in a transaction of its own unless
 * the caller holds one (cmv_repo_txn_begin), in which case it joins it. A
 * failed call inside the caller's transaction leaves that transaction open;
 * the caller rolls back. Nothing a failed call wrote is ever visible.
 *
 * Threads: a cmv_repo is used by one thread at a time. Open one per thread;
 * the store itself serialises writers across threads and processes.
 */
#ifndef CMV_DAG_H
#define CMV_DAG_H

#include "common.h"
#include "buf.h"
#include "id.h"

typedef struct cmv_repo cmv_repo;
typedef struct cmv_walk cmv_walk;

/* ---- repositories ------------------------------------------------------ */

/** The folder a store lives in, below a project directory. */
#define CMV_DIRNAME ".cmv"
/** The store file inside CMV_DIRNAME. */
#define CMV_STORE_FILENAME "store.db"

enum cmv_repo_open_flags {
	/** Create the store file (and its folders, parents too) if missing. */
	CMV_REPO_OPEN_CREATE = (1u << 0),
	/** Recompute blob ids on every read and fail with CMV_EMISMATCH. */
	CMV_REPO_OPEN_VERIFY = (1u << 1),
	/** Never write: open read-only. */
	CMV_REPO_OPEN_READONLY = (1u << 2),
};

/**
 * Create DIR/.cmv/ with an empty store, or open the existing one.
 * @param out the repository; free with cmv_repo_free()
 * @param dir the project directory (created if missing)
 * @return 0, CMV_EIO, CMV_ECORRUPT, CMV_EVERSION
 */
CMV_EXTERN(int) cmv_repo_init(cmv_repo **out, const char *dir);

/**
 * Open a store.
 * @param path a `.cmv` folder, a store file, ":memory:" for a private
 *        in-memory store (tests, scratch work), or a PostgreSQL URL
 *        ("postgresql://..." or "postgres://...", see docs/store.md)
 * @param flags cmv_repo_open_flags
 * @return 0, CMV_ENOTFOUND (no store there and no CREATE flag), CMV_EIO,
 *         CMV_ECORRUPT, CMV_EVERSION (written by a newer cmv)
 */
CMV_EXTERN(int) cmv_repo_open(cmv_repo **out, const char *path, unsigned int flags);

/**
 * Find the store to use: `$CMV_DIR` if set, else the nearest `.cmv/`
 * walking up from `start` (the working directory when NULL).
 * @param out the path of the `.cmv` folder
 * @return 0, CMV_ENOTFOUND
 */
CMV_EXTERN(int) cmv_repo_discover(cmv_buf *out, const char *start);

/** Whether a store location is a URL (PostgreSQL), not a path. */
CMV_EXTERN(int) cmv_store_is_url(const char *location);

/**
 * A store location fit to print or log: a URL loses its password (in the
 * user part or the query string); a path is itself.
 */
CMV_EXTERN(int) cmv_store_display(cmv_buf *out, const char *location);

/** Close the store; NULL is a no-op. An open transaction is rolled back. */
CMV_EXTERN(void) cmv_repo_free(cmv_repo *repo);

/**
 * For long-running servers: checkpoint SQLite's write-ahead log on a thread
 * of its own (with its own connection) instead of inside whichever commit
 * crosses SQLite's threshold (docs/store.md, "Checkpoints"). Durability is
 * unchanged. Call it while no other thread uses the repo (before serving,
 * after); cmv_repo_free stops it too. A no-op for PostgreSQL, ":memory:" and
 * read-only stores.
 * @param on 1 to start; 0 to stop (one last checkpoint, then the thread is joined)
 * @return 0, CMV_EIO, CMV_ENOMEM, CMV_ERROR
 */
CMV_EXTERN(int) cmv_repo_checkpoint_background(cmv_repo *repo, int on);

/** 1 when the store was opened with CMV_REPO_OPEN_READONLY (it writes nothing), else 0. */
CMV_EXTERN(int) cmv_repo_is_readonly(const cmv_repo *repo);

/** The name of the backend ("sqlite"). Borrowed; lives as long as repo. */
CMV_EXTERN(const char *) cmv_repo_backend_name(const cmv_repo *repo);

/**
 * Begin, commit or roll back a transaction. They nest: only the outermost
 * commit writes, and a rollback at any depth aborts the whole transaction
 * (later commits then fail with CMV_ERROR until the outermost level ends).
 * @return 0, CMV_ELOCKED (another writer held the store past the busy
 *         timeout), CMV_EIO, CMV_ERROR
 */
CMV_EXTERN(int) cmv_repo_txn_begin(cmv_repo *repo);
CMV_EXTERN(int) cmv_repo_txn_commit(cmv_repo *repo);
CMV_EXTERN(void) cmv_repo_txn_rollback(cmv_repo *repo);

/** Row and byte counts of a store (for tests, `cmv info`, the bench). */
#define CMV_STORE_STATS_VERSION 1
typedef struct cmv_store_stats {
	unsigned int version; /**< set by the call that fills it: the layout it wrote (CMV_STORE_STATS_VERSION) */
	uint64_t n_blobs, n_nodes, n_blocks, n_edges, n_refs;
	uint64_t n_other_rows; /**< config, token cache, branch state, usage, ... */
	uint64_t blob_bytes;   /**< sum of blob sizes */
	uint64_t file_bytes;   /**< bytes on disk (0 for in-memory stores) */
} cmv_store_stats;

/** @return 0, CMV_EIO */
CMV_EXTERN(int) cmv_repo_stats(cmv_store_stats *out, cmv_repo *repo);

/* ---- blobs ------------------------------------------------------------- */

/**
 * Store bytes as a blob (once per id) and return its id.
 * @return 0, CMV_ETOOBIG (over CMV_BUF_CONTENT), CMV_EIO, CMV_ELOCKED
 */
CMV_EXTERN(int) cmv_blob_write(cmv_id *out, cmv_repo *repo, const void *data, size_t len);

/**
 * Read a blob into `out` (replacing its contents).
 * @return 0, CMV_ENOTFOUND, CMV_ETOOBIG (over out->max), CMV_EMISMATCH
 *         (verification on and the bytes do not hash to the id), CMV_EIO
 */
CMV_EXTERN(int) cmv_blob_read(cmv_buf *out, cmv_repo *repo, const cmv_id *id);

/* ---- nodes ------------------------------------------------------------- */

typedef enum {
	CMV_ROLE_SYSTEM = 1,
	CMV_ROLE_USER = 2,
	CMV_ROLE_ASSISTANT = 3,
	CMV_ROLE_TOOL = 4,
} cmv_role;

typedef enum {
	CMV_KIND_MESSAGE = 1, /**< sent to models */
	CMV_KIND_EVENT = 2,   /**< kept for faithful export, never sent */
	CMV_KIND_SUMMARY = 3, /**< stands in for the nodes it `covers` */
} cmv_kind;

enum cmv_block_flags {
	CMV_BLOCK_ERROR = (1u << 0), /**< a tool result that reports failure */
};

/** Longest block type, tool id, tool name or media type, in bytes. */
#define CMV_FIELD_MAX 1024

/** One block of a stored node. Strings are NULL when absent (never ""). */
typedef struct cmv_block {
	const char *type;       /**< "text", "image", "tool_use", "tool_result", "thinking", ... */
	cmv_id blob;            /**< the content */
	const char *tool_id;    /**< a tool call id (tool_use, tool_result) */
	const char *tool_name;  /**< a tool name (tool_use) */
	const char *media_type; /**< "image/png", ... */
	unsigned int flags;     /**< cmv_block_flags */
} cmv_block;

/** A stored node, as read back. One allocation: free with cmv_node_free(). */
typedef struct cmv_node {
	cmv_id id;
	cmv_id parent;         /**< CMV_ID_NONE for a root */
	cmv_role role;
	cmv_kind kind;
	uint64_t depth;        /**< ancestors above it: 0 for a root (not hashed) */
	size_t n_blocks;
	const cmv_block *blocks;
	const char *meta;      /**< source meta (opaque bytes, JSON by convention); may be NULL */
	size_t meta_len;
	size_t n_derived_from;
	const cmv_id *derived_from;
	size_t n_covers;
	const cmv_id *covers;
	size_t n_includes;
	const cmv_id *includes;    /**< an ordered list (session manifests) */
} cmv_node;

/*
 * The structs below only ever grow at the end. Initialise them with
 * designated initializers ({ .type = "text", ... }) so that code keeps
 * compiling, with the new fields zero, when a field is added.
 */

/** One block of a message to write: its content bytes and small fields. */
typedef struct cmv_block_content {
	const char *type;
	const void *data;
	size_t len;
	const char *tool_id;
	const char *tool_name;
	const char *media_type;
	unsigned int flags;
	/**
	 * An existing blob to use as the content instead of data/len (which
	 * are then ignored): a rewrite (a trim) keeps what it does not change
	 * without reading or hashing it again. CMV_ENOTFOUND if missing.
	 */
	const cmv_id *blob;
} cmv_block_content;

/**
 * A message to write as a node. Ids in the edge lists must exist.
 *  - derived_from: this node is a rewrite (a trim) of those;
 *  - covers: this summary stands in for those;
 *  - includes: this node lists those, in order (an imported session's
 *    records in file order). gc keeps what is included.
 */
typedef struct cmv_message {
	cmv_role role;
	cmv_kind kind;
	size_t n_blocks;
	const cmv_block_content *blocks;
	const char *meta;
	size_t meta_len;
	size_t n_derived_from;
	const cmv_id *derived_from;
	size_t n_covers;
	const cmv_id *covers;
	size_t n_includes;
	const cmv_id *includes;
} cmv_message;

/**
 * Write one node (and its blobs) below `parent` (NULL for a root). Moves no
 * ref: the node is reachable only once a ref or another node points at it.
 * Writing an identical node again is a no-op that returns the same id.
 * @return 0, CMV_EINVALID (bad role, kind or field), CMV_ENOTFOUND (parent
 *         or an edge target missing), CMV_ETOOBIG, CMV_EIO, CMV_ELOCKED
 */
CMV_EXTERN(int) cmv_node_write(cmv_id *out, cmv_repo *repo, const cmv_id *parent,
			       const cmv_message *msg);

/** Read a node. @return 0, CMV_ENOTFOUND, CMV_EIO */
CMV_EXTERN(int) cmv_node_read(cmv_node **out, cmv_repo *repo, const cmv_id *id);
CMV_EXTERN(void) cmv_node_free(cmv_node *node);

/** The canonical text of a role or kind ("user", "event"), or NULL. */
CMV_EXTERN(const char *) cmv_role_name(cmv_role role);
CMV_EXTERN(const char *) cmv_kind_name(cmv_kind kind);
/** Parse a role or kind name. @return 0 or CMV_EINVALID */
CMV_EXTERN(int) cmv_role_parse(cmv_role *out, const char *name);
CMV_EXTERN(int) cmv_kind_parse(cmv_kind *out, const char *name);

enum cmv_append_flags {
	/** Create the branch (as a new root chain) when it does not exist. */
	CMV_APPEND_CREATE = (1u << 0),
};

/**
 * Append messages to a branch in one transaction: each becomes a node below
 * the previous one, and the branch moves to the last. Safe against
 * concurrent appenders: the head is read and moved inside the transaction.
 * @param out the new head (may be NULL)
 * @return 0, CMV_ENOTFOUND (no such branch), CMV_EINVALID (not a branch,
 *         or a bad message), CMV_ELOCKED, CMV_EIO
 */
CMV_EXTERN(int) cmv_append(cmv_id *out, cmv_repo *repo, const char *branch,
			   const cmv_message *msgs, size_t n_msgs, unsigned int flags);

/* ---- refs -------------------------------------------------------------- */

typedef enum {
	CMV_REF_BRANCH = 1,
	CMV_REF_SNAPSHOT = 2,
	CMV_REF_SESSION = 3, /**< an imported session file's manifest (see cmv_session_set) */
} cmv_ref_type;

/** Longest ref name, in bytes. */
#define CMV_REF_NAME_MAX 255

/** A ref as read back. One allocation: free with cmv_ref_free(). */
typedef struct cmv_ref {
	const char *name;
	cmv_ref_type type;
	cmv_id target;            /**< CMV_ID_NONE for an empty branch */
	const char *description;  /**< may be NULL */
	size_t n_tags;
	const char *const *tags;
	int64_t created;          /**< unix seconds */
	int64_t updated;          /**< unix seconds; == created for snapshots */
	const char *from_ref;     /**< the ref it was made from; may be NULL */
} cmv_ref;

CMV_EXTERN(void) cmv_ref_free(cmv_ref *ref);

/**
 * 1 when `name` is a valid ref name: 1..255 bytes of [A-Za-z0-9._/-], not
 * starting with '-' or '.', no "..", no "//", not ending in '/' or '.',
 * and not a possible id prefix (7+ hex digits alone) or "HEAD".
 */
CMV_EXTERN(int) cmv_ref_name_is_valid(const char *name);

/** @return 0, CMV_ENOTFOUND, CMV_EIO */
CMV_EXTERN(int) cmv_ref_lookup(cmv_ref **out, cmv_repo *repo, const char *name);

/**
 * Create a branch at `at` (NULL: an empty branch), remembering the ref it
 * was made from (may be NULL). One row, whatever the history size.
 * @return 0, CMV_EEXISTS, CMV_EINVALID (bad name), CMV_ENOTFOUND (no node)
 */
CMV_EXTERN(int) cmv_branch_create(cmv_repo *repo, const char *name, const cmv_id *at,
				  const char *from_ref);

/**
 * Move a branch to `target` if it still points at `expected` (NULL: do not
 * check). The compare-and-swap that keeps two writers from losing each
 * other's work.
 * @return 0, CMV_EMODIFIED (it moved), CMV_ENOTFOUND, CMV_EINVALID (a snapshot)
 */
CMV_EXTERN(int) cmv_branch_update(cmv_repo *repo, const char *name, const cmv_id *target,
				  const cmv_id *expected);

/**
 * Point the session ref `name` at a manifest node, creating it if needed;
 * with `expected` (may be NULL) the move is a compare-and-swap. Importers
 * use session refs to name the record list of a source file, so that the
 * file can be written back record for record.
 * @return 0, CMV_EMODIFIED, CMV_EINVALID (bad name, or a branch/snapshot of
 *         that name exists), CMV_ENOTFOUND (no such node)
 */
CMV_EXTERN(int) cmv_session_set(cmv_repo *repo, const char *name, const cmv_id *manifest,
				const cmv_id *expected);

/** Options for cmv_snapshot_create(). */
typedef struct cmv_snapshot_options {
	unsigned int version;
	const char *description;  /**< may be NULL */
	const char *const *tags;  /**< may be NULL */
	size_t n_tags;
} cmv_snapshot_options;
#define CMV_SNAPSHOT_OPTIONS_VERSION 1
#define CMV_SNAPSHOT_OPTIONS_INIT { CMV_SNAPSHOT_OPTIONS_VERSION, NULL, NULL, 0 }
/** The defaults, as CMV_SNAPSHOT_OPTIONS_INIT gives them (for callers that cannot use the macro). */
CMV_EXTERN(void) cmv_snapshot_options_init(cmv_snapshot_options *opts);

/**
 * Create an immutable snapshot of node `at`, made from `from_ref` (may be
 * NULL). One row, whatever the history size.
 * @return 0, CMV_EEXISTS, CMV_EINVALID (bad name or tag), CMV_ENOTFOUND
 */
CMV_EXTERN(int) cmv_snapshot_create(cmv_repo *repo, const char *name, const cmv_id *at,
				    const char *from_ref, const cmv_snapshot_options *opts);

/**
 * Delete a branch or snapshot. The content stays until gc finds nothing
 * else reaching it. The current branch cannot be deleted.
 * @return 0, CMV_ENOTFOUND, CMV_EINVALID (the current branch)
 */
CMV_EXTERN(int) cmv_ref_delete(cmv_repo *repo, const char *name);

/**
 * Call `cb` for every ref, in creation order. A non-zero
 * return from cb stops the walk and is returned.
 */
CMV_EXTERN(int) cmv_ref_foreach(cmv_repo *repo, int (*cb)(const cmv_ref *ref, void *payload),
				void *payload);

/** The current branch's name. @return 0, CMV_ENOTFOUND (none set) */
CMV_EXTERN(int) cmv_head_get(cmv_buf *out, cmv_repo *repo);
/** Make `branch` current. @return 0, CMV_ENOTFOUND, CMV_EINVALID (not a branch) */
CMV_EXTERN(int) cmv_head_set(cmv_repo *repo, const char *branch);

/* ---- names and ids ----------------------------------------------------- */

typedef enum {
	CMV_OBJ_BLOB = 1,
	CMV_OBJ_NODE = 2,
} cmv_object_type;

/**
 * Resolve what a user typed to a node id: "HEAD" (the current branch), a
 * ref name, or a node id prefix of at least 7 hex digits; each may end in
 * "~N" for the N-th ancestor.
 * @return 0, CMV_ENOTFOUND (also: an empty branch), CMV_EAMBIGUOUS (the
 *         message lists the candidates), CMV_EINVALID
 */
CMV_EXTERN(int) cmv_resolve(cmv_id *out, cmv_repo *repo, const char *spec);

/**
 * Resolve an id prefix to a blob or a node.
 * @return 0, CMV_ENOTFOUND, CMV_EAMBIGUOUS, CMV_EINVALID (not a prefix)
 */
CMV_EXTERN(int) cmv_resolve_object(cmv_id *out, cmv_object_type *type_out, cmv_repo *repo,
				   const char *prefix);

/* ---- walks ------------------------------------------------------------- */

/**
 * A walk over the conversation ending at `tip`, from the root down to tip.
 * Creating it reads the tip (O(depth) memory for the chain of ids); the
 * chain is read up from the tip only as far as the walk goes, so seeking
 * to the last N nodes reads N parents, and a walk from the root reads them
 * all once. Each next reads one node.
 * @return 0, CMV_ENOTFOUND, CMV_ECORRUPT (the tip's depth is impossible)
 */
CMV_EXTERN(int) cmv_walk_new(cmv_walk **out, cmv_repo *repo, const cmv_id *tip);
/**
 * The next node. Borrowed: valid until the next call on the walk.
 * @return 0, CMV_ITEROVER at the end, CMV_ECORRUPT (a parent is missing,
 *         or the depths disagree with the chain), CMV_EIO
 */
CMV_EXTERN(int) cmv_walk_next(const cmv_node **out, cmv_walk *walk);
/** Number of nodes the walk visits. */
CMV_EXTERN(size_t) cmv_walk_length(const cmv_walk *walk);
/** Skip to the i-th node (0 = root); the next call to next returns it. */
CMV_EXTERN(void) cmv_walk_seek(cmv_walk *walk, size_t index);
CMV_EXTERN(void) cmv_walk_reset(cmv_walk *walk);
CMV_EXTERN(void) cmv_walk_free(cmv_walk *walk);

/**
 * 1 when `ancestor` is on the path from the root to `node` (a node is its
 * own ancestor), 0 when not. @return 1, 0, or a negative error
 */
CMV_EXTERN(int) cmv_is_ancestor(cmv_repo *repo, const cmv_id *ancestor, const cmv_id *node);

/**
 * Other notes kept per branch, by key (a trim's provenance: "trim"). The
 * branch's model has its own calls (cmv_branch_llm_get/set). A NULL value
 * deletes the note. Notes go with the branch when it is deleted.
 * @return 0, CMV_ENOTFOUND (get: no such note), CMV_EINVALID, CMV_EIO
 */
CMV_EXTERN(int) cmv_branch_note_get(cmv_buf *out, cmv_repo *repo, const char *branch, const char *key);
CMV_EXTERN(int) cmv_branch_note_set(cmv_repo *repo, const char *branch, const char *key, const char *value);

/**
 * Notes kept for the whole store, by key (a model's calibration from billed
 * usage: "calibration:MODEL"), apart from the store's own settings. A NULL
 * value deletes the note. They outlive every branch.
 * @return 0, CMV_ENOTFOUND (get: no such note), CMV_EINVALID, CMV_EIO
 */
CMV_EXTERN(int) cmv_store_note_get(cmv_buf *out, cmv_repo *repo, const char *key);
CMV_EXTERN(int) cmv_store_note_set(cmv_repo *repo, const char *key, const char *value);

/* ---- the tree of refs -------------------------------------------------- */

/** One ref in the tree: its parent is the ref it was made from. */
typedef struct cmv_tree_entry {
	const cmv_ref *ref;
	size_t parent;         /**< index in entries, or SIZE_MAX for a root */
	size_t depth;          /**< nesting depth in the tree */
	uint64_t n_nodes;      /**< messages and events in its conversation */
} cmv_tree_entry;

typedef struct cmv_tree {
	size_t n_entries;
	cmv_tree_entry *entries; /**< pre-order: each parent before its children */
} cmv_tree;

/**
 * The snapshots and branches as a tree of lineage ("made from"). A ref
 * whose source was deleted becomes a root.
 * @return 0, CMV_EIO, CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_tree_build(cmv_tree **out, cmv_repo *repo);
CMV_EXTERN(void) cmv_tree_free(cmv_tree *tree);

/* ---- search ------------------------------------------------------------ */

/** One search hit: a block whose text matches. Borrowed inside the callback. */
typedef struct cmv_search_hit {
	cmv_id node;
	size_t block;          /**< index of the block in the node */
	cmv_id blob;
	double score;          /**< BM25, lower is better (SQLite's sign) */
	const char *snippet;   /**< a short excerpt around the first match */
} cmv_search_hit;

enum cmv_search_flags {
	/** Pass the query to FTS5 as is (its syntax: AND, OR, NEAR, "..."). */
	CMV_SEARCH_RAW = (1u << 0),
	/** Match any term instead of all of them. */
	CMV_SEARCH_ANY = (1u << 1),
	/** No snippets (hit->snippet is ""): a caller that only wants the ids reads no blob. */
	CMV_SEARCH_NO_SNIPPET = (1u << 2),
	/**
	 * One hit per matching blob, with no node (hit->node is zeroed, block
	 * 0): a caller that knows where its blobs are does no lookup per hit,
	 * and `limit` hits back means the results went on.
	 */
	CMV_SEARCH_BLOBS = (1u << 3),
};

/**
 * Bring the search index up to date. Appends leave their text pending so
 * that writing stays fast; cmv_search() calls this first, so a search
 * always sees everything. Call it yourself at an idle moment to keep the
 * first search after a large import quick.
 * @param n_indexed_out blobs indexed now (may be NULL)
 * @return 0, CMV_ELOCKED, CMV_EIO
 */
CMV_EXTERN(int) cmv_repo_index(size_t *n_indexed_out, cmv_repo *repo);

/**
 * Full-text search over block text (tool outputs included), best first.
 * Indexes pending text first (a write) unless the store was opened read-only.
 * Without CMV_SEARCH_RAW each word of `query` is matched literally.
 * @return 0, CMV_EINVALID (bad FTS5 syntax in raw mode), CMV_EIO, or cb's
 *         non-zero return
 */
CMV_EXTERN(int) cmv_search(cmv_repo *repo, const char *query, size_t limit, unsigned int flags,
			   int (*cb)(const cmv_search_hit *hit, void *payload), void *payload);

/**
 * How many indexed texts each of n searches matches, into n_match[] (each
 * query as cmv_search reads it with `flags`: CMV_SEARCH_RAW,
 * CMV_SEARCH_ANY), and how many texts are indexed in all (n_indexed may be
 * NULL). A word alone gives its document frequency, stemmed as the index
 * stems it: what a caller needs to weigh words by their rarity (inverse
 * document frequency). Each count is a pass over the word's matches (the
 * SQLite store keeps its counts until its index changes).
 * @return 0, CMV_EINVALID (an empty or bad query), CMV_EUNSUPPORTED (a
 *         backend without it), CMV_ELOCKED, CMV_EIO
 */
CMV_EXTERN(int) cmv_search_count(cmv_repo *repo, const char *const *queries, size_t n, unsigned int flags,
				 uint64_t *n_match, uint64_t *n_indexed);

/* ---- token cache ------------------------------------------------------- */

/** @return 0, CMV_ENOTFOUND */
CMV_EXTERN(int) cmv_tokcache_get(uint64_t *out, cmv_repo *repo, const cmv_id *blob,
				 const char *tokenizer);
CMV_EXTERN(int) cmv_tokcache_put(cmv_repo *repo, const cmv_id *blob, const char *tokenizer,
				 uint64_t count);

/* ---- per-branch model state -------------------------------------------- */

/**
 * The LLM a branch runs on: a registry key ("gpt-4o") or an inline JSON
 * descriptor ({"provider":..,"model":..,"base_url":..,"options":{..}}).
 * Never a secret: a descriptor with a key, token, password or secret field
 * (an `api_key_env` naming a variable is fine) or a value that looks like
 * a credential is refused with CMV_EINVALID.
 */
CMV_EXTERN(int) cmv_branch_llm_get(cmv_buf *out, cmv_repo *repo, const char *branch);

/**
 * Set a branch's LLM. When it changes, a model-switch event node is
 * appended to the branch and a new usage segment begins, in one transaction.
 * @return 0, CMV_EINVALID (a secret, bad JSON), CMV_ENOTFOUND
 */
CMV_EXTERN(int) cmv_branch_llm_set(cmv_repo *repo, const char *branch, const char *llm);

/**
 * cmv_branch_llm_set() with what a host knows: `signature` (NULL: made from
 * `llm` as above) keys the usage segment, so that a registry key and a
 * descriptor of one model share it (cmv_model_handle_open() normalizes
 * them); `detail` (a JSON object, may be NULL) adds its members to the
 * switch event (the fit a switch measured). Setting another name of the
 * model whose segment is current changes the reference alone: no event, no
 * segment. `event` (may be NULL) gets the event node, or CMV_ID_NONE.
 * @return as cmv_branch_llm_set()
 */
CMV_EXTERN(int) cmv_branch_llm_switch(cmv_id *event, cmv_repo *repo, const char *branch, const char *llm,
				      const char *signature, const char *detail);

/** Token usage of one model on one branch, from the turn it took over. */
typedef struct cmv_usage_segment {
	const char *signature;  /**< provider/model[@base_url], or the registry key */
	cmv_id start_node;      /**< the branch head when the segment began */
	uint64_t start_turn;    /**< depth of that node + 1 (0 for an empty branch) */
	int64_t started;        /**< unix seconds */
	uint64_t calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens;
} cmv_usage_segment;

/** Add one call's usage to the branch's current segment. @return 0, CMV_ENOTFOUND (no segment) */
CMV_EXTERN(int) cmv_usage_record(cmv_repo *repo, const char *branch, uint64_t input_tokens,
				 uint64_t output_tokens, uint64_t cache_read_tokens,
				 uint64_t cache_write_tokens);

/**
 * Add one call's usage to the branch's segment for the model `signature`:
 * the current segment when it is that model's, else a new segment of that
 * model begins at the branch's head (a call to another model than the
 * branch's is booked to the model it used, never to the current one).
 * @return 0, CMV_ENOTFOUND (no such branch), CMV_EINVALID (a snapshot)
 */
CMV_EXTERN(int) cmv_usage_record_for(cmv_repo *repo, const char *branch, const char *signature,
				     uint64_t input_tokens, uint64_t output_tokens, uint64_t cache_read_tokens,
				     uint64_t cache_write_tokens);

/** Call cb for each segment of a branch, oldest first. */
CMV_EXTERN(int) cmv_usage_foreach(cmv_repo *repo, const char *branch,
				  int (*cb)(const cmv_usage_segment *seg, void *payload),
				  void *payload);

/* ---- maintenance ------------------------------------------------------- */

#define CMV_GC_STATS_VERSION 1
typedef struct cmv_gc_stats {
	unsigned int version; /**< set by the call that fills it: the layout it wrote (CMV_GC_STATS_VERSION) */
	uint64_t nodes_kept, nodes_removed;
	uint64_t blobs_kept, blobs_removed;
	uint64_t bytes_removed;
} cmv_gc_stats;

enum cmv_gc_flags {
	CMV_GC_DRY_RUN = (1u << 0), /**< count, remove nothing */
};

/**
 * Remove every node and blob that no ref reaches through parent,
 * derived_from, covers and includes edges (and the blocks of reachable nodes). One
 * transaction: a failure removes nothing.
 * @return 0, CMV_ECORRUPT (a reachable object is missing: run fsck), CMV_EIO
 */
CMV_EXTERN(int) cmv_gc(cmv_gc_stats *out, cmv_repo *repo, unsigned int flags);

typedef enum {
	CMV_FSCK_BLOB_MISMATCH = 1,   /**< a blob's bytes no longer hash to its id */
	CMV_FSCK_NODE_MISMATCH = 2,   /**< a node's fields no longer hash to its id */
	CMV_FSCK_MISSING_BLOB = 3,    /**< a node names a blob that is not there */
	CMV_FSCK_MISSING_NODE = 4,    /**< a parent or edge target is not there */
	CMV_FSCK_DANGLING_REF = 5,    /**< a ref points at a node that is not there */
	CMV_FSCK_BAD_HEAD = 6,        /**< the current branch is not a branch */
	CMV_FSCK_BAD_DEPTH = 7,       /**< a node's depth disagrees with its parent's */
	CMV_FSCK_INTEGRITY = 8,       /**< the backend's own check failed */
} cmv_fsck_problem_type;

typedef struct cmv_fsck_problem {
	cmv_fsck_problem_type type;
	cmv_id id;            /**< the object concerned (NONE for refs) */
	const char *name;     /**< the ref concerned, or NULL */
	const char *message;  /**< one line */
} cmv_fsck_problem;

/**
 * Check every blob, node and ref. Calls cb (may be NULL) for each problem.
 * @param n_problems_out number of problems found
 * @return 0 when the check ran (problems or not), or a negative error
 */
CMV_EXTERN(int) cmv_fsck(size_t *n_problems_out, cmv_repo *repo,
			 int (*cb)(const cmv_fsck_problem *problem, void *payload), void *payload);

/** Where export output goes: a write callback (0 on success). */
typedef int (*cmv_write_fn)(const void *data, size_t len, void *payload);

/* ---- sync (push and pull) ---------------------------------------------------- */

/** What happened to one ref in a sync. */
typedef enum cmv_sync_status {
	CMV_SYNC_UP_TO_DATE,   /**< the destination had it */
	CMV_SYNC_CREATED,      /**< new in the destination */
	CMV_SYNC_FAST_FORWARD, /**< a branch moved forward */
	CMV_SYNC_FORCED,       /**< replaced, with CMV_SYNC_FORCE */
	CMV_SYNC_REJECTED,     /**< left alone: see reason */
} cmv_sync_status;

typedef struct cmv_sync_ref {
	const char *name;
	cmv_ref_type type;
	cmv_id old_target; /**< in the destination before (none: it had no such ref) */
	cmv_id new_target;
	cmv_sync_status status;
	const char *reason; /**< CMV_SYNC_REJECTED: why */
	uint64_t nodes, blobs, bytes; /**< sent for this ref */
} cmv_sync_ref;

typedef struct cmv_sync_stats {
	size_t refs_moved, refs_up_to_date, refs_rejected;
	uint64_t nodes, blobs, bytes;
} cmv_sync_stats;

enum cmv_sync_flags {
	/** Move refs that are not fast-forwards, and replace snapshots. */
	CMV_SYNC_FORCE = (1u << 0),
};

typedef struct cmv_sync_options {
	unsigned int flags;      /**< cmv_sync_flags */
	const char *origin;      /**< the source as recorded in each moved ref's "origin" note (no secret) */
	size_t batch_nodes;      /**< nodes per transaction (0: 1000) */
	/** After each committed batch; non-zero stops the sync (what is committed stays). */
	int (*progress)(const char *ref, size_t done, size_t total, void *payload);
	/** Once per ref, after it was handled. */
	int (*report)(const cmv_sync_ref *ref, void *payload);
	void *payload;
} cmv_sync_options;
#define CMV_SYNC_OPTIONS_INIT { 0, NULL, 0, NULL, NULL, NULL }

/**
 * Send refs (all of the source's when n_refs is 0) and the objects they
 * reach that `dst` lacks, from `src` to `dst` (see dag/sync.c): negotiated
 * by ids, verified on arrival, written in batches (an interrupted sync run
 * again sends only the rest), refs moved by compare-and-swap, a branch only
 * forward unless forced. Rejected refs are counted, not errors.
 * @return 0, CMV_ENOTFOUND (a named ref is not in src), CMV_EMISMATCH, CMV_EIO, ...
 */
CMV_EXTERN(int) cmv_sync(cmv_sync_stats *out, cmv_repo *dst, cmv_repo *src, const char *const *refs,
			 size_t n_refs, const cmv_sync_options *opts);

/* ---- bundles ---------------------------------------------------------------- */

/** What a bundle held, or what an import added. */
#define CMV_BUNDLE_STATS_VERSION 1
typedef struct cmv_bundle_stats {
	unsigned int version; /**< set by the call that fills it: the layout it wrote (CMV_BUNDLE_STATS_VERSION) */
	size_t refs;      /**< refs written (import: created) */
	size_t unchanged; /**< import: refs already there, at the same target */
	size_t nodes, blobs;
	uint64_t bytes;   /**< export: the archive's size */
} cmv_bundle_stats;

enum cmv_bundle_flags {
	/** Also bundle the branches made from the snapshots (their trims). */
	CMV_BUNDLE_WITH_BRANCHES = (1u << 0),
	/** The names may be branches too (cmv push to a bundle), each bundled as it is. */
	CMV_BUNDLE_ANY_REFS = (1u << 1),
};

/**
 * Write snapshots, the snapshots of their lineage (each one's "made from",
 * up the chain) and every object they reach, edges included, as a POSIX
 * ustar archive (see dag/bundle.c for its entries).
 * @return 0, CMV_ENOTFOUND, CMV_EINVALID (not a snapshot), CMV_EIO, or the
 *         write callback's error
 */
CMV_EXTERN(int) cmv_bundle_export(cmv_bundle_stats *out, cmv_repo *repo, const char *const *snapshots,
				  size_t n_snapshots, unsigned int flags, cmv_write_fn write, void *payload);

#define CMV_BUNDLE_MAX_ENTRY_DEFAULT ((uint64_t)1 << 30)
#define CMV_BUNDLE_MAX_TOTAL_DEFAULT ((uint64_t)16 << 30)

typedef struct cmv_bundle_import_options {
	unsigned int version;
	/** Put every ref under "PREFIX/" (NULL: the names as bundled). */
	const char *prefix;
	/** Refuse an entry over this many bytes (0: CMV_BUNDLE_MAX_ENTRY_DEFAULT). */
	uint64_t max_entry_bytes;
	/** Refuse a bundle whose entries add up to more (0: CMV_BUNDLE_MAX_TOTAL_DEFAULT). */
	uint64_t max_total_bytes;
} cmv_bundle_import_options;
#define CMV_BUNDLE_IMPORT_OPTIONS_VERSION 1
#define CMV_BUNDLE_IMPORT_OPTIONS_INIT { CMV_BUNDLE_IMPORT_OPTIONS_VERSION, NULL, 0, 0 }
/** The defaults, as CMV_BUNDLE_IMPORT_OPTIONS_INIT gives them (for callers that cannot use the macro). */
CMV_EXTERN(void) cmv_bundle_import_options_init(cmv_bundle_import_options *opts);

/**
 * Import a bundle: every blob and node verified against its id, then the
 * refs, in one transaction. An absolute path, a "..", a link or any other
 * entry a bundle does not have, an oversized entry, a bad checksum or a
 * truncated archive is refused with the file, the entry and the reason,
 * and the store is left as it was. A ref that exists at the same target is
 * left alone (importing twice is harmless); one that points elsewhere is
 * CMV_EEXISTS (use a prefix).
 * @return 0, CMV_ENOTFOUND, CMV_EINVALID, CMV_ETOOBIG, CMV_EMISMATCH,
 *         CMV_EEXISTS, CMV_EVERSION, CMV_EIO
 */
CMV_EXTERN(int) cmv_bundle_import(cmv_bundle_stats *out, cmv_repo *repo, const char *path,
				  const cmv_bundle_import_options *opts);

/** 1 when the file is a cmv bundle (a tar whose first entry is its manifest), else 0. */
CMV_EXTERN(int) cmv_bundle_detect(const char *path);

#endif
