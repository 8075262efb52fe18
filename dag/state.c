/* SPDX-License-Identifier: MIT */
/*
 * Search, the token-count cache, and per-branch model state (the LLM a
 * branch runs on, usage segments, model-switch events).
 *
 * Invariants
 *  1. No secret is ever stored: an LLM descriptor is checked before it is
 *     written, and refused whole if any field looks like a credential.
 *  2. A model switch is one transaction: the event node, the branch move,
 *     the new segment and the new reference, or none of them.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <strings.h>
#include <stdio.h>
#include "repo.h"

/* ---- search ------------------------------------------------------------ */

#define SNIPPET_CHARS 80

typedef struct {
	cmv_repo *repo;
	int (*cb)(const cmv_search_hit *, void *);
	void *payload;
	const char *query;
	cmv_buf text, snippet;
	double score;
	cmv_id blob;
	bool snippets;
	bool blobs;      /* one hit per blob (CMV_SEARCH_BLOBS) */
} search_state;

/* Case-insensitive ASCII search for any word of the query; the first hit wins. */
static const char *find_term(const char *text, size_t len, const char *query, size_t *term_len)
{
	const char *best = NULL, *q = query;

	while (*q) {
		while (*q && !isalnum((unsigned char)*q) && !((unsigned char)*q & 0x80))
			q++;
		const char *start = q;
		while (*q && (isalnum((unsigned char)*q) || ((unsigned char)*q & 0x80)))
			q++;
		size_t n = (size_t)(q - start);
		if (!n || n > len)
			continue;
		for (size_t i = 0; i + n <= len; i++) {
			if (best && text + i >= best)
				break;
			if (!strncasecmp(text + i, start, n)) {
				best = text + i;
				*term_len = n;
				break;
			}
		}
	}
	return best;
}

static int make_snippet(search_state *st)
{
	const char *text = st->text.ptr, *hit;
	size_t len = st->text.size, term = 0, from, to;

	cmv_buf_clear(&st->snippet);
	/* The whole query where it occurs as typed; else its earliest word. */
	size_t qlen = strlen(st->query);
	hit = NULL;
	for (size_t i = 0; qlen && i + qlen <= len; i++)
		if (!strncasecmp(text + i, st->query, qlen)) {
			hit = text + i;
			break;
		}
	if (!hit)
		hit = find_term(text, len, st->query, &term);
	from = hit ? (size_t)(hit - text) : 0;
	from = from > SNIPPET_CHARS / 2 ? from - SNIPPET_CHARS / 2 : 0;
	to = from + SNIPPET_CHARS < len ? from + SNIPPET_CHARS : len;
	/* Do not cut a UTF-8 sequence in half at either end. */
	while (from > 0 && ((unsigned char)text[from] & 0xc0) == 0x80)
		from--;
	while (to < len && ((unsigned char)text[to] & 0xc0) == 0x80)
		to++;
	if (from > 0)
		cmv_buf_puts(&st->snippet, "...");
	for (size_t i = from; i < to; i++)
		cmv_buf_putc(&st->snippet, (text[i] == '\n' || text[i] == '\r' || text[i] == '\t')
						   ? ' '
						   : text[i]);
	if (to < len)
		cmv_buf_puts(&st->snippet, "...");
	return 0;
}

static int search_user(const cmv_id *node, size_t block, void *payload)
{
	search_state *st = payload;
	cmv_search_hit hit;

	hit.node = *node;
	hit.block = block;
	hit.blob = st->blob;
	hit.score = st->score;
	hit.snippet = st->snippet.ptr;
	return st->cb(&hit, st->payload);
}

static int search_blob(const cmv_id *blob, double score, void *payload)
{
	search_state *st = payload;
	int error;

	if (st->snippets) {
		if ((error = st->repo->backend->blob_get(st->repo->backend, &st->text, blob)) < 0)
			return error;
		make_snippet(st);
	}
	st->blob = *blob;
	st->score = score;
	if (st->blobs) {
		cmv_id none;
		cmv_id_clear(&none);
		return search_user(&none, 0, st);
	}
	return st->repo->backend->blob_users(st->repo->backend, blob, search_user, st);
}

