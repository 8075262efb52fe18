/* SPDX-License-Identifier: MIT */
/*
 * The store conformance suite: what every backend must do. Each test runs
 * once per backend configuration (the SQLite file store, the SQLite
 * in-memory store, and a PostgreSQL store in the test cluster when the
 * build has PostgreSQL); a new backend adds a fixture below and must pass all.
 */
#include <sys/stat.h>
#include "test.h"
#include "dag/repo.h"

typedef struct {
	const char *kind; /* "file", "memory" or "postgresql" */
	char *dir;
	char *url; /* postgresql */
	cmv_repo *repo;
} fixture;

static int setup_file(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	f->kind = "file";
	f->dir = test_tmpdir();
	if (cmv_repo_init(&f->repo, f->dir) < 0)
		return -1;
	*state = f;
	return 0;
}

static int setup_memory(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	f->kind = "memory";
	if (cmv_repo_open(&f->repo, ":memory:", CMV_REPO_OPEN_CREATE) < 0)
		return -1;
	*state = f;
	return 0;
}

#ifdef CMV_WITH_POSTGRESQL
static int setup_pg(void **state)
{
	static int n;
	char name[64];

	snprintf(name, sizeof(name), "conformance_%d", n++);
	/* the URL first: with no cluster test_pg_url fails the setup by a jump, which would leak f */
	char *url = test_pg_url(name);
	fixture *f = calloc(1, sizeof(*f));
	f->kind = "postgresql";
	f->url = url;
	if (cmv_repo_open(&f->repo, f->url, CMV_REPO_OPEN_CREATE) < 0) {
		free(f->url);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}
#endif

static int teardown(void **state)
{
	fixture *f = *state;

	cmv_repo_free(f->repo);
	free(f->url);
	if (f->dir) {
		test_rmdir(f->dir);
		free(f->dir);
	}
	free(f);
	cmv_error_clear();
	return 0;
}

#define REPO (((fixture *)*state)->repo)

static void test_dag_conformance__blobs_are_stored_once(void **state)
{
	cmv_id a, b;
	cmv_buf out = CMV_BUF_INIT(1024);
	uint64_t before;

	assert_cmv_ok(cmv_blob_write(&a, REPO, "same bytes", 10));
	before = test_total_rows(REPO);
	assert_cmv_ok(cmv_blob_write(&b, REPO, "same bytes", 10));
	assert_true(cmv_id_equal(&a, &b));
	assert_int_equal(test_total_rows(REPO), before);
	assert_cmv_ok(cmv_blob_read(&out, REPO, &a));
	assert_int_equal(out.size, 10);
	assert_memory_equal(out.ptr, "same bytes", 10);
	/* binary with NULs round-trips exactly */
	assert_cmv_ok(cmv_blob_write(&b, REPO, "a\0b\0", 4));
	assert_cmv_ok(cmv_blob_read(&out, REPO, &b));
	assert_int_equal(out.size, 4);
	assert_memory_equal(out.ptr, "a\0b\0", 4);
	cmv_id_hash(&a, "missing", 7);
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_blob_read(&out, REPO, &a));
	cmv_buf_dispose(&out);
}

