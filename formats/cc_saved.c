/* SPDX-License-Identifier: MIT */
/*
 * Claude Code's saved tool outputs (2.1.328; seen from 2.1.12 on).
 *
 * A tool output over Claude Code's limit is not sent whole: it is saved to
 * projects/<dir>/<session id>/tool-results/<name>.txt, and the result's
 * content, sent and recorded, is a preview of about 2 KB:
 *
 *   <persisted-output>
 *   Output too large (35.8KB). Full output saved to: PATH
 *
 *   Preview (first 2KB):
 *   ...the first lines...
 *   ...
 *   </persisted-output>
 *
 * The import keeps the saved file as the result's original: a block
 * `cc_saved_output` of the record (tool_id the call, tool_name the PATH the
 * record names, the file's bytes as its blob). It is never sent and has no
 * hole in the template, so the record still exports byte for byte; it
 * travels with the record through trim (a block with no hole is carried),
 * bundles and gc like any blob a node names.
 *
 * Where the file is looked for: beside the transcript, in the layout Claude
 * Code writes (<transcript's folder>/<id>/tool-results/<name>, the id being
 * the PATH's folder), then at PATH itself when it lies inside the local
 * Claude Code projects folder (a hook imports a copy of the transcript kept
 * elsewhere). Nowhere else: a session names any path it likes, and cmv
 * must not read (and keep, and bundle) a file outside what Claude Code
 * wrote. A file is taken only when it is a regular file (no link at its
 * last component) and the preview is its beginning.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "neutral.h"

#define PERSISTED_OPEN "<persisted-output>\n"
#define SAVED_TO "Full output saved to: "
#define PERSISTED_CLOSE "\n</persisted-output>"

int cmv__cc_persisted(const char *text, size_t len, size_t *header_len, const char **path, size_t *path_len)
{
	const size_t open = sizeof(PERSISTED_OPEN) - 1;
	if (!text || len < open || memcmp(text, PERSISTED_OPEN, open))
		return 0;
	const char *line = text + open, *end = text + len;
	const char *nl = memchr(line, '\n', (size_t)(end - line));
	if (!nl)
		return 0;
	const char *at = NULL;
	for (const char *q = line; q + sizeof(SAVED_TO) - 1 <= nl; q++)
		if (!memcmp(q, SAVED_TO, sizeof(SAVED_TO) - 1)) {
			at = q + sizeof(SAVED_TO) - 1;
			break;
		}
	if (!at || at == nl)
		return 0;
	if (header_len)
		*header_len = (size_t)(nl - text);
	if (path)
		*path = at;
	if (path_len)
		*path_len = (size_t)(nl - at);
	return 1;
}

/* The preview's body (what the file must begin with), or 0 when the preview is not in the shape above. */
static int preview_body(const char *text, size_t len, const char **body, size_t *body_len)
{
	size_t header;
	const size_t close = sizeof(PERSISTED_CLOSE) - 1;
	if (!cmv__cc_persisted(text, len, &header, NULL, NULL) || len < header + close ||
	    memcmp(text + len - close, PERSISTED_CLOSE, close))
		return 0;
	const char *p = text + header + 1, *end = text + len - close;
	/* a blank line, then "Preview (first 2KB):" */
	if (p >= end || *p != '\n')
		return 0;
	p++;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl || (size_t)(nl - p) < 7 || memcmp(p, "Preview", 7))
		return 0;
	p = nl + 1;
	/* the preview stops at a line boundary and says so with "..." */
	if (end - p >= 4 && !memcmp(end - 4, "\n...", 4))
		end -= 4;
	else if (end - p == 3 && !memcmp(p, "...", 3))
		end = p;
	*body = p;
	*body_len = (size_t)(end - p);
	return 1;
}

static bool name_char(char c, bool id)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       (!id && c == '.');
}

/*
 * The session folder and file name PATH names, when it is Claude Code's
 * layout: .../<id>/tool-results/<name>. Both plain names (no '/', no
 * leading '.'), so neither can climb out of where they are joined.
 */
static int saved_names(char id[129], char name[256], const char *path, size_t len)
{
	static const char dir[] = "/tool-results/";
	const char *slash = NULL;
	for (const char *q = path + len; q > path; q--)
		if (q[-1] == '/') {
			slash = q - 1;
			break;
		}
	size_t nlen = slash ? (size_t)(path + len - slash - 1) : 0, dlen = sizeof(dir) - 1;
	if (!slash || !nlen || nlen > 255 || path[len - nlen] == '.' || (size_t)(slash - path) + 1 < dlen ||
	    memcmp(slash + 1 - dlen, dir, dlen))
		return 0;
	for (size_t i = 0; i < nlen; i++)
		if (!name_char(path[len - nlen + i], false))
			return 0;
	const char *id_end = slash + 1 - dlen, *id_start = id_end;
	while (id_start > path && id_start[-1] != '/')
		id_start--;
	size_t ilen = (size_t)(id_end - id_start);
	if (!ilen || ilen > 128)
		return 0;
	for (size_t i = 0; i < ilen; i++)
		if (!name_char(id_start[i], true))
			return 0;
	memcpy(id, id_start, ilen);
	id[ilen] = '\0';
	memcpy(name, path + len - nlen, nlen);
	name[nlen] = '\0';
	return 1;
}