/* Quote each word so user text never reads as FTS5 syntax. */
static int literal_query(cmv_buf *out, const char *query, bool any)
{
	const char *p = query;
	bool first = true;
	int error = 0;

	while (*p && !error) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (!first)
			error = cmv_buf_puts(out, any ? " OR " : " ");
		first = false;
		cmv_buf_putc(out, '"');
		while (*p && !isspace((unsigned char)*p) && !error) {
			if (*p == '"')
				error = cmv_buf_putc(out, '"');
			if (!error)
				error = cmv_buf_putc(out, *p);
			p++;
		}
		if (!error)
			error = cmv_buf_putc(out, '"');
	}
	return error;
}

int cmv_repo_index(size_t *n_indexed_out, cmv_repo *repo)
{
	size_t n = 0;
	int error;

	CMV_ASSERT_ARG(repo);
	if (!repo->backend->index_pending)
		return cmv_error__set(CMV_EUNSUPPORTED, "search is unsupported by the '%s' backend",
				      repo->backend->name);
	if (n_indexed_out)
		*n_indexed_out = 0;
	/* nothing pending: no write lock (a search must not wait on a writer for nothing) */
	bool behind = true;
	if (repo->backend->index_behind && (error = repo->backend->index_behind(repo->backend, &behind)) < 0)
		return error;
	if (!behind)
		return 0;
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	error = repo->backend->index_pending(repo->backend, &n);
	if ((error = cmv_dag__txn_end(repo, error)) == 0 && n_indexed_out)
		*n_indexed_out = n;
	return error;
}

int cmv_search(cmv_repo *repo, const char *query, size_t limit, unsigned int flags,
	       int (*cb)(const cmv_search_hit *, void *), void *payload)
{
	search_state st;
	cmv_buf fts = CMV_BUF_INIT(CMV_BUF_SMALL);
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(query);
	CMV_ASSERT_ARG(cb);
	if (!repo->backend->search)
		return cmv_error__set(CMV_EUNSUPPORTED, "search is unsupported by the '%s' backend",
				      repo->backend->name);
	if (flags & CMV_SEARCH_RAW)
		error = cmv_buf_puts(&fts, query);
	else
		error = literal_query(&fts, query, (flags & CMV_SEARCH_ANY) != 0);
	if (error < 0)
		return error;
	if (!fts.size) {
		cmv_buf_dispose(&fts);
		return cmv_error__set(CMV_EINVALID, "empty search query");
	}
	if (!(repo->flags & CMV_REPO_OPEN_READONLY) && (error = cmv_repo_index(NULL, repo)) < 0) {
		cmv_buf_dispose(&fts);
		return error;
	}
	memset(&st, 0, sizeof(st));
	st.repo = repo;
	st.cb = cb;
	st.payload = payload;
	st.query = query;
	st.snippets = !(flags & CMV_SEARCH_NO_SNIPPET);
	st.blobs = (flags & CMV_SEARCH_BLOBS) != 0;
	cmv_buf_init(&st.text, CMV_BUF_CONTENT);
	cmv_buf_init(&st.snippet, CMV_BUF_SMALL);
	error = repo->backend->search(repo->backend, fts.ptr, limit, search_blob, &st);
	cmv_buf_dispose(&st.text);
	cmv_buf_dispose(&st.snippet);
	cmv_buf_dispose(&fts);
	return error;
}

