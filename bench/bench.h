/* SPDX-License-Identifier: MIT */
/* Shared helpers for cmv-bench: timing, machine description, scratch directories. */
#ifndef CMV_BENCH_H
#define CMV_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include <cmv/cmv.h>

double bench_now(void);             /* seconds, monotonic */
char *bench_tmpdir(void);           /* malloc'd; removed by bench_rmdir */
void bench_rmdir(const char *dir);
uint64_t bench_file_bytes(const char *path);
/* "x86_64, 2 cores, Intel(R) Xeon(R) ..." */
void bench_machine(char *out, size_t n);
/* Percentile of n doubles (sorts them). */
double bench_percentile(double *v, size_t n, double p);

/* Session files under a folder, recursively: those whose content is a known format (`format`: only that one). */
typedef struct {
	char **paths;
	size_t n, cap;
	uint64_t bytes;
} bench_files;
void bench_collect(bench_files *l, const char *dir, const char *format);
void bench_files_free(bench_files *l);

int bench_store(int argc, char **argv);
/* The shared-store part of `store --store URL` (bench_store_shared.c): a JSON object. */
cJSON *bench_store_shared(const char *url, bool quick, bool json);
/* `store --store URL --ops`: each store operation's p50 at two history sizes, both backends (a JSON array). */
cJSON *bench_store_ops(const char *url, bool quick, bool json);
/* A fresh empty schema in the PostgreSQL database at url, as a store URL (malloc'd); dropped at exit. */
char *bench_pg_fresh(const char *url);
int bench_tokenizer(int argc, char **argv);
int bench_import(int argc, char **argv);
int bench_trim(int argc, char **argv);
int bench_locomo(int argc, char **argv);
int bench_pager(int argc, char **argv);
int bench_compact(int argc, char **argv);
int bench_count(int argc, char **argv);
int bench_mcp(int argc, char **argv);
/* bench_proxy_switch.c: cmv-bench proxy --switch */
int bench_proxy_switch(int argc, char **argv);
int bench_resume(int argc, char **argv);
int bench_host(int argc, char **argv);
int bench_carry(int argc, char **argv);
/* bench_proxy.c */
int bench_proxy(int argc, char **argv);

#endif