static void test_dag_conformance__nodes_are_content_addressed(void **state)
{
	cmv_block_content blocks[3];
	cmv_message m;
	cmv_id root, child, again, derived;
	cmv_node *n = NULL;
	uint64_t before;

	memset(blocks, 0, sizeof(blocks));
	blocks[0].type = "text";
	blocks[0].data = "let me look";
	blocks[0].len = 11;
	blocks[1].type = "tool_use";
	blocks[1].data = "{\"cmd\":\"ls\"}";
	blocks[1].len = 12;
	blocks[1].tool_id = "toolu_1";
	blocks[1].tool_name = "Bash";
	blocks[2].type = "tool_result";
	blocks[2].data = "a.txt";
	blocks[2].len = 5;
	blocks[2].tool_id = "toolu_1";
	blocks[2].flags = CMV_BLOCK_ERROR;
	memset(&m, 0, sizeof(m));
	m.role = CMV_ROLE_ASSISTANT;
	m.kind = CMV_KIND_MESSAGE;
	m.blocks = blocks;
	m.n_blocks = 3;
	m.meta = "{\"uuid\":\"u1\"}";
	m.meta_len = strlen(m.meta);

	assert_cmv_ok(cmv_node_write(&root, REPO, NULL, &m));
	assert_cmv_ok(cmv_node_write(&child, REPO, &root, &m));
	assert_false(cmv_id_equal(&root, &child)); /* the parent is part of the identity */
	before = test_total_rows(REPO);
	assert_cmv_ok(cmv_node_write(&again, REPO, &root, &m));
	assert_true(cmv_id_equal(&child, &again));
	assert_int_equal(test_total_rows(REPO), before);

	assert_cmv_ok(cmv_node_read(&n, REPO, &child));
	assert_true(cmv_id_equal(&n->parent, &root));
	assert_int_equal(n->depth, 1);
	assert_int_equal(n->role, CMV_ROLE_ASSISTANT);
	assert_int_equal(n->n_blocks, 3);
	assert_string_equal(n->blocks[1].type, "tool_use");
	assert_string_equal(n->blocks[1].tool_name, "Bash");
	assert_string_equal(n->blocks[1].tool_id, "toolu_1");
	assert_null(n->blocks[0].tool_id);
	assert_int_equal(n->blocks[2].flags, CMV_BLOCK_ERROR);
	assert_int_equal(n->meta_len, strlen(m.meta));
	assert_memory_equal(n->meta, m.meta, n->meta_len);
	cmv_node_free(n);

	/* derived_from edges are stored, read back and hashed */
	m.derived_from = &child;
	m.n_derived_from = 1;
	assert_cmv_ok(cmv_node_write(&derived, REPO, &root, &m));
	assert_false(cmv_id_equal(&derived, &child));
	assert_cmv_ok(cmv_node_read(&n, REPO, &derived));
	assert_int_equal(n->n_derived_from, 1);
	assert_true(cmv_id_equal(&n->derived_from[0], &child));
	assert_int_equal(n->n_covers, 0);
	cmv_node_free(n);

	/* includes: an ordered list, kept in order, and part of the identity */
	cmv_id listed[3] = { child, root, derived }, manifest, manifest2;
	cmv_message mm;
	cmv_block_content mb = { .type = "session", .data = "{}", .len = 2 };
	memset(&mm, 0, sizeof(mm));
	mm.role = CMV_ROLE_SYSTEM;
	mm.kind = CMV_KIND_EVENT;
	mm.n_blocks = 1;
	mm.blocks = &mb;
	mm.includes = listed;
	mm.n_includes = 3;
	assert_cmv_ok(cmv_node_write(&manifest, REPO, NULL, &mm));
	assert_cmv_ok(cmv_node_read(&n, REPO, &manifest));
	assert_int_equal(n->n_includes, 3);
	assert_true(cmv_id_equal(&n->includes[0], &child));
	assert_true(cmv_id_equal(&n->includes[1], &root));
	assert_true(cmv_id_equal(&n->includes[2], &derived));
	assert_int_equal(n->n_derived_from + n->n_covers, 0);
	cmv_node_free(n);
	listed[0] = root;
	listed[1] = child;
	assert_cmv_ok(cmv_node_write(&manifest2, REPO, NULL, &mm));
	assert_false(cmv_id_equal(&manifest, &manifest2)); /* order matters */

	/* edges must point at something */
	cmv_id ghost;
	cmv_id_hash(&ghost, "ghost", 5);
	m.derived_from = &ghost;
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_node_write(&again, REPO, &root, &m));
	m.n_derived_from = 0;
	mm.includes = &ghost;
	mm.n_includes = 1;
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_node_write(&again, REPO, NULL, &mm));
	assert_error_mentions("includes");
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_node_write(&again, REPO, &ghost, &m));
	m.role = (cmv_role)9;
	assert_cmv_fails_with(CMV_EINVALID, cmv_node_write(&again, REPO, NULL, &m));
}

static void test_dag_conformance__append_and_walk(void **state)
{
	cmv_walk *w = NULL;
	const cmv_node *n;
	cmv_buf text = CMV_BUF_INIT(1024);
	size_t i = 0;
	cmv_id tip;

	test_append_n(REPO, "main", "message", 50);
	assert_cmv_ok(cmv_resolve(&tip, REPO, "main"));
	assert_cmv_ok(cmv_walk_new(&w, REPO, &tip));
	assert_int_equal(cmv_walk_length(w), 50);
	while (cmv_walk_next(&n, w) == 0) {
		char want[64];
		snprintf(want, sizeof(want), "message %zu", i);
		assert_int_equal(n->depth, i);
		assert_cmv_ok(cmv_blob_read(&text, REPO, &n->blocks[0].blob));
		assert_string_equal(text.ptr, want);
		i++;
	}
	assert_int_equal(i, 50);
	cmv_walk_seek(w, 48);
	assert_cmv_ok(cmv_walk_next(&n, w));
	assert_int_equal(n->depth, 48);
	cmv_walk_free(w);

	/* appending to a snapshot or a missing branch fails */
	cmv_block_content b;
	cmv_message m = test_text_message(&b, CMV_ROLE_USER, "x");
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_append(NULL, REPO, "nope", &m, 1, 0));
	assert_cmv_ok(cmv_snapshot_create(REPO, "snap", &tip, "main", NULL));
	assert_cmv_fails_with(CMV_EINVALID, cmv_append(NULL, REPO, "snap", &m, 1, 0));
	cmv_buf_dispose(&text);
}

/* The backend's node_parent, counted: each is a lookup, and on PostgreSQL a round trip. */
static int (*real_node_parent)(cmv_store_backend *, cmv_id *, uint64_t *, const cmv_id *);
static size_t n_node_parent;

static int counted_node_parent(cmv_store_backend *b, cmv_id *parent, uint64_t *depth, const cmv_id *id)
{
	n_node_parent++;
	return real_node_parent(b, parent, depth, id);
}

