/* SPDX-License-Identifier: MIT */
/*
 * Repositories: finding, opening and closing a store, and the nested
 * transaction discipline every mutating call follows.
 *
 * Transaction states (txn_depth, txn_doomed):
 *   (0, -)      no transaction      -- cmv_repo_txn_begin -->   (1, false)
 *   (d, x)      open                -- begin -->                (d+1, x)
 *   (d>1, x)    open                -- commit/rollback -->      (d-1, x or true)
 *   (1, false)  open                -- commit -->               (0) written
 *   (1, true)   doomed              -- commit -->               (0) rolled back, CMV_ERROR
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "repo.h"

int cmv_repo_wrap_backend(cmv_repo **out, cmv_store_backend *backend, unsigned int flags)
{
	cmv_repo *repo;

	*out = NULL;
	if (!backend)
		return cmv_error__set(CMV_EINVALID, "invalid argument: 'backend'");
	if (backend->version != CMV_STORE_BACKEND_VERSION) {
		int v = (int)backend->version;
		backend->free(backend);
		return cmv_error__set(CMV_EVERSION, "store backend interface version %d not supported", v);
	}
	if (!(repo = cmv__calloc(1, sizeof(*repo)))) {
		backend->free(backend);
		return cmv_error__oom();
	}
	repo->backend = backend;
	repo->flags = flags;
#ifndef NDEBUG
	/* Debug and test builds check content against its id on every read. */
	repo->flags |= CMV_REPO_OPEN_VERIFY;
#endif
	*out = repo;
	return 0;
}