int cmv_search_count(cmv_repo *repo, const char *const *queries, size_t n, unsigned int flags,
		     uint64_t *n_match, uint64_t *n_indexed)
{
	cmv_buf all = CMV_BUF_INIT(CMV_BUF_SMALL);
	size_t *at = NULL;
	const char **fts = NULL;
	uint64_t total = 0;
	int error = 0;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(queries || !n);
	CMV_ASSERT_ARG(n_match || !n);
	if (!repo->backend->search_count)
		return cmv_error__set(CMV_EUNSUPPORTED, "counting search matches is unsupported by the '%s' backend",
				      repo->backend->name);
	if (!(at = cmv__calloc(n + 1, sizeof(*at))) || !(fts = cmv__calloc(n + 1, sizeof(*fts))))
		error = cmv_error__oom();
	/* the queries in one buffer, each NUL-terminated (offsets: it may move as it grows) */
	for (size_t i = 0; i < n && !error; i++) {
		size_t start = all.size;
		if (!queries[i]) {
			error = cmv_error__set(CMV_EINVALID, "invalid argument: queries[%zu] is NULL", i);
			break;
		}
		at[i] = start;
		if (flags & CMV_SEARCH_RAW)
			error = cmv_buf_puts(&all, queries[i]);
		else
			error = literal_query(&all, queries[i], (flags & CMV_SEARCH_ANY) != 0);
		if (!error && all.size == start)
			error = cmv_error__set(CMV_EINVALID, "empty search query");
		if (!error)
			error = cmv_buf_putc(&all, '\0');
	}
	for (size_t i = 0; i < n && !error; i++)
		fts[i] = all.ptr + at[i];
	if (!error && !(repo->flags & CMV_REPO_OPEN_READONLY))
		error = cmv_repo_index(NULL, repo);
	if (!error)
		error = repo->backend->search_count(repo->backend, fts, n, n_match, &total);
	if (!error && n_indexed)
		*n_indexed = total;
	cmv_buf_dispose(&all);
	free(at);
	free(fts);
	return error;
}

/* ---- token cache ------------------------------------------------------- */

int cmv_tokcache_get(uint64_t *out, cmv_repo *repo, const cmv_id *blob, const char *tokenizer)
{
	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(blob);
	CMV_ASSERT_ARG(tokenizer);
	return repo->backend->tokcache_get(repo->backend, out, blob, tokenizer);
}

int cmv_tokcache_put(cmv_repo *repo, const cmv_id *blob, const char *tokenizer, uint64_t count)
{
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(blob);
	CMV_ASSERT_ARG(tokenizer);
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	error = repo->backend->tokcache_put(repo->backend, blob, tokenizer, count);
	return cmv_dag__txn_end(repo, error);
}

/* ---- model state ------------------------------------------------------- */

#define LLM_KEY "llm"
#define LLM_MAX 4096