/*
 * A walk reads the chain only as far up as it goes: the last 5 of 300
 * nodes (`cmv log -n 5`) cost 5 parent lookups, not 300; a walk from the
 * root reads each parent once, and again from the start reads none.
 */
static void test_dag_conformance__walk_reads_only_what_it_visits(void **state)
{
	cmv_store_backend *b = REPO->backend;
	cmv_walk *w = NULL;
	const cmv_node *n;
	cmv_id tip, last5[5];
	size_t i = 0;

	test_append_n(REPO, "main", "message", 300);
	assert_cmv_ok(cmv_resolve(&tip, REPO, "main"));
	real_node_parent = b->node_parent;
	b->node_parent = counted_node_parent;
	n_node_parent = 0;
	assert_cmv_ok(cmv_walk_new(&w, REPO, &tip));
	assert_int_equal(cmv_walk_length(w), 300);
	cmv_walk_seek(w, 295);
	while (cmv_walk_next(&n, w) == 0) {
		assert_int_equal(n->depth, 295 + i);
		last5[i++] = n->id;
	}
	assert_int_equal(i, 5);
	assert_true(cmv_id_equal(&last5[4], &tip));
	assert_in_range(n_node_parent, 1, 5);
	cmv_walk_reset(w);
	for (i = 0; cmv_walk_next(&n, w) == 0; i++) {
		assert_int_equal(n->depth, i);
		if (i >= 295)
			assert_true(cmv_id_equal(&n->id, &last5[i - 295]));
	}
	assert_int_equal(i, 300);
	assert_int_equal(n_node_parent, 300);
	cmv_walk_reset(w);
	for (i = 0; cmv_walk_next(&n, w) == 0; i++)
		;
	assert_int_equal(n_node_parent, 300);
	b->node_parent = real_node_parent;
	cmv_walk_free(w);
}

static void test_dag_conformance__snapshot_and_branch_add_one_row(void **state)
{
	cmv_id tip, t2;
	uint64_t before;
	cmv_ref *r = NULL;
	const char *tags[] = { "before-refactor", "v1" };
	cmv_snapshot_options o = CMV_SNAPSHOT_OPTIONS_INIT;

	/* one row each, at a small and at a larger history */
	size_t sizes[] = { 20, 5000 }, have = 0;
	for (size_t k = 0; k < 2; k++) {
		char name[64];
		test_append_n(REPO, "main", "m", sizes[k] - have);
		have = sizes[k];
		assert_cmv_ok(cmv_resolve(&tip, REPO, "main"));
		before = test_total_rows(REPO);
		snprintf(name, sizeof(name), "snap-at-%zu", have);
		assert_cmv_ok(cmv_snapshot_create(REPO, name, &tip, "main", NULL));
		assert_int_equal(test_total_rows(REPO), before + 1);
		snprintf(name, sizeof(name), "branch-at-%zu", have);
		assert_cmv_ok(cmv_branch_create(REPO, name, &tip, "main"));
		assert_int_equal(test_total_rows(REPO), before + 2);
	}
	before = test_total_rows(REPO);
	o.description = "a checkpoint";
	o.tags = tags;
	o.n_tags = 2;
	assert_cmv_ok(cmv_snapshot_create(REPO, "s1", &tip, "main", &o));
	assert_int_equal(test_total_rows(REPO), before + 1);
	assert_cmv_ok(cmv_branch_create(REPO, "b1", &tip, "s1"));
	assert_int_equal(test_total_rows(REPO), before + 2);

	assert_cmv_ok(cmv_ref_lookup(&r, REPO, "s1"));
	assert_int_equal(r->type, CMV_REF_SNAPSHOT);
	assert_string_equal(r->description, "a checkpoint");
	assert_int_equal(r->n_tags, 2);
	assert_string_equal(r->tags[1], "v1");
	assert_string_equal(r->from_ref, "main");
	assert_true(cmv_id_equal(&r->target, &tip));
	cmv_ref_free(r);

	assert_cmv_fails_with(CMV_EEXISTS, cmv_snapshot_create(REPO, "s1", &tip, NULL, NULL));
	assert_cmv_fails_with(CMV_EEXISTS, cmv_branch_create(REPO, "s1", &tip, NULL));
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_create(REPO, "../etc", &tip, NULL));
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_create(REPO, "deadbeef1", &tip, NULL));
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_create(REPO, "HEAD", &tip, NULL));
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_create(REPO, "", &tip, NULL));
	const char *bad_tag[] = { "a,b" };
	o.tags = bad_tag;
	o.n_tags = 1;
	assert_cmv_fails_with(CMV_EINVALID, cmv_snapshot_create(REPO, "s2", &tip, NULL, &o));

	/* snapshots never move */
	assert_cmv_ok(cmv_resolve(&t2, REPO, "main~10"));
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_update(REPO, "s1", &t2, NULL));
	/* branches move, by compare-and-swap */
	assert_cmv_fails_with(CMV_EMODIFIED, cmv_branch_update(REPO, "b1", &t2, &t2));
	assert_cmv_ok(cmv_branch_update(REPO, "b1", &t2, &tip));
	assert_cmv_ok(cmv_resolve(&t2, REPO, "b1"));
	assert_cmv_ok(cmv_resolve(&tip, REPO, "main~10"));
	assert_true(cmv_id_equal(&t2, &tip));
}

