#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install into a scratch prefix; build and run a program against it with
# pkg-config, linked both to libcmv.so and to libcmv.a.
# Usage: install_test.sh BUILD_DIR [EXTRA_CFLAGS [COMPILER]]
# COMPILER: the one the library was built with (a sanitized library needs its own runtime).
set -euo pipefail
BUILD=$1
EXTRA=${2:-}
CC=${3:-cc}
PREFIX=$(mktemp -d /tmp/cmv-install-XXXXXX)
trap 'rm -rf "$PREFIX"' EXIT

cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
for f in bin/cmv bin/cmv-bench include/cmv/cmv.h include/cmv/dag.h include/cmv/sys/store_backend.h; do
	test -e "$PREFIX/$f" || { echo "missing after install: $f"; exit 1; }
done
pc=$(find "$PREFIX" -name cmv.pc | head -1)
so=$(find "$PREFIX" -name 'libcmv.so' | head -1)
a=$(find "$PREFIX" -name 'libcmv.a' | head -1)
test -n "$pc" -a -n "$so" -a -n "$a" || { echo "missing cmv.pc, libcmv.so or libcmv.a"; exit 1; }
case "$pc" in "$PREFIX"/lib/pkgconfig/cmv.pc|"$PREFIX"/lib/*/pkgconfig/cmv.pc|"$PREFIX"/lib64/pkgconfig/cmv.pc) ;; *) echo "odd cmv.pc place: $pc"; exit 1;; esac
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")

cat >"$PREFIX/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <cmv/cmv.h>

int main(void)
{
	cmv_repo *repo = NULL;
	cmv_block_content b = { .type = "text", .data = "hello from an embedder", .len = 22 };
	cmv_message m = { .role = CMV_ROLE_USER, .kind = CMV_KIND_MESSAGE, .n_blocks = 1, .blocks = &b };
	cmv_id head;
	char hex[CMV_ID_HEXSZ + 1];

	if (cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE) < 0 ||
	    cmv_append(&head, repo, "main", &m, 1, CMV_APPEND_CREATE) < 0) {
		fprintf(stderr, "%s\n", cmv_error_last()->message);
		return 1;
	}
	printf("cmv %s %s\n", cmv_version(), cmv_id_tostr(hex, CMV_ID_HEXSZ, &head));
	cmv_repo_free(repo);
	return 0;
}
C
# shared
"$CC" $EXTRA -Wall -Wextra -Werror -o "$PREFIX/prog" "$PREFIX/prog.c" $(pkg-config --cflags --libs cmv)
out=$(LD_LIBRARY_PATH=$(dirname "$so") "$PREFIX/prog")
echo "$out" | grep -Eq '^cmv [0-9]+\.[0-9]+\.[0-9]+ [0-9a-f]{32}$' || { echo "shared program printed: $out"; exit 1; }
# Capture, then grep: with pipefail, `cmd | grep -q` fails at random when grep
# exits early and cmd dies of SIGPIPE.
deps=$(LD_LIBRARY_PATH=$(dirname "$so") ldd "$PREFIX/prog")
grep -q "$(dirname "$so")/libcmv.so" <<<"$deps" || { echo "not linked to the installed libcmv.so"; exit 1; }
# static
"$CC" $EXTRA -Wall -Wextra -Werror -o "$PREFIX/prog_static" "$PREFIX/prog.c" $(pkg-config --cflags cmv) \
	"$a" $(pkg-config --libs-only-l --static cmv | sed 's/-lcmv//')
out2=$("$PREFIX/prog_static")
test "$out" = "$out2" || { echo "static and shared builds disagree: $out / $out2"; exit 1; }
# internal symbols stay hidden in the shared library
syms=$(nm -D --defined-only "$so")
# (cmv_buf__empty is public: CMV_BUF_INIT names it)
if grep ' cmv_[a-z]*__' <<<"$syms" | grep -qv ' cmv_buf__empty$'; then
	echo "internal symbols exported:" $(grep ' cmv_[a-z]*__' <<<"$syms" | grep -v ' cmv_buf__empty$' | head -3); exit 1
fi
# every global of the static library is cmv's, so a host linking it meets no clash (weak C++
# template copies aside: the linker merges those):
# public cmv_*, internal cmv_<layer>__* (and cmv__* of the base)
stray=$(nm -g --defined-only "$a" | awk '$2 ~ /^[TDBR]$/ && $3 !~ /^cmv_/ {print $3}')
if [ -n "$stray" ]; then echo "globals without the cmv_ prefix in libcmv.a:" $stray; exit 1; fi
grep -q ' cmv_append$' <<<"$syms" || { echo "public symbol missing"; exit 1; }
ver=$("$PREFIX/bin/cmv" --version)
grep -q "^cmv " <<<"$ver" || { echo "installed cmv does not run"; exit 1; }
echo "install test passed: $out"