static bool key_is_secret(const char *key)
{
	static const char *const bad[] = { "key", "token", "secret", "password", "passwd",
					   "authorization", "bearer", "credential", "cookie" };
	char lower[128];
	size_t i;

	for (i = 0; key[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)tolower((unsigned char)key[i]);
	lower[i] = '\0';
	/* Naming the variable that holds the key is how a key should be given. */
	if (!strcmp(lower, "api_key_env") || !strcmp(lower, "key_env"))
		return false;
	if (!strcmp(lower, "max_tokens") || !strcmp(lower, "max_output_tokens") ||
	    !strcmp(lower, "max_completion_tokens") || !strcmp(lower, "output_tokens"))
		return false;
	for (i = 0; i < CMV_ARRAY_SIZE(bad); i++)
		if (strstr(lower, bad[i]))
			return true;
	return false;
}

static bool value_is_secret(const char *v)
{
	static const char *const prefixes[] = { "sk-", "sk_", "ghp_", "gho_", "github_pat_", "xox",
						"AKIA", "AIza", "glpat-", "npm_", "Bearer ",
						"-----BEGIN" };

	for (size_t i = 0; i < CMV_ARRAY_SIZE(prefixes); i++)
		if (!strncmp(v, prefixes[i], strlen(prefixes[i])))
			return true;
	/* Credentials also hide in URLs: https://user:pass@host */
	const char *at = strchr(v, '@'), *scheme = strstr(v, "://");
	if (scheme && at && at > scheme && memchr(scheme + 3, ':', (size_t)(at - scheme - 3)))
		return true;
	return false;
}

static int check_no_secret(const cJSON *j, const char *path)
{
	if (cJSON_IsString(j) && value_is_secret(j->valuestring))
		return cmv_error__set(CMV_EINVALID,
				      "refusing to store what looks like a credential at '%s' "
				      "(name an environment variable with api_key_env instead)",
				      path);
	for (const cJSON *c = j->child; c; c = c->next) {
		if (c->string && key_is_secret(c->string))
			return cmv_error__set(CMV_EINVALID,
					      "refusing to store field '%s': cmv never stores secrets "
					      "(name an environment variable with api_key_env instead)",
					      c->string);
		int error = check_no_secret(c, c->string ? c->string : path);
		if (error < 0)
			return error;
	}
	return 0;
}

/*
 * The signature of an LLM reference: what a usage segment is keyed by.
 * A registry key is its own signature; a descriptor gives provider/model,
 * plus @base_url when set, so a self-hosted endpoint is told apart.
 */
static int llm_signature(cmv_buf *out, const char *llm)
{
	cJSON *j;
	int error = 0;

	cmv_buf_clear(out);
	if (*llm != '{') {
		for (const char *p = llm; *p; p++)
			if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
				return cmv_error__set(CMV_EINVALID, "invalid model name '%s'", llm);
		if (value_is_secret(llm))
			return cmv_error__set(CMV_EINVALID,
					      "refusing to store what looks like a credential as a model name");
		return cmv_buf_puts(out, llm);
	}
	if (!(j = cJSON_Parse(llm)) || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return cmv_error__set(CMV_EINVALID, "model descriptor is not a JSON object");
	}
	if ((error = check_no_secret(j, "descriptor")) < 0)
		goto done;
	const cJSON *prov = cJSON_GetObjectItemCaseSensitive(j, "provider");
	const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(j, "base_url");
	if (!cJSON_IsString(model) || !*model->valuestring) {
		error = cmv_error__set(CMV_EINVALID, "model descriptor needs a \"model\" string");
		goto done;
	}
	error = cmv_buf_printf(out, "%s/%s", cJSON_IsString(prov) ? prov->valuestring : "",
			       model->valuestring);
	if (!error && cJSON_IsString(url) && *url->valuestring)
		error = cmv_buf_printf(out, "@%s", url->valuestring);
done:
	cJSON_Delete(j);
	return error;
}

int cmv_branch_llm_get(cmv_buf *out, cmv_repo *repo, const char *branch)
{
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	error = repo->backend->state_get(repo->backend, out, branch, LLM_KEY);
	if (error == CMV_ENOTFOUND)
		return cmv_error__set(CMV_ENOTFOUND, "branch '%s' has no model set", branch);
	return error;
}

int cmv_branch_llm_set(cmv_repo *repo, const char *branch, const char *llm)
{
	return cmv_branch_llm_switch(NULL, repo, branch, llm, NULL, NULL);
}

/* The signature of the branch's newest segment, "" when it has none. */
static int last_signature_cb(const cmv_usage_segment *seg, void *payload)
{
	cmv_buf *b = payload;
	cmv_buf_clear(b);
	return cmv_buf_puts(b, seg->signature);
}

int cmv_branch_llm_switch(cmv_id *event, cmv_repo *repo, const char *branch, const char *llm, const char *signature,
			  const char *detail)
{
	cmv_buf sig = CMV_BUF_INIT(LLM_MAX), old = CMV_BUF_INIT(LLM_MAX), last = CMV_BUF_INIT(LLM_MAX);
	cmv_ref *ref = NULL;
	cJSON *ev = NULL, *det = NULL;
	char *evtext = NULL;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(llm);
	if (event)
		cmv_id_clear(event);
	if (!*llm || strlen(llm) > LLM_MAX)
		return cmv_error__set(CMV_EINVALID, "model reference is empty or over %d bytes", LLM_MAX);
	if (detail && (!(det = cJSON_Parse(detail)) || !cJSON_IsObject(det))) {
		cJSON_Delete(det);
		return cmv_error__set(CMV_EINVALID, "a switch's detail is not a JSON object");
	}
	if ((error = llm_signature(&sig, llm)) < 0)
		goto out;
	if (signature && (error = cmv_buf_set(&sig, signature, strlen(signature))) < 0)
		goto out;
	if ((error = cmv_dag__txn_start(repo)) < 0)
		goto out;
	if ((error = repo->backend->ref_get(repo->backend, &ref, branch)) < 0)
		goto done;
	if (ref->type != CMV_REF_BRANCH) {
		error = cmv_error__set(CMV_EINVALID, "'%s' is a snapshot; snapshots never change", branch);
		goto done;
	}
	error = repo->backend->state_get(repo->backend, &old, branch, LLM_KEY);
	if (error == 0 && !strcmp(old.ptr, llm))
		goto done; /* unchanged: no event, no segment */
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
	}
	if (error < 0 || (error = repo->backend->usage_foreach(repo->backend, branch, last_signature_cb, &last)) < 0)
		goto done;
	/* another name for the model it runs on (a key, then its descriptor): the reference changes, nothing else */
	if (old.size && last.size && !strcmp(last.ptr, sig.ptr)) {
		error = repo->backend->state_set(repo->backend, branch, LLM_KEY, llm);
		goto done;
	}

	/* The switch is part of the conversation's history: an event node. */
	cmv_id head = ref->target;
	uint64_t turn = 0;
	if (!cmv_id_is_none(&ref->target)) {
		if (!(ev = cJSON_CreateObject()) ||
		    !cJSON_AddStringToObject(ev, "type", "model_switch") ||
		    !cJSON_AddStringToObject(ev, "from", old.size ? old.ptr : "") ||
		    !cJSON_AddStringToObject(ev, "to", llm) ||
		    !cJSON_AddStringToObject(ev, "signature", sig.ptr) ||
		    !cJSON_AddNumberToObject(ev, "at", (double)cmv__now())) {
			error = cmv_error__oom();
			goto done;
		}
		/* what the caller measured for the switch (the fit), after the fields every switch has */
		while (det && det->child) {
			cJSON *c = cJSON_DetachItemViaPointer(det, det->child);
			if (!cJSON_GetObjectItemCaseSensitive(ev, c->string))
				cJSON_AddItemToObject(ev, c->string, c);
			else
				cJSON_Delete(c);
		}
		if (!(evtext = cJSON_PrintUnformatted(ev))) {
			error = cmv_error__oom();
			goto done;
		}
		cmv_block_content bc = { "model_switch", evtext, strlen(evtext), NULL, NULL,
					 "application/json", 0 };
		cmv_message m = { CMV_ROLE_SYSTEM, CMV_KIND_EVENT, 1, &bc, NULL, 0, 0, NULL, 0, NULL };
		if ((error = cmv_append(&head, repo, branch, &m, 1, 0)) < 0)
			goto done;
		if (event)
			*event = head;
		cmv_id parent;
		uint64_t depth = 0;
		if ((error = repo->backend->node_parent(repo->backend, &parent, &depth, &head)) < 0)
			goto done;
		turn = depth + 1;
	}
	cmv_usage_segment seg;
	memset(&seg, 0, sizeof(seg));
	seg.signature = sig.ptr;
	seg.start_node = head;
	seg.start_turn = turn;
	seg.started = cmv__now();
	if ((error = repo->backend->usage_begin(repo->backend, branch, &seg)) < 0)
		goto done;
	error = repo->backend->state_set(repo->backend, branch, LLM_KEY, llm);
done:
	error = cmv_dag__txn_end(repo, error);
out:
	cJSON_Delete(ev);
	cJSON_Delete(det);
	free(evtext);
	cmv_ref_free(ref);
	cmv_buf_dispose(&sig);
	cmv_buf_dispose(&old);
	cmv_buf_dispose(&last);
	return error;
}

