#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Each public header compiles on its own, as C99 and C11, pedantic, warnings as errors.
# Usage: header_test.sh INCLUDE_DIR
set -euo pipefail
INC=$1
n=0
for h in "$INC"/cmv/*.h "$INC"/cmv/sys/*.h; do
	rel=${h#"$INC"/}
	for std in c99 c11; do
		printf '#include <%s>\nint main(void) { return 0; }\n' "$rel" |
			cc -std=$std -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$INC" \
				$(pkg-config --cflags sqlite3 libcjson libxxhash) -x c - ||
			{ echo "header $rel does not compile alone with -std=$std"; exit 1; }
	done
	n=$((n + 1))
done
echo "$n headers compile alone"
