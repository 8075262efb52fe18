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
 * reasoning {id, summary[], encrypted_content} (OpenAI);
 * openai_item {item}: a Responses input item sent as it is (Codex's tool
 * search, a web search, a developer message in its place), to the
 * Responses API only.
 * System prompts are kept apart, in order, as strings.
 *
 * Each format reads its own records into this (the *_neutral functions):
 * the records are rebuilt byte for byte from their templates first, so a
 * renderer sees what the source wrote (signatures, message ids, call ids).
 */
#ifndef CMV_FORMATS_NEUTRAL_H
#define CMV_FORMATS_NEUTRAL_H

#include "session.h"


/* Start a message; returns its content array (NULL when out of memory). */
cJSON *cmv_formats__conv_msg(conv *c, const char *role, const char *group);
/* The content array of the last message if it has this role and group, else a new message. */
cJSON *cmv_formats__conv_msg_join(conv *c, const char *role, const char *group);
void cmv_formats__conv_system(conv *c, const char *text);
/* A compaction: what came before is replaced (system prompts stay). */
void cmv_formats__conv_reset(conv *c);

void cmv_formats__nb_text(conv *c, cJSON *content, const char *text);
/* A copy of an Anthropic-shaped block. */
void cmv_formats__nb_copy(conv *c, cJSON *content, const cJSON *block);
/* input: an object (copied); args_json: JSON text (parsed; wrapped as {"input": text} if not an object). */
void cmv_formats__nb_tool_use(conv *c, cJSON *content, const char *id, const char *name, const cJSON *input,
		 const char *args_json, bool custom);
/* result: a string or an array of blocks (copied), or text. */
void cmv_formats__nb_tool_result(conv *c, cJSON *content, const char *id, const cJSON *result, const char *text,
		    bool is_error);
void cmv_formats__nb_reasoning(conv *c, cJSON *content, const cJSON *item);
void cmv_formats__nb_openai_item(conv *c, cJSON *content, const cJSON *item);
/*
 * A developer (or system) message item of a Responses input, a Codex
 * rollout's or one a client sent the proxy (kept whole, host/reply.c): for
 * the Responses API (c->developer_in_place) the item in its place, in
 * content (NULL: the last user message, joined), as Codex sends it; for
 * other providers its texts are system prompts. One without text goes
 * nowhere.
 */
void cmv_formats__nb_instruction(conv *c, cJSON *content, const cJSON *item);
void cmv_formats__nb_image_b64(conv *c, cJSON *content, const char *media_type, const char *data);

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
int cmv_formats__cut_anthropic_content(record_build *rb, jspan content, const cJSON *jcontent);
int cmv_formats__cut_responses_item(record_build *rb, jspan item, const cJSON *j, cmv_role *role, cmv_kind *kind);
int cmv_formats__cut_chat_message(record_build *rb, jspan msg, const cJSON *j, cmv_role *role, cmv_kind *kind);

/* Shared readers (render side). */
int cmv_formats__responses_item_neutral(conv *c, const cJSON *item);
int cmv_formats__chat_message_neutral(conv *c, const cJSON *msg);
int cmv_formats__anthropic_message_neutral(conv *c, const cJSON *msg, const char *group);

/* ---- between the files of rendering (render.c, repair.c, write.c) ----------- */

/* A message's blocks repaired for target t (repair.c): what comes out passes its checker. */
int cmv_formats__repair(cJSON **out_msgs, conv *c, cmv_render_target t, cmv_render_stats *st);
/* A block's "type", or "" when it has none. */
const char *cmv_formats__btype(const cJSON *b);
/* Whether a text has anything but white space. */
bool cmv_formats__has_text(const char *s);
cJSON *cmv_formats__text_block(const char *text);
cJSON *cmv_formats__new_message(const char *role);
/* The provider shapes (write.c): msgs and system as repaired, written into body. */
int cmv_formats__write_anthropic(cJSON *body, cJSON *msgs, const cJSON *system, unsigned flags);
int cmv_formats__write_openai_chat(cJSON *body, cJSON *msgs, const cJSON *system, cmv_buf *scratch);
int cmv_formats__write_openai_responses(cJSON *body, cJSON *msgs, const cJSON *system, unsigned flags,
					cmv_buf *scratch);
int cmv_formats__write_gemini(cJSON *body, cJSON *msgs, const cJSON *system, unsigned flags);

#endif
