/* SPDX-License-Identifier: MIT */
/* cmv append --role ROLE [--text TEXT] [BRANCH]: one message; its text from stdin by default. */
#include <string.h>
#include "cmd.h"

static const char *a_role, *a_text, *a_kind, *a_branch;
static bool a_json;
const cli_opt opts_append[] = {
	{ OPT_ARG_OPT, "BRANCH", 0, NULL, "the branch (default: the current one; created if missing)", &a_branch, NULL },
	{ OPT_VALUE, "role", 'r', "ROLE", "system, user, assistant or tool (required)", &a_role, NULL },
	{ OPT_VALUE, "text", 0, "TEXT", "the message text (default: read standard input)", &a_text, NULL },
	{ OPT_VALUE, "kind", 0, "KIND", "message (default), event or summary", &a_kind, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print the result as JSON", NULL, &a_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(append)
{
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT), branch = CMV_BUF_INIT(4096);
	cmv_block_content block;
	cmv_message msg;
	cmv_id head;
	char hex[CMV_ID_HEXSZ + 1];
	int rc = EXIT_OK;

	CLI_PARSE("append");
	if (!a_role)
		return cli_usage_error(cli_find("append"), "missing --role");
	memset(&msg, 0, sizeof(msg));
	msg.kind = CMV_KIND_MESSAGE;
	if (cmv_role_parse(&msg.role, a_role) < 0 || (a_kind && cmv_kind_parse(&msg.kind, a_kind) < 0))
		return cli_usage_error(cli_find("append"), "%s", cmv_error_last()->message);
	if (a_branch)
		cli_ref_canon(&branch, ctx, a_branch);
	else if ((rc = cli_current_branch(&branch, ctx)) != 0)
		goto done;
	if (a_text)
		cmv_buf_puts(&text, a_text);
	else if ((rc = cli_read_stdin(&text)) != 0)
		goto done;
	if (!cmv_utf8_valid(text.ptr, text.size, NULL)) {
		rc = cli_failf("<stdin>: the message is not valid UTF-8");
		goto done;
	}
	memset(&block, 0, sizeof(block));
	block.type = "text";
	block.data = text.ptr;
	block.len = text.size;
	msg.n_blocks = 1;
	msg.blocks = &block;
	if (cmv_append(&head, ctx->repo, branch.ptr, &msg, 1, CMV_APPEND_CREATE) < 0) {
		rc = cli_fail("cannot append");
		goto done;
	}
	if (a_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "branch", branch.ptr);
		cJSON_AddStringToObject(o, "head", cli_id(&head, hex));
		rc = cli_print_json(o);
	} else {
		printf("%s\n", cli_id(&head, hex));
	}
done:
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&branch);
	return rc;
}