static void test_dag_conformance__resolve_names_prefixes_and_ancestry(void **state)
{
	cmv_id tip, root, id;
	cmv_object_type type;
	char hex[CMV_ID_HEXSZ + 1];

	test_append_n(REPO, "main", "m", 5);
	assert_cmv_ok(cmv_head_set(REPO, "main"));
	assert_cmv_ok(cmv_resolve(&tip, REPO, "HEAD"));
	assert_cmv_ok(cmv_resolve(&root, REPO, "main~4"));
	assert_cmv_ok(cmv_resolve(&id, REPO, cmv_id_tostr(hex, 7, &tip)));
	assert_true(cmv_id_equal(&id, &tip));
	assert_cmv_ok(cmv_resolve(&id, REPO, cmv_id_tostr(hex, CMV_ID_HEXSZ, &tip)));
	assert_true(cmv_id_equal(&id, &tip));
	assert_int_equal(cmv_is_ancestor(REPO, &root, &tip), 1);
	assert_int_equal(cmv_is_ancestor(REPO, &tip, &root), 0);
	assert_int_equal(cmv_is_ancestor(REPO, &tip, &tip), 1);
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_resolve(&id, REPO, "main~5"));
	assert_error_mentions("past the first message");
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_resolve(&id, REPO, "no-such-ref"));
	assert_error_mentions("no-such-ref");
	assert_cmv_fails_with(CMV_EINVALID, cmv_resolve(&id, REPO, "main~x"));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_resolve(&id, REPO, "0000000"));
	assert_cmv_fails_with(CMV_EINVALID, cmv_resolve_object(&id, &type, REPO, "abc"));

	/* among many objects, a 12-digit prefix still names exactly one */
	test_append_n(REPO, "many", "x", 300);
	cmv_id a;
	assert_cmv_ok(cmv_resolve(&a, REPO, "many"));
	assert_cmv_ok(cmv_resolve_object(&id, &type, REPO, cmv_id_tostr(hex, 12, &a)));
	assert_int_equal(type, CMV_OBJ_NODE);
	assert_true(cmv_id_equal(&id, &a));
}

static void test_dag_conformance__ambiguous_prefix_lists_candidates(void **state)
{
	/* Search for two blobs whose ids share 7 hex digits: ~2^14 tries on average. */
	char text[64], hex1[CMV_ID_HEXSZ + 1], hex2[CMV_ID_HEXSZ + 1];
	cmv_id id, first;
	cmv_object_type type;
	size_t want = 1u << 28, found_i = 0, found_j = 0;
	uint32_t *seen = calloc(want / 32 + 1, sizeof(uint32_t));

	(void)state;
	/* Birthday search over the first 28 bits, keeping a bitmap; then confirm. */
	for (size_t i = 0; i < 200000 && !found_j; i++) {
		snprintf(text, sizeof(text), "probe %zu", i);
		cmv_id_hash(&id, text, strlen(text));
		uint32_t key = ((uint32_t)id.raw[0] << 20) | ((uint32_t)id.raw[1] << 12) |
			       ((uint32_t)id.raw[2] << 4) | (id.raw[3] >> 4);
		if (seen[key / 32] & (1u << (key % 32))) {
			/* find the earlier one */
			for (size_t j = 0; j < i; j++) {
				char t2[64];
				cmv_id o;
				snprintf(t2, sizeof(t2), "probe %zu", j);
				cmv_id_hash(&o, t2, strlen(t2));
				if (!memcmp(o.raw, id.raw, 3) && (o.raw[3] >> 4) == (id.raw[3] >> 4)) {
					found_i = j;
					found_j = i;
					break;
				}
			}
		}
		seen[key / 32] |= 1u << (key % 32);
	}
	free(seen);
	assert_true(found_j > 0);
	snprintf(text, sizeof(text), "probe %zu", found_i);
	assert_cmv_ok(cmv_blob_write(&first, REPO, text, strlen(text)));
	snprintf(text, sizeof(text), "probe %zu", found_j);
	assert_cmv_ok(cmv_blob_write(&id, REPO, text, strlen(text)));
	cmv_id_tostr(hex1, 7, &first);
	cmv_id_tostr(hex2, CMV_ID_HEXSZ, &id);
	assert_cmv_fails_with(CMV_EAMBIGUOUS, cmv_resolve_object(&id, &type, REPO, hex1));
	assert_error_mentions("ambiguous");
	assert_error_mentions(hex2);
	/* one more digit settles it */
	cmv_id_tostr(hex1, CMV_ID_HEXSZ, &first);
	assert_cmv_ok(cmv_resolve_object(&id, &type, REPO, hex1));
	assert_int_equal(type, CMV_OBJ_BLOB);
	assert_true(cmv_id_equal(&id, &first));
}