/* The file at `path`, if it is a regular file (not a link) of at most `cap` bytes. 1 read, 0 not there. */
static int read_regular(cmv_buf *out, const char *path, size_t cap)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), error = 0;
	struct stat st;
	char chunk[1 << 16];
	ssize_t n;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > cap) {
		close(fd);
		return 0;
	}
	cmv_buf_clear(out);
	while (!error && (n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			error = 1;
		} else if (out->size + (size_t)n > cap || cmv_buf_put(out, chunk, (size_t)n) < 0) {
			error = 1;
		}
	}
	close(fd);
	if (error) {
		cmv_buf_clear(out);
		cmv_error_clear();
		return 0;
	}
	return 1;
}

/* The local Claude Code projects folder, resolved ("" when there is none). */
static void projects_root(char out[PATH_MAX])
{
	const char *cfg = getenv("CLAUDE_CONFIG_DIR"), *home = getenv("HOME");
	char want[PATH_MAX];
	out[0] = '\0';
	if (cfg && *cfg)
		snprintf(want, sizeof(want), "%s/projects", cfg);
	else if (home && *home)
		snprintf(want, sizeof(want), "%s/.claude/projects", home);
	else
		return;
	if (!realpath(want, out))
		out[0] = '\0';
}

/* PATH itself, when its folder resolves inside the local projects folder. */
static int read_recorded(cmv_buf *out, const char *path, size_t len, const char *name, size_t cap)
{
	char root[PATH_MAX], dir[PATH_MAX], real[PATH_MAX], file[PATH_MAX];
	size_t nlen = strlen(name), rlen;
	if (len >= PATH_MAX || len <= nlen || path[0] != '/')
		return 0;
	projects_root(root);
	if (!root[0])
		return 0;
	memcpy(dir, path, len - nlen);
	dir[len - nlen] = '\0';
	if (!realpath(dir, real))
		return 0;
	rlen = strlen(root);
	if (strncmp(real, root, rlen) || real[rlen] != '/')
		return 0;
	if ((size_t)snprintf(file, sizeof(file), "%s/%s", real, name) >= sizeof(file))
		return 0;
	return read_regular(out, file, cap);
}

int cmv__cc_saved_find(cmv_buf *out, const char *transcript, const char *text, size_t len, size_t cap)
{
	const char *path, *body = NULL;
	size_t plen, blen = 0;
	char id[129], name[256], beside[PATH_MAX];
	int found = 0;

	if (!cmv__cc_persisted(text, len, NULL, &path, &plen) || !saved_names(id, name, path, plen))
		return 0;
	const char *slash = strrchr(transcript, '/');
	int n = slash ? snprintf(beside, sizeof(beside), "%.*s/%s/tool-results/%s", (int)(slash - transcript),
				 transcript, id, name)
		      : snprintf(beside, sizeof(beside), "%s/tool-results/%s", id, name);
	if (n > 0 && (size_t)n < sizeof(beside))
		found = read_regular(out, beside, cap);
	if (!found)
		found = read_recorded(out, path, plen, name, cap);
	/* the wrong file (another session's, a later run's) is worse than none */
	if (found && preview_body(text, len, &body, &blen) && blen && (out->size < blen || memcmp(out->ptr, body, blen)))
		found = 0;
	if (!found)
		cmv_buf_clear(out);
	return found;
}

/* ---- a written session's saved outputs, beside it -------------------------------- */

/* Replace every `from` in body by `to`. */
static int replace_all(cmv_buf *body, const char *from, size_t flen, const char *to, size_t tlen)
{
	cmv_buf out = CMV_BUF_INIT(SESSION_MAX_BYTES);
	const char *p = body->ptr, *end = body->ptr + body->size;
	int error = 0;
	bool any = false;

	if (!flen || !body->size)
		return 0;
	while (!error && p < end) {
		const char *hit = NULL;
		for (const char *q = p; q + flen <= end; q++) {
			q = memchr(q, from[0], (size_t)(end - q));
			if (!q || q + flen > end)
				break;
			if (!memcmp(q, from, flen)) {
				hit = q;
				break;
			}
		}
		if (!hit) {
			error = cmv_buf_put(&out, p, (size_t)(end - p));
			break;
		}
		any = true;
		if ((error = cmv_buf_put(&out, p, (size_t)(hit - p))) == 0)
			error = cmv_buf_put(&out, to, tlen);
		p = hit + flen;
	}
	if (!error && any)
		error = cmv_buf_set(body, out.ptr, out.size);
	cmv_buf_dispose(&out);
	return error;
}

