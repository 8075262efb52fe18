/* SPDX-License-Identifier: MIT */
/*
 * The count memo of a cmv_tok (tok_int.h says what it is for). It may change
 * the time of a count, never its value: a slot answers only for the same
 * xxh3-64 and length, and holds a count only once it is complete. It stays
 * bounded: a table at most half full, emptied rather than grown past
 * MEMO_MAX slots; a memo that cannot grow just remembers less.
 */
#include "tok_priv.h"
#include "tok_int.h"

/*
 * A counted text: its xxh3-64, its length and its count. The pager counts
 * the same messages again for each candidate cut and again after each
 * append; a long text is tokenized once per cmv_tok.
 */
struct memo_slot {
	uint64_t hash;
	uint64_t len;
	uint64_t count; /* + 1; 0: an empty slot */
};
#define MEMO_INITIAL (1u << 12)
#define MEMO_MAX (1u << 18) /* slots: 6 MiB at most, over 130,000 texts */

static struct memo_slot *memo_find(cmv_tok *t, uint64_t h, size_t len)
{
	for (size_t i = (size_t)h & t->memo_mask;; i = (i + 1) & t->memo_mask) {
		struct memo_slot *sl = &t->memo[i];
		if (!sl->count || (sl->hash == h && sl->len == len))
			return sl;
	}
}

void cmv_tok__memo_store(cmv_tok *t, uint64_t h, size_t len, size_t count)
{
	if (!t->memo || (t->memo_n + 1) * 2 > t->memo_mask + 1) {
		size_t cap = t->memo ? (t->memo_mask + 1) * 2 : MEMO_INITIAL;
		struct memo_slot *old = t->memo;
		size_t old_cap = t->memo ? t->memo_mask + 1 : 0;
		if (cap > MEMO_MAX) {
			/* full: start over rather than grow without bound */
			memset(t->memo, 0, old_cap * sizeof(*t->memo));
			t->memo_n = 0;
		} else {
			struct memo_slot *grown = calloc(cap, sizeof(*grown));
			if (!grown)
				return; /* a memo that cannot grow just remembers less */
			t->memo = grown;
			t->memo_mask = cap - 1;
			t->memo_n = 0;
			for (size_t i = 0; i < old_cap; i++)
				if (old[i].count) {
					*memo_find(t, old[i].hash, (size_t)old[i].len) = old[i];
					t->memo_n++;
				}
			free(old);
		}
	}
	struct memo_slot *sl = memo_find(t, h, len);
	if (!sl->count)
		t->memo_n++;
	*sl = (struct memo_slot){ h, len, (uint64_t)count + 1 };
}

void cmv__tok_memo(cmv_tok *t, bool on)
{
	t->memo_on = on;
}

int cmv__tok_memo_get(cmv_tok *t, const void *text, size_t len, size_t *raw)
{
	if (!t->memo_on || !t->memo || len < MEMO_MIN_BYTES)
		return 0;
	struct memo_slot *sl = memo_find(t, hash_bytes(text, len), len);
	if (!sl->count)
		return 0;
	*raw = (size_t)(sl->count - 1);
	return 1;
}

void cmv__tok_memo_put(cmv_tok *t, const void *text, size_t len, size_t raw)
{
	if (t->memo_on && len >= MEMO_MIN_BYTES)
		cmv_tok__memo_store(t, hash_bytes(text, len), len, raw);
}

bool cmv_tok__memo_lookup(size_t *count, cmv_tok *t, uint64_t h, size_t len)
{
	if (t->memo) {
		struct memo_slot *sl = memo_find(t, h, len);
		if (sl->count) {
			*count = (size_t)(sl->count - 1);
			return true;
		}
	}
	return false;
}
