/* SPDX-License-Identifier: MIT */
/*
 * The provider-neutral conversation that every rendering is built from.
 *
 * Messages are cJSON objects shaped like Anthropic's, because that shape
 * holds every other provider's content without loss:
 *   {"role": "user"|"assistant", "content": [block...], "group"?: string,
 *    "node"?: id}
 * Blocks: text {text}; image {source{type,media_type,data}};
 * tool_use {id, name, input, "custom"?: true when input is free text};
 * tool_result {tool_use_id, content (string or text/image blocks), is_error};
 * thinking {thinking, signature} (Anthropic); redacted_thinking {data};
 * reasoning {id, summary[], encrypted_content} (OpenAI).
 * System prompts are kept apart, in order, as strings.
 *
 * Each format reads its own records into this (the *_neutral functions):
 * the records are rebuilt byte for byte from their templates first, so a
 * renderer sees what the source wrote (signatures, message ids, call ids).
 */
#ifndef CMV_FORMATS_NEUTRAL_H
#define CMV_FORMATS_NEUTRAL_H

#include "session.h"

typedef struct {
	cJSON *system;    /* array of strings */
	cJSON *messages;  /* array of messages */
	const char *node; /* the id (hex) of the record being read */
	bool oom;
	size_t resets;    /* compactions crossed */
	bool keep_all;    /* a compaction does not drop what came before */
} conv;

/*
 * A branch loaded for one provider and repaired to its rules, before it is
 * written: the pager changes the messages in between (stubs, evictions).
 */
typedef struct cmv__conversation {
	conv c;                   /* c.system: the system prompts */
	cJSON *msgs;              /* the repaired messages, neutral shape */
	cmv_render_stats st;
	cmv_render_target target;
	cJSON *nodes;             /* per message of msgs: the hex id of the record it began at, or null */
	char raw_first_role[16];  /* the first message's role before repair ("" when none) */
} cmv__conversation;
int cmv__conversation_load(cmv__conversation *cv, cmv_repo *repo, const cmv_id *tip, cmv_render_target target,
			   unsigned int flags);
/*
 * The conversation of the records from `first` to `tip` alone, read and
 * repaired as cmv__conversation_load reads a whole branch: the pager's
 * last turn and what came after it. CMV_ENOTFOUND when first is not tip or
 * an ancestor within max_records, or the records cannot be read apart from
 * those before them (part of a JSON document, a compaction, a system
 * prompt).
 */
int cmv__conversation_load_since(cmv__conversation *cv, cmv_repo *repo, const cmv_id *first, const cmv_id *tip,
				 cmv_render_target target, unsigned int flags, size_t max_records);
/* The request body for cv->target, as cmv_render() writes it. */
int cmv__conversation_write(cmv_buf *out, const cmv__conversation *cv, const cmv_render_options *opts);
void cmv__conversation_dispose(cmv__conversation *cv);
/*
 * The messages of a branch as its records say them, before any repair,
 * each with the "node" (hex id) of the record that began it: compaction
 * cuts a branch at a message and needs to know which node that is.
 */
int cmv__conv_load_raw(conv *c, cmv_render_stats *st, cmv_repo *repo, const cmv_id *tip, unsigned int flags);
void cmv__conv_dispose(conv *c);
/* A conversation of raw messages [from, end), after a user message `lead` (may be NULL), repaired for target. */
int cmv__conversation_from_raw(cmv__conversation *cv, const conv *raw, size_t from, const char *lead,
			       cmv_render_target target);

/* Start a message; returns its content array (NULL when out of memory). */
cJSON *conv_msg(conv *c, const char *role, const char *group);
/* The content array of the last message if it has this role and group, else a new message. */
cJSON *conv_msg_join(conv *c, const char *role, const char *group);
void conv_system(conv *c, const char *text);
/* A compaction: what came before is replaced (system prompts stay). */
void conv_reset(conv *c);

void nb_text(conv *c, cJSON *content, const char *text);
/* A copy of an Anthropic-shaped block. */
void nb_copy(conv *c, cJSON *content, const cJSON *block);
/* input: an object (copied); args_json: JSON text (parsed; wrapped as {"input": text} if not an object). */
void nb_tool_use(conv *c, cJSON *content, const char *id, const char *name, const cJSON *input,
		 const char *args_json, bool custom);
/* result: a string or an array of blocks (copied), or text. */
void nb_tool_result(conv *c, cJSON *content, const char *id, const cJSON *result, const char *text,
		    bool is_error);
void nb_reasoning(conv *c, cJSON *content, const cJSON *item);
void nb_image_b64(conv *c, cJSON *content, const char *media_type, const char *data);

/* Readers: one record (parsed), into the conversation. */
typedef int (*neutral_fn)(conv *c, const cJSON *rec);
int cmv__cc_neutral(conv *c, const cJSON *rec);
int cmv__codex_neutral(conv *c, const cJSON *rec);
int cmv__copilot_neutral(conv *c, const cJSON *rec);
int cmv__gemini_cli_neutral(conv *c, const cJSON *rec);
int cmv__swe_agent_neutral(conv *c, const cJSON *rec);
int cmv__openhands_neutral(conv *c, const cJSON *rec);
int cmv__anthropic_neutral(conv *c, const cJSON *rec);
int cmv__openai_chat_neutral(conv *c, const cJSON *rec);
int cmv__openai_responses_neutral(conv *c, const cJSON *rec);
int cmv__gemini_neutral(conv *c, const cJSON *rec);
/* The parts of a document outside its record array (system prompts). */
int cmv__skeleton_neutral(conv *c, const char *format, const cJSON *doc);

/* Shared cutters (import side). */
int cut_anthropic_content(record_build *rb, jspan content, const cJSON *jcontent);
int cut_responses_item(record_build *rb, jspan item, const cJSON *j, cmv_role *role, cmv_kind *kind);
int cut_chat_message(record_build *rb, jspan msg, const cJSON *j, cmv_role *role, cmv_kind *kind);
/* A tool result's content as plain text: the string, or its blocks' texts, an image as "[image]". */
void cmv__result_text(cmv_buf *out, const cJSON *content);

/* Shared readers (render side). */
int responses_item_neutral(conv *c, const cJSON *item);
int chat_message_neutral(conv *c, const cJSON *msg);
int anthropic_message_neutral(conv *c, const cJSON *msg, const char *group);

#endif