static void test_dag_conformance__head_and_delete(void **state)
{
	cmv_buf head = CMV_BUF_INIT(256);
	cmv_id tip;

	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_head_get(&head, REPO));
	test_append_n(REPO, "main", "m", 3);
	assert_cmv_ok(cmv_resolve(&tip, REPO, "main"));
	assert_cmv_ok(cmv_snapshot_create(REPO, "snap", &tip, "main", NULL));
	assert_cmv_fails_with(CMV_EINVALID, cmv_head_set(REPO, "snap"));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_head_set(REPO, "nope"));
	assert_cmv_ok(cmv_head_set(REPO, "main"));
	assert_cmv_ok(cmv_head_get(&head, REPO));
	assert_string_equal(head.ptr, "main");
	assert_cmv_fails_with(CMV_EINVALID, cmv_ref_delete(REPO, "main"));
	assert_cmv_ok(cmv_ref_delete(REPO, "snap"));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_ref_delete(REPO, "snap"));
	/* content stays after the ref goes */
	assert_cmv_ok(cmv_resolve(&tip, REPO, "main"));
	cmv_buf_dispose(&head);
}

static void test_dag_conformance__transactions_roll_back_everything(void **state)
{
	uint64_t before;
	cmv_id tip;

	test_append_n(REPO, "main", "m", 3);
	before = test_total_rows(REPO);
	assert_cmv_ok(cmv_repo_txn_begin(REPO));
	test_append_n(REPO, "main", "rolled back", 10);
	assert_cmv_ok(cmv_resolve(&tip, REPO, "main"));
	assert_cmv_ok(cmv_snapshot_create(REPO, "inside", &tip, "main", NULL));
	cmv_repo_txn_rollback(REPO);
	assert_int_equal(test_total_rows(REPO), before);
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_resolve(&tip, REPO, "inside"));

	/* an inner rollback dooms the outer transaction */
	assert_cmv_ok(cmv_repo_txn_begin(REPO));
	test_append_n(REPO, "main", "doomed", 2);
	assert_cmv_ok(cmv_repo_txn_begin(REPO));
	cmv_repo_txn_rollback(REPO);
	assert_cmv_fails_with(CMV_ERROR, cmv_repo_txn_commit(REPO));
	assert_int_equal(test_total_rows(REPO), before);

	/* a failing call inside a caller's transaction leaves the rest to the caller */
	assert_cmv_ok(cmv_repo_txn_begin(REPO));
	test_append_n(REPO, "main", "kept", 1);
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_create(REPO, "bad name", NULL, NULL));
	cmv_repo_txn_rollback(REPO);
	assert_int_equal(test_total_rows(REPO), before);
}

typedef struct {
	size_t hits;
	cmv_id node;
	char snippet[256];
} hits;

static int count_hit(const cmv_search_hit *h, void *payload)
{
	hits *hs = payload;

	if (!hs->hits++) {
		hs->node = h->node;
		snprintf(hs->snippet, sizeof(hs->snippet), "%s", h->snippet);
	}
	return 0;
}

