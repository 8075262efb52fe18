/* SPDX-License-Identifier: MIT */
/*
 * Whole files: read one into a buffer, and replace one atomically (a
 * temporary file beside it, fsync, rename), so that a reader sees the old
 * bytes or the new ones, never half of them. The one way this project
 * replaces a file: the CLI's session index, backups and bundles, and the
 * hook's in-place trim (which checks the live file between write and commit).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base.h"

int cmv__read_file(cmv_buf *out, const char *path)
{
	FILE *fp = fopen(path, "rb");
	char chunk[1 << 16];
	size_t n;
	int error = 0;

	if (!fp)
		return cmv_error__set(errno == ENOENT ? CMV_ENOTFOUND : CMV_EIO, "cannot open '%s': %s", path,
				      strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if ((error = cmv_buf_put(out, chunk, n)) < 0) {
			cmv_error__prefix("%s: ", path);
			break;
		}
	if (!error && ferror(fp))
		error = cmv_error__set(CMV_EIO, "cannot read '%s'", path);
	fclose(fp);
	return error;
}

int cmv__atomic_open(cmv__atomic_file *f, const char *path, unsigned int mode)
{
	static const char suffix[] = ".cmv-tmp.XXXXXX";
	int fd;
	size_t len = strlen(path);

	memset(f, 0, sizeof(*f));
	if (!(f->path = cmv__strdup(path)) || !(f->tmp = cmv__malloc(len + sizeof(suffix))))
		goto oom;
	memcpy(f->tmp, path, len);
	memcpy(f->tmp + len, suffix, sizeof(suffix));
	/*
	 * A name of its own (mkstemp: created, never an existing file or a
	 * link): two processes replacing one file each write their own
	 * temporary file, and the last rename wins whole.
	 */
	if ((fd = mkstemp(f->tmp)) < 0 || fchmod(fd, (mode_t)mode) != 0 || !(f->fp = fdopen(fd, "wb"))) {
		int saved = errno;
		if (fd >= 0) {
			close(fd);
			unlink(f->tmp);
		}
		cmv_error__set(CMV_EIO, "cannot write '%s': %s", f->tmp, strerror(saved));
		free(f->path);
		free(f->tmp);
		memset(f, 0, sizeof(*f));
		return CMV_EIO;
	}
	return 0;
oom:
	free(f->path);
	free(f->tmp);
	memset(f, 0, sizeof(*f));
	return CMV_ENOMEM;
}

/*
 * The rename is in the folder's entries: fsync the folder too, so that the
 * new file, not the old one, is what a power loss leaves. Best effort: a
 * folder that cannot be opened or synced (some file systems) changes nothing.
 */
static void sync_folder(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int cmv__atomic_commit(cmv__atomic_file *f)
{
	int error = 0;
	bool ok = fflush(f->fp) == 0 && fsync(fileno(f->fp)) == 0;
	int saved = ok ? 0 : errno;

	if (fclose(f->fp) != 0 && ok) {
		ok = false;
		saved = errno;
	}
	f->fp = NULL;
	if (!ok)
		error = cmv_error__set(CMV_EIO, "cannot write '%s': %s", f->tmp, strerror(saved));
	else if (rename(f->tmp, f->path) != 0)
		error = cmv_error__set(CMV_EIO, "cannot replace '%s': %s", f->path, strerror(errno));
	else
		sync_folder(f->path);
	if (error)
		unlink(f->tmp);
	free(f->tmp);
	free(f->path);
	f->tmp = f->path = NULL;
	return error;
}

void cmv__atomic_abort(cmv__atomic_file *f)
{
	if (f->fp)
		fclose(f->fp);
	if (f->tmp)
		unlink(f->tmp);
	free(f->tmp);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

int cmv__file_write_atomic(const char *path, const void *data, size_t len, unsigned int mode)
{
	cmv__atomic_file f;
	int error = cmv__atomic_open(&f, path, mode);

	if (error < 0)
		return error;
	if (len && fwrite(data, 1, len, f.fp) != len) {
		error = cmv_error__set(CMV_EIO, "cannot write '%s': %s", f.tmp, strerror(errno));
		cmv__atomic_abort(&f);
		return error;
	}
	return cmv__atomic_commit(&f);
}
