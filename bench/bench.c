/* SPDX-License-Identifier: MIT */
/*
 * What every cmv-bench suite shares (bench.h): the clock, temporary stores,
 * the machine's name, percentiles, and the session files of a folder.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *bench_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path = malloc(4096);

	snprintf(path, 4096, "%s/cmv-bench-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(path)) {
		perror("cmv-bench: mkdtemp");
		exit(1);
	}
	return path;
}

void bench_rmdir(const char *dir)
{
	char cmd[8192];

	if (strncmp(dir, "/tmp/", 5) || strstr(dir, ".."))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cmv-bench: cannot remove %s\n", dir);
}

uint64_t bench_file_bytes(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

void bench_machine(char *out, size_t n)
{
	struct utsname u;
	char model[256] = "unknown cpu";
	FILE *fp = fopen("/proc/cpuinfo", "r");
	char line[512];

	if (fp) {
		while (fgets(line, sizeof(line), fp))
			if (!strncmp(line, "model name", 10)) {
				char *c = strchr(line, ':');
				if (c) {
					snprintf(model, sizeof(model), "%s", c + 2);
					model[strcspn(model, "\n")] = '\0';
				}
				break;
			}
		fclose(fp);
	}
	uname(&u);
	snprintf(out, n, "%s, %ld cores, %s", u.machine, sysconf(_SC_NPROCESSORS_ONLN), model);
}

void bench_collect(bench_files *l, const char *dir, const char *format)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char path[4096];

	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		const char *f;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			bench_collect(l, path, format);
			continue;
		}
		bool named = (len > 6 && !strcmp(e->d_name + len - 6, ".jsonl")) || (len > 5 && !strcmp(e->d_name + len - 5, ".json")) ||
			     (len > 5 && !strcmp(e->d_name + len - 5, ".traj"));
		if (!named || cmv_format_detect(&f, path) < 0 || (format && strcmp(f, format))) {
			cmv_error_clear();
			continue;
		}
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 64;
			l->paths = realloc(l->paths, l->cap * sizeof(*l->paths));
		}
		l->paths[l->n++] = strdup(path);
		l->bytes += (uint64_t)st.st_size;
	}
	if (d)
		closedir(d);
}

void bench_files_free(bench_files *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->paths[i]);
	free(l->paths);
	memset(l, 0, sizeof(*l));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double bench_percentile(double *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

