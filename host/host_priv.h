/* SPDX-License-Identifier: MIT */
/* What the files of host/ share (docs/host.md). */
#ifndef CMV_HOST_PRIV_H
#define CMV_HOST_PRIV_H

#include <stdbool.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <cmv/host.h>
#include <cmv/count.h>
#include <cmv/ledger.h>
#include "base/base.h"

struct cmv_model_handle {
	cmv_models *models;      /* the registry the profile's strings live in */
	cmv_model profile;       /* calibrated; its strings borrowed from models or from this handle */
	cmv_tok *tok;
	char *ref;               /* what a branch stores */
	char *signature;
	char *own_id, *own_provider, *own_base_url, *own_tokenizer;
	uint32_t max_tokens;
};

/* The target a format name stands for (a provider's wire format). */
int cmv_host__format(cmv_render_target *out, const char *format);

/* A tool list in the neutral shape [{name, description, input_schema}], from either provider's shape. */
int cmv_host__tools_neutral(cJSON **out, const char *json);

/* cmv_append_json for messages already parsed (the JSON entry's: not printed and parsed again). */
int cmv_host__append_parsed(cmv_id *head, cmv_repo *repo, const char *branch, const char *format, const cJSON *in);

/* A neutral message ({"role", "content": [blocks]}) appended to a branch. */
int cmv_host__append_neutral(cmv_id *head, cmv_repo *repo, const char *branch, const cJSON *msgs);

/* The signature of a provider/model/base_url, normalized (host/model.c). */

#endif
