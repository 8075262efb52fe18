/* SPDX-License-Identifier: MIT */
/* What the server's files share (mcp.c, tools.c, transport.c). */
#ifndef CMV_SERVER_MCP_PRIV_H
#define CMV_SERVER_MCP_PRIV_H

#include <pthread.h>
#include <stdarg.h>
#include <cjson/cJSON.h>
#include "mcp.h"

/* JSON-RPC's codes */
#define MCP_PARSE_ERROR -32700
#define MCP_INVALID_REQUEST -32600
#define MCP_METHOD_NOT_FOUND -32601
#define MCP_INVALID_PARAMS -32602
#define MCP_INTERNAL_ERROR -32603

struct mcp_server {
	cmv_repo *repo;
	pthread_mutex_t lock;  /* the store handle: one request at a time */
	cmv_models *models;
	const cmv_model *model; /* whose tokens the budgets count */
	cmv_tok *tok;
	char *store_path;
	pthread_mutex_t slock; /* the sessions */
	char (*sessions)[40];
	size_t n_sessions;
};

int mcp_error(cmv_buf *out, const cJSON *id, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int mcp_reply_result(cmv_buf *out, const cJSON *id, cJSON *res);
cJSON *mcp_tools_list(void);
int mcp_tools_call(mcp_server *s, cmv_buf *out, const cJSON *id, const cJSON *params);
int mcp_resources(mcp_server *s, cmv_buf *out, const cJSON *id, const char *method, const cJSON *params);

#endif