static void test_dag_conformance__search_finds_text_and_tool_output(void **state)
{
	cmv_block_content b[2];
	cmv_message m;
	cmv_id id, tip;
	hits hs;

	memset(b, 0, sizeof(b));
	b[0].type = "text";
	b[0].data = "I will look at the Makefile.";
	b[0].len = strlen(b[0].data);
	b[1].type = "tool_result";
	b[1].data = "make: *** [all] Error 2: undefined reference to `zlib_inflate'";
	b[1].len = strlen(b[1].data);
	b[1].tool_id = "t1";
	memset(&m, 0, sizeof(m));
	m.role = CMV_ROLE_ASSISTANT;
	m.kind = CMV_KIND_MESSAGE;
	m.blocks = b;
	m.n_blocks = 2;
	test_append_n(REPO, "main", "filler about cats", 20);
	assert_cmv_ok(cmv_append(&id, REPO, "main", &m, 1, 0));

	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "zlib_inflate", 10, 0, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	assert_true(cmv_id_equal(&hs.node, &id));
	assert_non_null(strstr(hs.snippet, "zlib_inflate"));
	/* the same hit with no snippet: the caller wants ids only */
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "zlib_inflate", 10, CMV_SEARCH_NO_SNIPPET, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	assert_true(cmv_id_equal(&hs.node, &id));
	assert_string_equal(hs.snippet, "");

	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "makefile", 10, 0, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "makefile cats", 10, 0, count_hit, &hs));
	assert_int_equal(hs.hits, 0); /* all words by default */
	assert_cmv_ok(cmv_search(REPO, "makefile cats", 100, CMV_SEARCH_ANY, count_hit, &hs));
	assert_int_equal(hs.hits, 21);
	/* words are stemmed (schema 2): "looking" finds "look", "cat" finds "cats" */
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "looking makefiles", 10, 0, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "cat", 100, 0, count_hit, &hs));
	assert_int_equal(hs.hits, 20);
	/*
	 * How many texts a search matches, and how many are indexed: a word's
	 * document frequency, stemmed as the search stems it, in one call for
	 * many (the pager weighs its feedback words by their rarity).
	 */
	{
		const char *q[] = { "cat", "makefiles", "zebra", "makefile cats", "\"undefined\" (reference" };
		uint64_t df[5], n_indexed = 0;
		assert_cmv_ok(cmv_search_count(REPO, q, 5, 0, df, &n_indexed));
		assert_int_equal(df[0], 20);
		assert_int_equal(df[1], 1);
		assert_int_equal(df[2], 0);
		assert_int_equal(df[3], 0); /* all words by default */
		assert_int_equal(df[4], 1);
		assert_int_equal(n_indexed, 22); /* the 20 fillers, the text and the tool's output */
		assert_cmv_ok(cmv_search_count(REPO, q + 3, 1, CMV_SEARCH_ANY, df, NULL));
		assert_int_equal(df[0], 21);
		assert_cmv_ok(cmv_search_count(REPO, NULL, 0, 0, NULL, &n_indexed));
		assert_int_equal(n_indexed, 22);
		const char *empty[] = { "cat", "  " };
		assert_int_equal(cmv_search_count(REPO, empty, 2, 0, df, NULL), CMV_EINVALID);
		cmv_error_clear();
	}
	/* punctuation in a literal query is not FTS syntax */
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "\"[all] Error\" (x", 10, 0, count_hit, &hs));
	/* NEAR, as the pager's query asks it: two words at most N words apart, in either order */
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "NEAR(\"look\" \"makefile\", 2)", 10, CMV_SEARCH_RAW, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "NEAR(\"makefiles\" \"looking\", 8) OR NEAR(\"cats\" \"zebra\", 8)", 10,
				 CMV_SEARCH_RAW, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "NEAR(\"look\" \"makefile\", 1)", 10, CMV_SEARCH_RAW, count_hit, &hs));
	assert_int_equal(hs.hits, 0); /* "at the" is two words between */
	/*
	 * A query word with a byte that is not UTF-8 (Latin-1 "caf\xe9s", as a
	 * pager query may carry one): a phrase of it or a NEAR of it is asked,
	 * not refused, on every store; the other half of an OR still answers.
	 */
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "NEAR(\"caf\xe9s\" \"zebra\", 8) OR NEAR(\"look\" \"makefile\", 8)", 10,
				 CMV_SEARCH_RAW, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "NEAR(\"look\" \"makefile\", 8) OR NEAR(\"caf\xe9s\" \"zebra\", 8)", 10,
				 CMV_SEARCH_RAW, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	/* a phrase of no word at all: it matches nothing, its OR no syntax error */
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "NEAR(\"look\" \"makefile\", 8) OR NEAR(\"look\" \"\xe9\", 8)", 10, CMV_SEARCH_RAW,
				 count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "makefile \xe9", 10, CMV_SEARCH_ANY, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "\"caf\xe9s makefile\" OR \"look makefile\"", 10, CMV_SEARCH_RAW, count_hit, &hs));
	assert_int_equal(hs.hits, 0);
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "caf\xe9s makefile", 10, CMV_SEARCH_ANY, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	/* raw syntax errors are reported, not crashed on */
	assert_cmv_fails_with(CMV_EINVALID, cmv_search(REPO, "AND AND (", 10, CMV_SEARCH_RAW, count_hit, &hs));
	assert_cmv_fails_with(CMV_EINVALID, cmv_search(REPO, "   ", 10, 0, count_hit, &hs));

	/* the same text in a second branch is one blob, found once per using node */
	assert_cmv_ok(cmv_resolve(&tip, REPO, "main~1"));
	assert_cmv_ok(cmv_branch_create(REPO, "alt", &tip, "main"));
	assert_cmv_ok(cmv_append(NULL, REPO, "alt", &m, 1, 0)); /* same content, same node */
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "zlib_inflate", 10, 0, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	/* after another record it is another node that uses the same blob: a hit each, or one for the blob */
	test_append_n(REPO, "alt", "a word between", 1);
	assert_cmv_ok(cmv_append(NULL, REPO, "alt", &m, 1, 0));
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "zlib_inflate", 10, CMV_SEARCH_NO_SNIPPET, count_hit, &hs));
	assert_int_equal(hs.hits, 2);
	memset(&hs, 0, sizeof(hs));
	assert_cmv_ok(cmv_search(REPO, "zlib_inflate", 10, CMV_SEARCH_NO_SNIPPET | CMV_SEARCH_BLOBS, count_hit, &hs));
	assert_int_equal(hs.hits, 1);
	assert_true(cmv_id_is_none(&hs.node));
}

static void test_dag_conformance__token_cache(void **state)
{
	cmv_id blob;
	uint64_t n = 0;

	assert_cmv_ok(cmv_blob_write(&blob, REPO, "hello", 5));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_tokcache_get(&n, REPO, &blob, "cl100k_base"));
	assert_cmv_ok(cmv_tokcache_put(REPO, &blob, "cl100k_base", 1));
	assert_cmv_ok(cmv_tokcache_put(REPO, &blob, "o200k_base", 2));
	assert_cmv_ok(cmv_tokcache_get(&n, REPO, &blob, "cl100k_base"));
	assert_int_equal(n, 1);
	assert_cmv_ok(cmv_tokcache_put(REPO, &blob, "cl100k_base", 3));
	assert_cmv_ok(cmv_tokcache_get(&n, REPO, &blob, "cl100k_base"));
	assert_int_equal(n, 3);
}

