/* SPDX-License-Identifier: MIT */
/*
 * cmv: context memory virtualization for LLM agents.
 *
 * The umbrella header: include this one. docs/ARCHITECTURE.md is the tour.
 */
#ifndef CMV_H
#define CMV_H

#include "common.h"
#include "errors.h"
#include "buf.h"
#include "id.h"
#include "dag.h"
#include "formats.h"
#include "tok.h"
#include "model.h"
#include "pager.h"
#include "llm.h"
#include "compaction.h"
#include "ledger.h"
#include "shadow.h"
#include "host.h"
#include "count.h"

#endif
