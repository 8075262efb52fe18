/* SPDX-License-Identifier: MIT */
/*
 * cmv completions [bash|zsh|fish] [--install]: tab completion, generated
 * from the command table (cli/main.c) and each command's option table, so
 * it names every command and flag this cmv has and never goes stale
 * (claude-code-cmv's lists only its 1.0 commands).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *co_shell;
static bool co_install;
const cli_opt opts_completions[] = {
	{ OPT_ARG_OPT, "SHELL", 0, NULL, "bash, zsh or fish (default: from $SHELL, else bash)", &co_shell, NULL },
	{ OPT_FLAG, "install", 0, NULL, "write it where the shell loads completions from, instead of printing it", NULL, &co_install },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

/* The flags of a command as words: "--name -x ...". */
static void flags_of(cmv_buf *out, const cli_cmd *c)
{
	for (const cli_opt *o = c->opts; o && o->kind != OPT_END; o++) {
		if (o->kind != OPT_FLAG && o->kind != OPT_VALUE)
			continue;
		cmv_buf_printf(out, "%s--%s", out->size ? " " : "", o->name);
		if (o->short_name)
			cmv_buf_printf(out, " -%c", o->short_name);
	}
	cmv_buf_printf(out, "%s--help", out->size ? " " : "");
}

static void bash(cmv_buf *out)
{
	cmv_buf f = CMV_BUF_INIT(1 << 16);
	cmv_buf_puts(out, "# cmv completion for bash (cmv completions bash)\n_cmv() {\n"
			  "\tlocal cur=${COMP_WORDS[COMP_CWORD]} cmd= i\n"
			  "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
			  "\t\tcase ${COMP_WORDS[i]} in --store) ((i++)) ;; -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac\n"
			  "\tdone\n\tlocal words\n\tcase $cmd in\n\t'') words=\"--store --help --version");
	for (const cli_cmd *c = cli_commands; c->name; c++)
		cmv_buf_printf(out, " %s", c->name);
	cmv_buf_puts(out, "\" ;;\n");
	for (const cli_cmd *c = cli_commands; c->name; c++) {
		cmv_buf_clear(&f);
		flags_of(&f, c);
		cmv_buf_printf(out, "\t%s) words=\"%s\" ;;\n", c->name, f.ptr);
	}
	cmv_buf_puts(out, "\tesac\n\tif [[ -z $cmd || $cur == -* ]]; then\n"
			  "\t\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
			  "\telse\n\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\tfi\n}\ncomplete -o filenames -F _cmv cmv\n");
	cmv_buf_dispose(&f);
}

static void zsh(cmv_buf *out)
{
	cmv_buf f = CMV_BUF_INIT(1 << 16);
	cmv_buf_puts(out, "#compdef cmv\n# cmv completion for zsh (cmv completions zsh)\n_cmv() {\n"
			  "\tlocal -a cmds\n\tcmds=(\n");
	for (const cli_cmd *c = cli_commands; c->name; c++) {
		cmv_buf_printf(out, "\t\t'%s:", c->name);
		for (const char *p = c->summary; *p; p++)
			cmv_buf_puts(out, *p == '\'' ? "'\\''" : (char[2]){ *p, 0 });
		cmv_buf_puts(out, "'\n");
	}
	cmv_buf_puts(out, "\t)\n\tif (( CURRENT == 2 )); then\n\t\t_describe 'cmv command' cmds\n\t\treturn\n\tfi\n"
			  "\tlocal -a flags\n\tcase ${words[2]} in\n");
	for (const cli_cmd *c = cli_commands; c->name; c++) {
		cmv_buf_clear(&f);
		flags_of(&f, c);
		cmv_buf_printf(out, "\t%s) flags=(%s) ;;\n", c->name, f.ptr);
	}
	cmv_buf_puts(out, "\tesac\n\tif [[ $PREFIX == -* ]]; then\n\t\tcompadd -a flags\n\telse\n\t\t_files\n\tfi\n}\n"
			  "compdef _cmv cmv\n");
	cmv_buf_dispose(&f);
}