/* The text of `s` as it stands inside a JSON string (no quotes). */
static int escaped(cmv_buf *out, const char *s)
{
	cmv_buf_clear(out);
	int error = cmv_formats__jscan_escape(out, s, strlen(s));
	if (!error) {
		memmove(out->ptr, out->ptr + 1, out->size - 2);
		out->size -= 2;
		out->ptr[out->size] = '\0';
	}
	return error;
}

/* Write `data` at path unless the same bytes are there; other bytes there are an error. */
static int place_file(const char *path, const void *data, size_t len)
{
	cmv_buf have = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error = 0;

	if (read_regular(&have, path, CMV_BUF_CONTENT)) {
		if (have.size != len || (len && memcmp(have.ptr, data, len)))
			error = cmv_error__set(CMV_EEXISTS, "%s: a different file is already there", path);
	} else if (access(path, F_OK) == 0) {
		error = cmv_error__set(CMV_EEXISTS, "%s: something other than a file is already there", path);
	} else {
		error = cmv__file_write_atomic(path, data, len, 0600);
	}
	cmv_buf_dispose(&have);
	return error;
}

static int mkdir_once(const char *dir)
{
	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return 0;
	return cmv_error__set(CMV_EIO, "cannot create %s: %s", dir, strerror(errno));
}

int cmv_claude_session_place_outputs(cmv_buf *body, size_t *n_out, cmv_repo *repo, const cmv_id *tip,
				     const char *session_path)
{
	cmv_walk *walk = NULL;
	const cmv_node *n;
	cmv_buf folder = CMV_BUF_INIT(PATH_MAX), file = CMV_BUF_INIT(PATH_MAX), blob = CMV_BUF_INIT(CMV_BUF_CONTENT),
		from = CMV_BUF_INIT(SESSION_MAX_BYTES), to = CMV_BUF_INIT(SESSION_MAX_BYTES);
	cmv__strmap done;
	size_t placed = 0;
	int error;

	CMV_ASSERT_ARG(body);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(session_path);
	memset(&done, 0, sizeof(done));
	if (n_out)
		*n_out = 0;
	size_t plen = strlen(session_path);
	if (plen < 7 || strcmp(session_path + plen - 6, ".jsonl"))
		return cmv_error__set(CMV_EINVALID, "%s: not a Claude Code session file (<id>.jsonl)", session_path);
	/* <folder>/<id>.jsonl -> <folder>/<id>/tool-results, as Claude Code lays a session out */
	if ((error = cmv_buf_put(&folder, session_path, plen - 6)) < 0 || (error = cmv_walk_new(&walk, repo, tip)) < 0)
		goto out;
	while ((error = cmv_walk_next(&n, walk)) == 0) {
		for (size_t i = 0; i < n->n_blocks && !error; i++) {
			const cmv_block *b = &n->blocks[i];
			const char *rec = b->tool_name, *name;
			if (strcmp(b->type, "cc_saved_output") || !rec || cmv__strmap_get(&done, rec, NULL, NULL))
				continue;
			name = strrchr(rec, '/') ? strrchr(rec, '/') + 1 : rec;
			cmv_buf_clear(&file);
			if ((error = cmv__strmap_put(&done, rec, 0, NULL)) < 0 ||
			    (error = cmv_buf_printf(&file, "%s/tool-results/%s", folder.ptr, name)) < 0)
				break;
			if (!placed && ((error = mkdir_once(folder.ptr)) < 0 ||
					(error = cmv_buf_printf(&to, "%s/tool-results", folder.ptr)) < 0 ||
					(error = mkdir_once(to.ptr)) < 0))
				break;
			if ((error = cmv_blob_read(&blob, repo, &b->blob)) < 0 ||
			    (error = place_file(file.ptr, blob.ptr ? blob.ptr : "", blob.size)) < 0 ||
			    (error = escaped(&from, rec)) < 0 || (error = escaped(&to, file.ptr)) < 0 ||
			    (error = replace_all(body, from.ptr, from.size, to.ptr, to.size)) < 0)
				break;
			placed++;
		}
		if (error)
			break;
	}
	if (error == CMV_ITEROVER)
		error = 0;
	if (!error && n_out)
		*n_out = placed;
out:
	cmv_walk_free(walk);
	cmv__strmap_dispose(&done);
	cmv_buf_dispose(&folder);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&blob);
	cmv_buf_dispose(&from);
	cmv_buf_dispose(&to);
	return error;
}
