/* SPDX-License-Identifier: MIT */
/*
 * The tiktoken family's own half of the tokenizer: the .tiktoken rank files
 * and byte-level BPE over the pieces that pretok.c cuts.
 *
 * The rank table is filled here and by spm.c's native encoder; rank_of
 * (tok_priv.h) reads it. A loaded vocabulary has ranks 0..n-1 each exactly
 * once, distinct bytes for each, and every single byte a token, so merging
 * can always fall back to bytes and CMV_NEVER holds below.
 *
 * Merging must give tiktoken's ids (invariant 1 in tok.c): short pieces run
 * tiktoken's own loop, long ones a heap that makes the same merges in the
 * same order (lowest rank, then leftmost) in O(n log n).
 */
#include <errno.h>
#include "tok_priv.h"

#define SHORT_PIECE 64

/* ---- the rank table ---------------------------------------------------- */

int cmv_tok__table_insert(cmv_tok *t, uint32_t rank)
{
	const tok_entry *e = &t->entries[rank];
	uint64_t h = hash_bytes(t->bytes + e->off, e->len);
	size_t i = (size_t)h & t->table_mask;

	while (t->table[i]) {
		const tok_entry *o = &t->entries[t->table[i] - 1];
		if (o->len == e->len && !memcmp(t->bytes + o->off, t->bytes + e->off, e->len))
			return -1; /* the same bytes twice */
		i = (i + 1) & t->table_mask;
	}
	t->table[i] = rank + 1;
	t->tags[i] = (uint32_t)(h >> 32);
	if (e->len == 2)
		t->pair_rank[(size_t)t->bytes[e->off] << 8 | t->bytes[e->off + 1]] = rank;
	return 0;
}

/*
 * Parse a .tiktoken file: one "base64 rank" per line, ranks 0..n-1 each
 * exactly once. Anything else is refused with the file and line.
 */
int cmv_tok__load_ranks(cmv_tok *t, const char *path)
{
	FILE *fp = fopen(path, "rb");
	char line[1024];
	size_t lineno = 0, cap_bytes = 1 << 20, n_bytes = 0, cap_entries = 1 << 17;
	unsigned char *seen = NULL;
	int error = 0;

	if (!fp)
		return cmv_error__set(errno == ENOENT ? CMV_ENOTFOUND : CMV_EIO,
				      "tokenizer vocabulary '%s' not found: %s (run scripts/setup, or set "
				      "CMV_DATA_DIR)",
				      path, strerror(errno));
	if (!(t->bytes = cmv__malloc(cap_bytes)) ||
	    !(t->entries = cmv__calloc(cap_entries, sizeof(*t->entries))) ||
	    !(seen = cmv__calloc(cap_entries, 1))) {
		error = cmv_error__oom();
		goto done;
	}
	while (fgets(line, sizeof(line), fp)) {
		size_t len = strlen(line);
		char *sp, *end;
		long rank, n;
		lineno++;
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(fp)) {
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: line too long for a vocabulary", path, lineno);
			goto done;
		}
		if (!len)
			continue;
		if (!(sp = strchr(line, ' '))) {
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: expected 'BASE64 RANK'", path, lineno);
			goto done;
		}
		errno = 0;
		rank = strtol(sp + 1, &end, 10);
		if (errno || *end || end == sp + 1 || rank < 0 || rank > INT32_MAX - 1) {
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: bad rank '%s'", path, lineno, sp + 1);
			goto done;
		}
		while ((size_t)rank >= cap_entries) {
			size_t ncap = cap_entries * 2;
			tok_entry *ne = cmv__realloc(t->entries, ncap * sizeof(*ne));
			unsigned char *ns;
			if (!ne) {
				error = cmv_error__oom();
				goto done;
			}
			t->entries = ne;
			if (!(ns = cmv__realloc(seen, ncap))) {
				error = cmv_error__oom();
				goto done;
			}
			seen = ns;
			memset(seen + cap_entries, 0, ncap - cap_entries);
			cap_entries = ncap;
		}
		if (seen[rank]) {
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: rank %ld appears twice", path, lineno, rank);
			goto done;
		}
		if (n_bytes + (size_t)(sp - line) > cap_bytes) {
			unsigned char *nb = cmv__realloc(t->bytes, cap_bytes * 2);
			if (!nb) {
				error = cmv_error__oom();
				goto done;
			}
			t->bytes = nb;
			cap_bytes *= 2;
		}
		if ((n = cmv__base64_decode_into(t->bytes + n_bytes, line, (size_t)(sp - line))) <= 0) {
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: bad base64 token", path, lineno);
			goto done;
		}
		seen[rank] = 1;
		t->entries[rank].off = (uint32_t)n_bytes;
		t->entries[rank].len = (uint32_t)n;
		n_bytes += (size_t)n;
		if ((size_t)rank + 1 > t->n_ranks)
			t->n_ranks = (size_t)rank + 1;
	}
	if (ferror(fp)) {
		error = cmv_error__set(CMV_EIO, "cannot read '%s'", path);
		goto done;
	}
	if (t->n_ranks < 256) {
		error = cmv_error__set(CMV_EINVALID, "%s: %zu tokens is not a byte-level vocabulary", path,
				       t->n_ranks);
		goto done;
	}
	for (size_t r = 0; r < t->n_ranks; r++)
		if (!seen[r]) {
			error = cmv_error__set(CMV_EINVALID, "%s: rank %zu is missing", path, r);
			goto done;
		}
	/* A table at most half full keeps probes short. */
	size_t cap = 1;
	while (cap < t->n_ranks * 2)
		cap <<= 1;
	if (!(t->table = cmv__calloc(cap, sizeof(*t->table))) ||
	    !(t->tags = cmv__calloc(cap, sizeof(*t->tags))) ||
	    !(t->pair_rank = cmv__malloc(65536 * sizeof(*t->pair_rank)))) {
		error = cmv_error__oom();
		goto done;
	}
	for (size_t i = 0; i < 65536; i++)
		t->pair_rank[i] = NO_RANK;
	t->table_mask = cap - 1;
	for (size_t r = 0; r < t->n_ranks; r++)
		if (cmv_tok__table_insert(t, (uint32_t)r) < 0) {
			error = cmv_error__set(CMV_EINVALID, "%s: two ranks share the same bytes (rank %zu)",
					       path, r);
			goto done;
		}
	/* Byte-level BPE needs every single byte to be a token. */
	for (int c = 0; c < 256; c++) {
		unsigned char b = (unsigned char)c;
		if (rank_of(t, &b, 1) == NO_RANK) {
			error = cmv_error__set(CMV_EINVALID, "%s: byte 0x%02x has no token", path, c);
			goto done;
		}
	}
