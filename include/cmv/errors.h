/* SPDX-License-Identifier: MIT */
/*
 * Error codes and the thread-local last error.
 *
 * Every fallible function returns an int: 0 on success, a negative code on
 * failure. CMV_ERROR (-1) is the catch-all; the other codes name failures a
 * caller may want to handle. Codes live in the range -30001.. so they can
 * never be mistaken for a negated errno, and a code is never renumbered or
 * reused: a retired one keeps its slot as a placeholder.
 *
 * The message of the most recent failure on the calling thread is kept in
 * thread-local storage, set where the failure happens and passed up
 * unchanged; cmv_error_last() reads it. It works before any handle exists,
 * so a failed open can still say why.
 */
#ifndef CMV_ERRORS_H
#define CMV_ERRORS_H

#include "common.h"

typedef enum {
	CMV_OK = 0,
	CMV_ERROR = -1,          /**< generic failure; the message says what */
	CMV_ENOTFOUND = -30001,  /**< no such object, ref, key or file */
	CMV_EEXISTS = -30002,    /**< a ref (or other named thing) already exists */
	CMV_EAMBIGUOUS = -30003, /**< a short id matches more than one object */
	CMV_EBUDGET = -30004,    /**< cannot fit the token budget */
	CMV_EMODIFIED = -30005,  /**< a ref moved under us (compare-and-swap lost) */
	CMV_ELOCKED = -30006,    /**< the store stayed locked past the busy timeout */
	CMV_EMISMATCH = -30007,  /**< content does not hash to its id */
	CMV_ETRANSPORT = -30008, /**< an LLM endpoint failed */
	CMV_EINVALID = -30009,   /**< bad input: malformed data, bad name, bad argument */
	CMV_ENOMEM = -30010,     /**< out of memory */
	CMV_EIO = -30011,        /**< an operating-system read or write failed */
	CMV_ECORRUPT = -30012,   /**< the store is damaged (fsck finds the details) */
	CMV_EUNSUPPORTED = -30013, /**< the backend or build lacks this feature */
	CMV_ETOOBIG = -30014,    /**< a size cap was hit (buffer, line, response) */
	CMV_EUSER = -30015,      /**< a callback asked to stop */
	CMV_ITEROVER = -30016,   /**< an iterator is exhausted (not a failure) */
	CMV_EVERSION = -30017,   /**< the store was written by a newer cmv */
} cmv_error_code;

/** The last failure recorded on this thread. */
typedef struct cmv_error {
	int code;            /**< a cmv_error_code */
	const char *message; /**< one line, no trailing period */
} cmv_error;

/**
 * The last error set on this thread, or NULL if none since the last clear.
 * Borrowed: valid until the next cmv call on this thread.
 */
CMV_EXTERN(const cmv_error *) cmv_error_last(void);

/** Forget the last error (after handling a failure yourself). */
CMV_EXTERN(void) cmv_error_clear(void);

/** A static, human-readable name for a code ("not found", ...). */
CMV_EXTERN(const char *) cmv_strerror(int code);

#endif