typedef struct {
	size_t n;
	char sig[3][128];
	uint64_t turn[3], in[3];
} segs;

static int collect_seg(const cmv_usage_segment *s, void *payload)
{
	segs *sg = payload;

	if (sg->n < 3) {
		snprintf(sg->sig[sg->n], 128, "%s", s->signature);
		sg->turn[sg->n] = s->start_turn;
		sg->in[sg->n] = s->input_tokens;
	}
	sg->n++;
	return 0;
}

static void test_dag_conformance__model_state_and_switches(void **state)
{
	cmv_buf llm = CMV_BUF_INIT(4096);
	segs sg;
	cmv_id tip;
	cmv_node *n = NULL;
	uint64_t rows;

	test_append_n(REPO, "main", "m", 4);
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_branch_llm_get(&llm, REPO, "main"));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_usage_record(REPO, "main", 1, 1, 0, 0));
	assert_cmv_ok(cmv_branch_llm_set(REPO, "main", "gpt-4o"));
	assert_cmv_ok(cmv_usage_record(REPO, "main", 100, 20, 0, 0));
	assert_cmv_ok(cmv_usage_record(REPO, "main", 50, 5, 10, 0));
	rows = test_total_rows(REPO);
	assert_cmv_ok(cmv_branch_llm_set(REPO, "main", "gpt-4o")); /* unchanged: nothing */
	assert_int_equal(test_total_rows(REPO), rows);
	assert_cmv_ok(cmv_branch_llm_set(REPO, "main",
					 "{\"provider\":\"openai\",\"model\":\"llama-3.1-8b\","
					 "\"base_url\":\"http://127.0.0.1:8080/v1\",\"api_key_env\":\"LOCAL_KEY\"}"));
	assert_cmv_ok(cmv_branch_llm_get(&llm, REPO, "main"));
	assert_non_null(strstr(llm.ptr, "llama-3.1-8b"));

	memset(&sg, 0, sizeof(sg));
	assert_cmv_ok(cmv_usage_foreach(REPO, "main", collect_seg, &sg));
	assert_int_equal(sg.n, 2);
	assert_string_equal(sg.sig[0], "gpt-4o");
	assert_int_equal(sg.in[0], 150);
	assert_string_equal(sg.sig[1], "openai/llama-3.1-8b@http://127.0.0.1:8080/v1");
	assert_int_equal(sg.turn[1], 6); /* 4 messages + 2 switch events */

	/* each switch is an event node on the branch */
	assert_cmv_ok(cmv_resolve(&tip, REPO, "main"));
	assert_cmv_ok(cmv_node_read(&n, REPO, &tip));
	assert_int_equal(n->kind, CMV_KIND_EVENT);
	assert_string_equal(n->blocks[0].type, "model_switch");
	cmv_node_free(n);

	/* never a secret */
	rows = test_total_rows(REPO);
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_llm_set(REPO, "main",
							      "{\"model\":\"gpt-4o\",\"api_key\":\"abc\"}"));
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_llm_set(REPO, "main",
							      "{\"model\":\"gpt-4o\",\"options\":{\"headers\":{\"Authorization\":\"x\"}}}"));
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_llm_set(REPO, "main",
							      "{\"model\":\"gpt-4o\",\"x\":\"sk-ant-api03-abcdef\"}"));
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_llm_set(REPO, "main",
							      "{\"model\":\"m\",\"base_url\":\"https://u:pw@host/v1\"}"));
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_llm_set(REPO, "main", "sk-proj-123"));
	assert_cmv_fails_with(CMV_EINVALID, cmv_branch_llm_set(REPO, "main", "{not json"));
	assert_int_equal(test_total_rows(REPO), rows);

	/* deleting a branch drops its model state */
	assert_cmv_ok(cmv_branch_create(REPO, "other", &tip, "main"));
	assert_cmv_ok(cmv_branch_llm_set(REPO, "other", "claude-sonnet-4-5"));
	assert_cmv_ok(cmv_ref_delete(REPO, "other"));
	assert_cmv_ok(cmv_branch_create(REPO, "other", &tip, "main"));
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_branch_llm_get(&llm, REPO, "other"));
	cmv_buf_dispose(&llm);
}

static void test_dag_conformance__tree_follows_lineage(void **state)
{
	cmv_tree *t = NULL;
	cmv_id tip;

	test_append_n(REPO, "main", "m", 3);
	assert_cmv_ok(cmv_resolve(&tip, REPO, "main"));
	assert_cmv_ok(cmv_snapshot_create(REPO, "s1", &tip, "main", NULL));
	assert_cmv_ok(cmv_branch_create(REPO, "b1", &tip, "s1"));
	assert_cmv_ok(cmv_snapshot_create(REPO, "s2", &tip, "b1", NULL));
	assert_cmv_ok(cmv_branch_create(REPO, "loose", &tip, "deleted-source"));
	assert_cmv_ok(cmv_tree_build(&t, REPO));
	assert_int_equal(t->n_entries, 5);
	assert_string_equal(t->entries[0].ref->name, "main");
	assert_int_equal(t->entries[0].parent, SIZE_MAX);
	assert_int_equal(t->entries[0].n_nodes, 3);
	assert_string_equal(t->entries[1].ref->name, "s1");
	assert_int_equal(t->entries[1].parent, 0);
	assert_string_equal(t->entries[2].ref->name, "b1");
	assert_int_equal(t->entries[2].parent, 1);
	assert_string_equal(t->entries[3].ref->name, "s2");
	assert_int_equal(t->entries[3].depth, 3);
	assert_string_equal(t->entries[4].ref->name, "loose");
	assert_int_equal(t->entries[4].parent, SIZE_MAX);
	cmv_tree_free(t);
}

