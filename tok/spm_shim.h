/* SPDX-License-Identifier: MIT */
/*
 * A C face for Debian's libsentencepiece, whose API is C++ only. Nothing
 * C++ crosses this line: every entry point catches all exceptions, and
 * errors come back as codes with a message copied into the caller's buffer.
 * Internal to the tokenizer (tok/spm.c; tok/tok.c decodes and frees).
 */
#ifndef CMV_TOK_SPM_SHIM_H
#define CMV_TOK_SPM_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cmv_spm cmv_spm;

/** Load a serialized ModelProto. @return 0, -1 (no memory), -2 (bad model: err says why) */
int cmv_spm__load(cmv_spm **out, const void *bytes, size_t len, char *err, size_t errlen);
void cmv_spm__free(cmv_spm *m);
size_t cmv_spm__vocab_size(const cmv_spm *m);

/**
 * Encode UTF-8 text; the ids are appended to *ids (malloc'd, grown as
 * needed, *n ids in it already, *cap its capacity), or only counted when
 * ids is NULL. @return 0, -1 (no memory), -2 (the library failed: err says why)
 */
int cmv_spm__encode(const cmv_spm *m, const char *text, size_t len, uint32_t **ids, size_t *n,
		    size_t *cap, char *err, size_t errlen);

/**
 * The text of piece `id` as the model would decode it alone: U+2581 as a
 * space and <0xNN> as that byte; control pieces decode to nothing.
 * Copies at most outcap bytes; @return the full length, or -1 for no such id.
 */
long cmv_spm__piece(const cmv_spm *m, uint32_t id, char *out, size_t outcap);

#ifdef __cplusplus
}
#endif

#endif
