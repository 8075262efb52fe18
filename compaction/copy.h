/* SPDX-License-Identifier: MIT */
/* Internal: what trim and the compaction job both do to the records they keep. */
#ifndef CMV_COMPACTION_COPY_H
#define CMV_COMPACTION_COPY_H

#include <cmv/dag.h>

/*
 * Write node n again below *tail (none: as a root), derived from n, its
 * blobs kept by id; *tail becomes the copy (compaction/trim.c).
 */
int cmv__node_copy_below(cmv_id *tail, cmv_repo *repo, const cmv_node *n);

#endif