int cmv_usage_record(cmv_repo *repo, const char *branch, uint64_t input_tokens,
		     uint64_t output_tokens, uint64_t cache_read_tokens, uint64_t cache_write_tokens)
{
	cmv_usage_segment d;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	memset(&d, 0, sizeof(d));
	d.calls = 1;
	d.input_tokens = input_tokens;
	d.output_tokens = output_tokens;
	d.cache_read_tokens = cache_read_tokens;
	d.cache_write_tokens = cache_write_tokens;
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	error = repo->backend->usage_add(repo->backend, branch, &d);
	return cmv_dag__txn_end(repo, error);
}

int cmv_usage_record_for(cmv_repo *repo, const char *branch, const char *signature, uint64_t input_tokens,
			 uint64_t output_tokens, uint64_t cache_read_tokens, uint64_t cache_write_tokens)
{
	cmv_buf last = CMV_BUF_INIT(LLM_MAX);
	cmv_usage_segment d;
	cmv_ref *ref = NULL;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(signature);
	if (!*signature || strlen(signature) > LLM_MAX)
		return cmv_error__set(CMV_EINVALID, "a model signature is 1 to %d bytes", LLM_MAX);
	memset(&d, 0, sizeof(d));
	d.calls = 1;
	d.input_tokens = input_tokens;
	d.output_tokens = output_tokens;
	d.cache_read_tokens = cache_read_tokens;
	d.cache_write_tokens = cache_write_tokens;
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	if ((error = repo->backend->ref_get(repo->backend, &ref, branch)) < 0 ||
	    (error = repo->backend->usage_foreach(repo->backend, branch, last_signature_cb, &last)) < 0)
		goto done;
	if (ref->type != CMV_REF_BRANCH) {
		error = cmv_error__set(CMV_EINVALID, "'%s' is a snapshot: usage is recorded on a branch", branch);
		goto done;
	}
	/* a call to another model than the current segment's: its own segment, from the head, so no call is booked to a model it did not use */
	if (strcmp(last.ptr, signature)) {
		cmv_usage_segment seg;
		uint64_t depth = 0;
		cmv_id parent;
		memset(&seg, 0, sizeof(seg));
		seg.signature = signature;
		seg.start_node = ref->target;
		if (!cmv_id_is_none(&ref->target)) {
			if ((error = repo->backend->node_parent(repo->backend, &parent, &depth, &ref->target)) < 0)
				goto done;
			seg.start_turn = depth + 1;
		}
		seg.started = cmv__now();
		if ((error = repo->backend->usage_begin(repo->backend, branch, &seg)) < 0)
			goto done;
	}
	error = repo->backend->usage_add(repo->backend, branch, &d);
done:
	cmv_ref_free(ref);
	cmv_buf_dispose(&last);
	return cmv_dag__txn_end(repo, error);
}