done:
	free(seen);
	fclose(fp);
	return error;
}

/* ---- byte-pair merging ------------------------------------------------- */

static int grow_scratch(cmv_tok *t, size_t n)
{
	size_t cap = t->scratch_cap ? t->scratch_cap : 256;
	uint32_t *a, *b, *c, *d;

	if (n <= t->scratch_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if (!(a = cmv__realloc(t->start, cap * sizeof(uint32_t))))
		return cmv_error__oom();
	t->start = a;
	if (!(b = cmv__realloc(t->next, cap * sizeof(uint32_t))))
		return cmv_error__oom();
	t->next = b;
	if (!(c = cmv__realloc(t->prev, cap * sizeof(uint32_t))))
		return cmv_error__oom();
	t->prev = c;
	if (!(d = cmv__realloc(t->pair, cap * sizeof(uint32_t))))
		return cmv_error__oom();
	t->pair = d;
	t->scratch_cap = cap;
	return 0;
}

/*
 * tiktoken's own loop, for short pieces. start[0..parts) are part offsets
 * with start[parts-1] == n as the end sentinel; pair[i] is the rank of
 * parts i and i+1 merged (start[i]..start[i+2]), NO_RANK when they are not
 * a token or i+1 is the sentinel.
 */
static int merge_short(cmv_tok *t, const unsigned char *p, size_t n, sink *s)
{
	uint32_t *start = t->start, *pair = t->pair;
	size_t parts = n + 1;

	for (size_t i = 0; i <= n; i++) {
		start[i] = (uint32_t)i;
		pair[i] = i + 2 <= n ? rank_of(t, p + i, 2) : NO_RANK;
	}
	for (;;) {
		uint32_t best = NO_RANK;
		size_t bi = 0;
		for (size_t i = 0; i + 1 < parts; i++)
			if (pair[i] < best) {
				best = pair[i];
				bi = i;
			}
		if (best == NO_RANK)
			break;
		/* parts bi and bi+1 become one: drop entry bi+1 */
		memmove(&start[bi + 1], &start[bi + 2], (parts - bi - 2) * sizeof(uint32_t));
		memmove(&pair[bi + 1], &pair[bi + 2], (parts - bi - 2) * sizeof(uint32_t));
		parts--;
		pair[bi] = bi + 2 < parts ? rank_of(t, p + start[bi], start[bi + 2] - start[bi]) : NO_RANK;
		if (bi > 0)
			pair[bi - 1] = rank_of(t, p + start[bi - 1], start[bi + 1] - start[bi - 1]);
	}
	for (size_t i = 0; i + 1 < parts; i++) {
		uint32_t r = rank_of(t, p + start[i], start[i + 1] - start[i]);
		int error;
		if (CMV_NEVER(r == NO_RANK))
			return cmv_error__set(CMV_ERROR, "tokenizer '%s': a merged part has no rank", t->name);
		if ((error = emit(s, r)) < 0)
			return error;
	}
	return 0;
}

static bool heap_less(heap_item a, heap_item b)
{
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static int heap_push(cmv_tok *t, size_t *n, heap_item it)
{
	size_t i;

	if (*n == t->heap_cap) {
		size_t ncap = t->heap_cap ? t->heap_cap * 2 : 256;
		heap_item *nh = cmv__realloc(t->heap, ncap * sizeof(*nh));
		if (!nh)
			return cmv_error__oom();
		t->heap = nh;
		t->heap_cap = ncap;
	}
	i = (*n)++;
	t->heap[i] = it;
	while (i > 0 && heap_less(t->heap[i], t->heap[(i - 1) / 2])) {
		heap_item tmp = t->heap[i];
		t->heap[i] = t->heap[(i - 1) / 2];
		t->heap[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
	return 0;
}

static heap_item heap_pop(cmv_tok *t, size_t *n)
{
	heap_item top = t->heap[0];
	size_t i = 0;

	t->heap[0] = t->heap[--(*n)];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < *n && heap_less(t->heap[l], t->heap[m]))
			m = l;
		if (r < *n && heap_less(t->heap[r], t->heap[m]))
			m = r;
		if (m == i)
			break;
		heap_item tmp = t->heap[i];
		t->heap[i] = t->heap[m];
		t->heap[m] = tmp;
		i = m;
	}
	return top;
}

/*
 * Long pieces: parts form a linked list over byte offsets (a part is named
 * by its first byte); pair[i] is the rank of part i merged with the part
 * after it, or NO_RANK. The heap holds (rank, i) entries, possibly stale:
 * an entry counts only if part i is alive and pair[i] still equals rank.
 */
#define DEAD UINT32_MAX

static uint32_t part_end(const cmv_tok *t, uint32_t i, size_t n)
{
	return t->next[i] == DEAD ? (uint32_t)n : t->next[i];
}

static uint32_t pair_rank(const cmv_tok *t, const unsigned char *p, size_t n, uint32_t i)
{
	uint32_t j = t->next[i];

	if (j == DEAD)
		return NO_RANK;
	return rank_of(t, p + i, part_end(t, j, n) - i);
}

static int merge_long(cmv_tok *t, const unsigned char *p, size_t n, sink *s)
{
	size_t hn = 0;
	int error;

	for (size_t i = 0; i < n; i++) {
		t->next[i] = i + 1 < n ? (uint32_t)(i + 1) : DEAD;
		t->prev[i] = i > 0 ? (uint32_t)(i - 1) : DEAD;
		t->start[i] = 1; /* alive */
	}
	for (size_t i = 0; i + 1 < n; i++) {
		t->pair[i] = rank_of(t, p + i, 2);
		if (t->pair[i] != NO_RANK && (error = heap_push(t, &hn, (heap_item){ (uint32_t)i, t->pair[i] })) < 0)
			return error;
	}
	t->pair[n - 1] = NO_RANK;
	while (hn) {
		heap_item it = heap_pop(t, &hn);
		uint32_t i = it.pos, j;
		if (!t->start[i] || t->pair[i] != it.rank)
			continue; /* stale */
		j = t->next[i];
		/* merge i and j */
		t->start[j] = 0;
		t->next[i] = t->next[j];
		if (t->next[j] != DEAD)
			t->prev[t->next[j]] = i;
		t->pair[i] = pair_rank(t, p, n, i);
		if (t->pair[i] != NO_RANK && (error = heap_push(t, &hn, (heap_item){ i, t->pair[i] })) < 0)
			return error;
		if (t->prev[i] != DEAD) {
			uint32_t h = t->prev[i];
			t->pair[h] = pair_rank(t, p, n, h);
			if (t->pair[h] != NO_RANK && (error = heap_push(t, &hn, (heap_item){ h, t->pair[h] })) < 0)
				return error;
		}
	}
	for (uint32_t i = 0; i != DEAD; i = t->next[i]) {
		uint32_t r = rank_of(t, p + i, part_end(t, i, n) - i);
		if (CMV_NEVER(r == NO_RANK))
			return cmv_error__set(CMV_ERROR, "tokenizer '%s': a merged part has no rank", t->name);
		if ((error = emit(s, r)) < 0)
			return error;
	}
	return 0;
}

int cmv_tok__encode_piece(cmv_tok *t, const unsigned char *p, size_t n, sink *s)
{
	uint32_t r = rank_of(t, p, n);
	int error;

	if (r != NO_RANK)
		return emit(s, r);
	if (n > UINT32_MAX - 1)
		return cmv_error__set(CMV_ETOOBIG, "a piece of %zu bytes is too long to tokenize", n);
	if ((error = grow_scratch(t, n + 1)) < 0)
		return error;
	return n <= SHORT_PIECE ? merge_short(t, p, n, s) : merge_long(t, p, n, s);
}