static void fish(cmv_buf *out)
{
	cmv_buf_puts(out, "# cmv completion for fish (cmv completions fish)\ncomplete -c cmv -f\n");
	for (const cli_cmd *c = cli_commands; c->name; c++) {
		cmv_buf_printf(out, "complete -c cmv -n __fish_use_subcommand -a %s -d '", c->name);
		for (const char *p = c->summary; *p; p++)
			cmv_buf_puts(out, *p == '\'' ? "\\'" : (char[2]){ *p, 0 });
		cmv_buf_puts(out, "'\n");
		for (const cli_opt *o = c->opts; o && o->kind != OPT_END; o++) {
			if (o->kind != OPT_FLAG && o->kind != OPT_VALUE)
				continue;
			cmv_buf_printf(out, "complete -c cmv -n '__fish_seen_subcommand_from %s' -l %s", c->name, o->name);
			if (o->short_name)
				cmv_buf_printf(out, " -s %c", o->short_name);
			if (o->kind == OPT_VALUE)
				cmv_buf_puts(out, " -r");
			cmv_buf_puts(out, "\n");
		}
	}
}

CMD(completions)
{
	cmv_buf out = CMV_BUF_INIT(1 << 20), path = CMV_BUF_INIT(4096);
	const char *shell;
	int rc = EXIT_OK;

	(void)ctx;
	CLI_PARSE("completions");
	shell = co_shell;
	if (!shell) {
		const char *sh = getenv("SHELL"), *base = sh ? strrchr(sh, '/') : NULL;
		base = base ? base + 1 : sh;
		shell = base && (!strcmp(base, "zsh") || !strcmp(base, "fish")) ? base : "bash";
	}
	if (!strcmp(shell, "bash"))
		bash(&out);
	else if (!strcmp(shell, "zsh"))
		zsh(&out);
	else if (!strcmp(shell, "fish"))
		fish(&out);
	else
		return cli_usage_error(cli_find("completions"), "completions for bash, zsh or fish, not '%s'", shell);
	if (!co_install) {
		fwrite(out.ptr, 1, out.size, stdout);
		cmv_buf_dispose(&out);
		return EXIT_OK;
	}
	/*
	 * Where each shell loads a command's completion by itself, so no rc file
	 * is edited: bash-completion's user folder, a folder on zsh's fpath
	 * (said how to add), fish's completions folder.
	 */
	const char *home = getenv("HOME"), *xdg = getenv("XDG_DATA_HOME");
	if (!home || !*home) {
		cmv_buf_dispose(&out);
		return cli_failf("no $HOME to install the completion in");
	}
	if (!strcmp(shell, "bash"))
		cmv_buf_printf(&path, "%s/bash-completion/completions", xdg && *xdg ? xdg : home);
	else if (!strcmp(shell, "zsh"))
		cmv_buf_printf(&path, "%s/.zsh/completions", home);
	else
		cmv_buf_printf(&path, "%s/.config/fish/completions", home);
	if (!strcmp(shell, "bash") && !(xdg && *xdg)) {
		cmv_buf_clear(&path);
		cmv_buf_printf(&path, "%s/.local/share/bash-completion/completions", home);
	}
	if (cli_mkdirs(path.ptr) != 0) {
		rc = cli_failf("cannot create %s: %s", path.ptr, strerror(errno));
		goto done;
	}
	cmv_buf_printf(&path, "/%s", !strcmp(shell, "zsh") ? "_cmv" : !strcmp(shell, "fish") ? "cmv.fish" : "cmv");
	FILE *fp = fopen(path.ptr, "wb");
	if (!fp || fwrite(out.ptr, 1, out.size, fp) != out.size || fclose(fp) != 0) {
		if (fp)
			fclose(fp);
		rc = cli_failf("cannot write %s: %s", path.ptr, strerror(errno));
		goto done;
	}
	printf("%s completion written to %s\n", shell, path.ptr);
	if (!strcmp(shell, "zsh"))
		printf("add to ~/.zshrc, before compinit: fpath=(~/.zsh/completions $fpath)\n");
done:
	cmv_buf_dispose(&out);
	cmv_buf_dispose(&path);
	return rc;
}