static int store_file_path(cmv_buf *out, const char *path)
{
	struct stat st;
	size_t len = strlen(path);

	cmv_buf_clear(out);
	if (!strcmp(path, ":memory:"))
		return cmv_buf_puts(out, path);
	/* A folder (the .cmv directory) holds store.db; anything else is the file. */
	if ((stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ||
	    (len >= strlen(CMV_DIRNAME) && !strcmp(path + len - strlen(CMV_DIRNAME), CMV_DIRNAME)))
		return cmv_buf_printf(out, "%s/%s", path, CMV_STORE_FILENAME);
	return cmv_buf_puts(out, path);
}

int cmv_store_is_url(const char *location)
{
	return location && (!strncmp(location, "postgresql://", 13) || !strncmp(location, "postgres://", 11));
}

int cmv_store_display(cmv_buf *out, const char *location)
{
	const char *p, *at, *end, *colon, *q;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(location);
	cmv_buf_clear(out);
	if (!cmv_store_is_url(location))
		return cmv_buf_puts(out, location);
	p = strstr(location, "://") + 3;
	end = p + strcspn(p, "/?");
	at = memchr(p, '@', (size_t)(end - p));
	if ((error = cmv_buf_put(out, location, (size_t)(p - location))) < 0)
		return error;
	if (at) {
		colon = memchr(p, ':', (size_t)(at - p));
		if ((error = cmv_buf_put(out, p, (size_t)((colon ? colon : at) - p))) < 0)
			return error;
		p = at;
	}
	/* the query string may carry password=...: none of it is printed */
	q = strchr(p, '?');
	return cmv_buf_put(out, p, q ? (size_t)(q - p) : strlen(p));
}

int cmv_repo_open(cmv_repo **out, const char *path, unsigned int flags)
{
	cmv_buf file = CMV_BUF_INIT(PATH_MAX);
	cmv_store_backend *backend = NULL;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(path);
	*out = NULL;
	if (cmv_store_is_url(path)) {
		if ((error = cmv_store_pg_open(&backend, path, flags)) < 0)
			return error;
		return cmv_repo_wrap_backend(out, backend, flags);
	}
	if ((error = store_file_path(&file, path)) < 0)
		goto done;
	if (flags & CMV_REPO_OPEN_CREATE) {
		/* Create the folders that hold the file, parents too (mkdir -p): a host names a path, not a tree. */
		char *slash = strrchr(file.ptr, '/');
		if (slash && strcmp(file.ptr, ":memory:")) {
			*slash = '\0';
			for (char *p = file.ptr + 1; *file.ptr; p++) {
				if (*p && *p != '/')
					continue;
				char c = *p;
				*p = '\0';
				if (mkdir(file.ptr, 0777) != 0 && errno != EEXIST) {
					error = cmv_error__set(CMV_EIO, "cannot create '%s': %s", file.ptr,
							       strerror(errno));
					goto done;
				}
				*p = c;
				if (!c)
					break;
			}
			*slash = '/';
		}
	}
	if ((error = cmv_store_sqlite_open(&backend, file.ptr, flags)) < 0)
		goto done;
	error = cmv_repo_wrap_backend(out, backend, flags);
done:
	cmv_buf_dispose(&file);
	return error;
}

int cmv_repo_init(cmv_repo **out, const char *dir)
{
	cmv_buf path = CMV_BUF_INIT(PATH_MAX);
	int error;

	CMV_ASSERT_ARG(dir);
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return cmv_error__set(CMV_EIO, "cannot create '%s': %s", dir, strerror(errno));
	if ((error = cmv_buf_printf(&path, "%s/%s", dir, CMV_DIRNAME)) == 0)
		error = cmv_repo_open(out, path.ptr, CMV_REPO_OPEN_CREATE);
	cmv_buf_dispose(&path);
	return error;
}

int cmv_repo_discover(cmv_buf *out, const char *start)
{
	const char *env = getenv("CMV_DIR");
	char cwd[PATH_MAX];
	cmv_buf dir = CMV_BUF_INIT(PATH_MAX), probe = CMV_BUF_INIT(PATH_MAX);
	struct stat st;
	int error = 0;

	cmv_buf_clear(out);
	if (env && *env)
		return cmv_buf_puts(out, env);
	if (!start) {
		if (!getcwd(cwd, sizeof(cwd)))
			return cmv_error__set(CMV_EIO, "cannot read the working directory: %s",
					      strerror(errno));
		start = cwd;
	}
	if ((error = cmv_buf_puts(&dir, start)) < 0)
		goto done;
	for (;;) {
		char *slash;
		cmv_buf_clear(&probe);
		if ((error = cmv_buf_printf(&probe, "%s/%s", strcmp(dir.ptr, "/") ? dir.ptr : "",
					    CMV_DIRNAME)) < 0)
			goto done;
		if (stat(probe.ptr, &st) == 0 && S_ISDIR(st.st_mode)) {
			error = cmv_buf_set(out, probe.ptr, probe.size);
			goto done;
		}
		slash = strrchr(dir.ptr, '/');
		if (!slash || dir.size <= 1)
			break;
		if (slash == dir.ptr)
			dir.size = 1; /* "/" */
		else
			dir.size = (size_t)(slash - dir.ptr);
		dir.ptr[dir.size] = '\0';
	}
	error = cmv_error__set(CMV_ENOTFOUND,
			       "no cmv store in '%s' or any parent (run 'cmv init' or set CMV_DIR)",
			       start);
done:
	cmv_buf_dispose(&dir);
	cmv_buf_dispose(&probe);
	return error;
}

void cmv_repo_free(cmv_repo *repo)
{
	if (!repo)
		return;
	if (repo->txn_depth > 0)
		repo->backend->txn_rollback(repo->backend);
	repo->backend->free(repo->backend);
	free(repo);
}

const char *cmv_repo_backend_name(const cmv_repo *repo)
{
	return repo->backend->name;
}

int cmv_repo_txn_begin(cmv_repo *repo)
{
	int error;

	CMV_ASSERT_ARG(repo);
	if (repo->txn_depth == 0) {
		if ((error = repo->backend->txn_begin(repo->backend)) < 0)
			return error;
		repo->txn_doomed = false;
		/* Another process may have changed the store since: trust nothing cached. */
		cmv_id_clear(&repo->last_node);
	}
	repo->txn_depth++;
	return 0;
}

int cmv_repo_txn_commit(cmv_repo *repo)
{
	int error;

	CMV_ASSERT_ARG(repo);
	if (repo->txn_depth <= 0)
		return cmv_error__set(CMV_ERROR, "no transaction to commit");
	if (--repo->txn_depth > 0)
		return 0;
	if (repo->txn_doomed) {
		cmv_id_clear(&repo->last_node);
		repo->backend->txn_rollback(repo->backend);
		return cmv_error__set(CMV_ERROR, "transaction was rolled back by an inner failure");
	}
	if ((error = repo->backend->txn_commit(repo->backend)) < 0) {
		cmv_id_clear(&repo->last_node);
		repo->backend->txn_rollback(repo->backend);
		return error;
	}
	return 0;
}

void cmv_repo_txn_rollback(cmv_repo *repo)
{
	if (!repo || repo->txn_depth <= 0)
		return;
	cmv_id_clear(&repo->last_node);
	if (--repo->txn_depth > 0) {
		repo->txn_doomed = true;
		return;
	}
	repo->backend->txn_rollback(repo->backend);
}

int cmv_repo_is_readonly(const cmv_repo *repo)
{
	return repo && (repo->flags & CMV_REPO_OPEN_READONLY) ? 1 : 0;
}

int cmv_repo_checkpoint_background(cmv_repo *repo, int on)
{
	CMV_ASSERT_ARG(repo);
	/* CMV_CHECKPOINT=inline keeps SQLite's own checkpoints: the baseline to measure against */
	const char *mode = getenv("CMV_CHECKPOINT");
	if ((repo->flags & CMV_REPO_OPEN_READONLY) || (on && mode && !strcmp(mode, "inline")))
		return 0;
	return cmv_dag__sqlite_checkpoint_background(repo->backend, on != 0);
}

int cmv_dag__txn_start(cmv_repo *repo)
{
	if (repo->flags & CMV_REPO_OPEN_READONLY)
		return cmv_error__set(CMV_EINVALID, "the store was opened read-only");
	return cmv_repo_txn_begin(repo);
}

int cmv_dag__txn_end(cmv_repo *repo, int error)
{
	if (error < 0) {
		/*
		 * Keep the precise message of the failure, not whatever the
		 * rollback might report.
		 */
		cmv_repo_txn_rollback(repo);
		return error;
	}
	return cmv_repo_txn_commit(repo);
}

static int repo_stats_filled(cmv_store_stats *out, cmv_repo *repo)
{
	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	return repo->backend->stats(repo->backend, out);
}

int cmv_repo_stats(cmv_store_stats *out, cmv_repo *repo)
{
	int error = repo_stats_filled(out, repo);
	if (out)
		out->version = CMV_STORE_STATS_VERSION;
	return error;
}