static void test_dag_conformance__store_reopens_with_everything(void **state)
{
	fixture *f = *state;
	cmv_id tip, again;
	char path[4096];

	test_append_n(REPO, "main", "persisted", 10);
	assert_cmv_ok(cmv_resolve(&tip, REPO, "main"));
	cmv_repo_free(f->repo);
	if (f->url)
		snprintf(path, sizeof(path), "%s", f->url);
	else
		snprintf(path, sizeof(path), "%s/.cmv", f->dir);
	assert_cmv_ok(cmv_repo_open(&f->repo, path, 0));
	assert_cmv_ok(cmv_resolve(&again, REPO, "main"));
	assert_true(cmv_id_equal(&tip, &again));
	assert_string_equal(cmv_repo_backend_name(REPO), f->url ? "postgresql" : "sqlite");
}

/*
 * A store may keep the counts cmv_search_count gave (SQLite does, brought
 * up to date as texts are indexed): a text indexed since, through this
 * handle or another on the same store, counts at once.
 */
static void test_dag_conformance__search_count_follows_writes(void **state)
{
	fixture *f = *state;
	const char *q[] = { "heron" };
	uint64_t df = 0, n_indexed = 0;
	char path[4096];

	test_append_n(REPO, "main", "a heron", 3);
	assert_cmv_ok(cmv_search_count(REPO, q, 1, 0, &df, &n_indexed));
	assert_int_equal(df, 3);
	assert_int_equal(n_indexed, 3);
	test_append_n(REPO, "main", "another heron", 1);
	assert_cmv_ok(cmv_search_count(REPO, q, 1, 0, &df, &n_indexed));
	assert_int_equal(df, 4);
	assert_int_equal(n_indexed, 4);
	if (!f->url && !f->dir)
		return; /* an in-memory store has no other handle */
	if (f->url)
		snprintf(path, sizeof(path), "%s", f->url);
	else
		snprintf(path, sizeof(path), "%s/.cmv", f->dir);
	cmv_repo *other = NULL;
	assert_cmv_ok(cmv_repo_open(&other, path, 0));
	test_append_n(other, "main", "a third heron", 2);
	assert_cmv_ok(cmv_repo_index(NULL, other)); /* indexed there: nothing left for this handle to index */
	cmv_repo_free(other);
	assert_cmv_ok(cmv_search_count(REPO, q, 1, 0, &df, &n_indexed));
	assert_int_equal(df, 6);
	assert_int_equal(n_indexed, 6);
}

#define CONFORMANCE_TESTS(setup)                                                                  \
	{                                                                                         \
		cmocka_unit_test_setup_teardown(test_dag_conformance__blobs_are_stored_once, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__nodes_are_content_addressed, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__append_and_walk, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__walk_reads_only_what_it_visits, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__snapshot_and_branch_add_one_row, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__resolve_names_prefixes_and_ancestry, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__ambiguous_prefix_lists_candidates, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__head_and_delete, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__transactions_roll_back_everything, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__search_finds_text_and_tool_output, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__search_count_follows_writes, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__token_cache, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__model_state_and_switches, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_dag_conformance__tree_follows_lineage, setup, teardown), \
	}

int main(void)
{
	const struct CMUnitTest file_tests[] = CONFORMANCE_TESTS(setup_file);
	const struct CMUnitTest memory_tests[] = CONFORMANCE_TESTS(setup_memory);
	int failed = 0;

	failed += cmocka_run_group_tests_name("conformance: sqlite file", file_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("conformance: sqlite memory", memory_tests, NULL, NULL);
	/* Only a store on disk outlives its handle. */
	const struct CMUnitTest persistent_tests[] = {
		cmocka_unit_test_setup_teardown(test_dag_conformance__store_reopens_with_everything,
						setup_file, teardown),
	};
	failed += cmocka_run_group_tests_name("conformance: persistent stores", persistent_tests, NULL, NULL);
#ifdef CMV_WITH_POSTGRESQL
	const struct CMUnitTest pg_tests[] = CONFORMANCE_TESTS(setup_pg);
	const struct CMUnitTest pg_persistent[] = {
		cmocka_unit_test_setup_teardown(test_dag_conformance__store_reopens_with_everything,
						setup_pg, teardown),
	};
	failed += cmocka_run_group_tests_name("conformance: postgresql", pg_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("conformance: postgresql persistent", pg_persistent, NULL, NULL);
#endif
	return failed;
}
