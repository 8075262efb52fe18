/* SPDX-License-Identifier: MIT */
/*
 * Library functions that are easy to misuse with unbounded buffers; using
 * one is a compile error. Use cmv_buf, snprintf, strtol and friends.
 */
#ifndef CMV_BANNED_H
#define CMV_BANNED_H

#define CMV_BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) CMV_BANNED(strcpy)
#undef strcat
#define strcat(x, y) CMV_BANNED(strcat)
#undef sprintf
#define sprintf(...) CMV_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) CMV_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) CMV_BANNED(strtok)
#undef atoi
#define atoi(x) CMV_BANNED(atoi)

#endif
