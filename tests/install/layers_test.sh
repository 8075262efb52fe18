#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The layout's rules, checked on the source tree (docs/ARCHITECTURE.md):
#  1. no #include "../...": a module is reached through a header of its own;
#  2. a layer includes internal headers only of layers below it (base <- dag <-
#     formats, tok <- pager <- compaction <- host <- server <- cli, bench), and of
#     another layer only its *_int.h (base/base.h is the base's; server/mcp.h and server/proxy.h the server's);
#  3. public headers are included as <cmv/...>, never by a path.
# Usage: layers_test.sh SOURCE_DIR
set -u
cd "$1" || exit 1
declare -A rank=([base]=0 [dag]=1 [formats]=2 [tok]=2 [pager]=3 [compaction]=4 [host]=5 [server]=6 [cli]=7 [bench]=7)
fail=0 checked=0
for f in base/* dag/* formats/* tok/* pager/* compaction/* host/* server/* cli/* bench/*; do
	case $f in *.c|*.h|*.cc) ;; *) continue ;; esac
	layer=${f%%/*}
	checked=$((checked + 1))
	while IFS= read -r line; do
		inc=$(sed -n 's/^#include "\(.*\)".*/\1/p' <<<"$line")
		[ -n "$inc" ] || continue
		case $inc in
		../*)
			echo "$f: includes by a relative path: $inc"; fail=1 ;;
		cmv/*|include/*)
			echo "$f: a public header by a path, not <cmv/...>: $inc"; fail=1 ;;
		*/*)
			dep=${inc%%/*}
			if [ -z "${rank[$dep]+x}" ]; then
				echo "$f: includes $inc from no layer"; fail=1
			elif [ "$dep" != "$layer" ]; then
				if [ "${rank[$dep]}" -ge "${rank[$layer]}" ]; then
					echo "$f: layer $layer reaches up or across to $inc"; fail=1
				fi
				case $inc in
				base/base.h|server/mcp.h|server/proxy.h|*_int.h) ;;
				*) echo "$f: reaches into $dep/ past its *_int.h: $inc"; fail=1 ;;
				esac
			fi ;;
		esac
	done < <(grep '^#include "' "$f")
done
[ "$checked" -gt 50 ] || { echo "layers_test: only $checked files found under $1"; exit 1; }
[ $fail -eq 0 ] && echo "layers_test: $checked files, every include within the rules"
exit $fail