int cmv_usage_foreach(cmv_repo *repo, const char *branch,
		      int (*cb)(const cmv_usage_segment *, void *), void *payload)
{
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(cb);
	return repo->backend->usage_foreach(repo->backend, branch, cb, payload);
}

/* ---- other per-branch notes (trim provenance, ...) ---------------------------- */

/* Store notes live in the settings table under this prefix, which no setting of the store's own uses. */
#define STORE_NOTE_PREFIX "note:"

static int store_note_key(char *out, size_t cap, const char *key)
{
	if (!*key || strlen(key) + sizeof(STORE_NOTE_PREFIX) > cap)
		return cmv_error__set(CMV_EINVALID, "a store note's key must be 1 to %zu bytes",
				      cap - sizeof(STORE_NOTE_PREFIX));
	snprintf(out, cap, STORE_NOTE_PREFIX "%s", key);
	return 0;
}

int cmv_store_note_get(cmv_buf *out, cmv_repo *repo, const char *key)
{
	char k[512];
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(key);
	if ((error = store_note_key(k, sizeof(k), key)) < 0)
		return error;
	return repo->backend->config_get(repo->backend, out, k);
}

int cmv_store_note_set(cmv_repo *repo, const char *key, const char *value)
{
	char k[512];
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(key);
	if ((error = store_note_key(k, sizeof(k), key)) < 0 || (error = cmv_dag__txn_start(repo)) < 0)
		return error;
	error = repo->backend->config_set(repo->backend, k, value);
	return cmv_dag__txn_end(repo, error);
}

int cmv_branch_note_get(cmv_buf *out, cmv_repo *repo, const char *branch, const char *key)
{
	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(key);
	return repo->backend->state_get(repo->backend, out, branch, key);
}

int cmv_branch_note_set(cmv_repo *repo, const char *branch, const char *key, const char *value)
{
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(key);
	if (!strcmp(key, LLM_KEY))
		return cmv_error__set(CMV_EINVALID, "the model of a branch is set with cmv_branch_llm_set");
	if ((error = cmv_dag__txn_start(repo)) < 0)
		return error;
	error = repo->backend->state_set(repo->backend, branch, key, value);
	return cmv_dag__txn_end(repo, error);
}
