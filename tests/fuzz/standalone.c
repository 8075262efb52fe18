/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target without libFuzzer: each file named, and each file of
 * each folder named (not recursive), is one input. What ctest runs over
 * the regression corpora with any compiler; a crash or a failed property
 * aborts, and the input is named first.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fuzz.h"

static size_t ran;

static void run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	uint8_t *data;

	if (!fp || fstat(fileno(fp), &st) != 0) {
		fprintf(stderr, "standalone: cannot read %s\n", path);
		exit(1);
	}
	if (!(data = malloc((size_t)st.st_size + 1)) ||
	    fread(data, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
		fprintf(stderr, "standalone: cannot read %s\n", path);
		exit(1);
	}
	fclose(fp);
	fprintf(stderr, "standalone: %s\n", path);
	LLVMFuzzerTestOneInput(data, (size_t)st.st_size);
	free(data);
	ran++;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "standalone: no such file or folder: %s\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			run_file(argv[i]);
			continue;
		}
		struct dirent **names;
		int n = scandir(argv[i], &names, NULL, alphasort);
		if (n < 0) {
			fprintf(stderr, "standalone: cannot read the folder %s\n", argv[i]);
			return 1;
		}
		for (int k = 0; k < n; k++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
			if (names[k]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
				run_file(path);
			free(names[k]);
		}
		free(names);
	}
	if (!ran) {
		fprintf(stderr, "standalone: no input ran\n");
		return 1;
	}
	printf("standalone: %zu inputs, no crash, every property held\n", ran);
	return 0;
}
