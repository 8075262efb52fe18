/* SPDX-License-Identifier: MIT */
/* Base layer: bounded buffers, ids, UTF-8 validation, error reporting. */
#include "test.h"
#include "base/base.h"

static void test_base_buf__grows_and_stays_terminated(void **state)
{
	cmv_buf b = CMV_BUF_INIT(1 << 20);

	(void)state;
	assert_string_equal(b.ptr, "");
	for (int i = 0; i < 1000; i++)
		assert_cmv_ok(cmv_buf_printf(&b, "%d,", i));
	assert_int_equal(b.ptr[b.size], '\0');
	assert_true(b.size < b.asize);
	assert_memory_equal(b.ptr, "0,1,2,", 6);
	cmv_buf_clear(&b);
	assert_int_equal(b.size, 0);
	assert_string_equal(b.ptr, "");
	cmv_buf_dispose(&b);
	assert_int_equal(b.asize, 0);
	cmv_buf_dispose(&b); /* twice is fine */
}

static void test_base_buf__cap_is_enforced(void **state)
{
	cmv_buf b = CMV_BUF_INIT(10);

	(void)state;
	assert_cmv_ok(cmv_buf_puts(&b, "0123456789"));
	assert_cmv_fails_with(CMV_ETOOBIG, cmv_buf_putc(&b, 'x'));
	/* a failed append leaves the buffer as it was */
	assert_int_equal(b.size, 10);
	assert_string_equal(b.ptr, "0123456789");
	assert_cmv_fails_with(CMV_ETOOBIG, cmv_buf_printf(&b, "%s", "more"));
	assert_cmv_fails_with(CMV_ETOOBIG, cmv_buf_grow(&b, 11));
	cmv_buf_dispose(&b);
}

static void test_base_buf__set_from_itself_and_detach(void **state)
{
	cmv_buf b = CMV_BUF_INIT(100);
	char *p;

	(void)state;
	assert_cmv_ok(cmv_buf_puts(&b, "hello world"));
	assert_cmv_ok(cmv_buf_set(&b, b.ptr + 6, 5));
	assert_string_equal(b.ptr, "world");
	p = cmv_buf_detach(&b);
	assert_string_equal(p, "world");
	assert_string_equal(b.ptr, "");
	free(p);
	/* detaching an empty buffer still gives a freeable string */
	p = cmv_buf_detach(&b);
	assert_string_equal(p, "");
	free(p);
}

static void test_base_buf__append_from_itself_while_growing(void **state)
{
	cmv_buf b = CMV_BUF_INIT(1 << 20);

	(void)state;
	assert_cmv_ok(cmv_buf_puts(&b, "abc"));
	/* each append doubles the contents, so the buffer moves while reading itself */
	for (int i = 0; i < 15; i++)
		assert_cmv_ok(cmv_buf_put(&b, b.ptr, b.size));
	assert_int_equal(b.size, 3u << 15);
	for (size_t i = 0; i < b.size; i++)
		assert_int_equal(b.ptr[i], "abc"[i % 3]);
	cmv_buf_dispose(&b);
}

static void test_base_id__matches_xxhsum_and_roundtrips(void **state)
{
	cmv_id id, back;
	char hex[CMV_ID_HEXSZ + 1];

	(void)state;
	/* `printf '' | xxhsum -H2` and `printf abc | xxhsum -H2` */
	cmv_id_hash(&id, "", 0);
	assert_string_equal(cmv_id_tostr(hex, CMV_ID_HEXSZ, &id), "99aa06d3014798d86001c324468d497f");
	cmv_id_hash(&id, "abc", 3);
	assert_string_equal(cmv_id_tostr(hex, CMV_ID_HEXSZ, &id), "06b05ab6733a618578af5f94892f3950");
	assert_cmv_ok(cmv_id_fromstr(&back, hex));
	assert_true(cmv_id_equal(&id, &back));
	assert_string_equal(cmv_id_tostr(hex, 7, &id), "06b05ab");
	assert_cmv_ok(cmv_id_fromstr(&back, "06B05AB6733A618578AF5F94892F3950"));
	assert_true(cmv_id_equal(&id, &back));
}

static void test_base_id__rejects_bad_hex_and_short_prefixes(void **state)
{
	cmv_id id;

	(void)state;
	assert_cmv_fails_with(CMV_EINVALID, cmv_id_fromstr(&id, "06b05ab6733a618578af5f94892f395"));
	assert_cmv_fails_with(CMV_EINVALID, cmv_id_fromstr(&id, "06b05ab6733a618578af5f94892f3950a"));
	assert_cmv_fails_with(CMV_EINVALID, cmv_id_fromstr(&id, "zzb05ab6733a618578af5f94892f3950"));
	assert_false(cmv_id_is_prefix("abcdef"));
	assert_true(cmv_id_is_prefix("abcdef0"));
	assert_false(cmv_id_is_prefix("abcdefg"));
	assert_false(cmv_id_is_prefix("06b05ab6733a618578af5f94892f3950aa"));
}

static void test_base_utf8__validation(void **state)
{
	size_t bad = 0;

	(void)state;
	assert_true(cmv_utf8_valid("plain ascii", 11, NULL));
	assert_true(cmv_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, NULL));
	assert_false(cmv_utf8_valid("ab\xff", 3, &bad));
	assert_int_equal(bad, 2);
	assert_false(cmv_utf8_valid("\xc0\xaf", 2, NULL));         /* overlong */
	assert_false(cmv_utf8_valid("\xed\xa0\x80", 3, NULL));     /* surrogate */
	assert_false(cmv_utf8_valid("\xf4\x90\x80\x80", 4, NULL)); /* past U+10FFFF */
	assert_false(cmv_utf8_valid("\xe2\x82", 2, &bad));         /* truncated */
	assert_int_equal(bad, 0);
}

static void test_base_errors__codes_and_messages(void **state)
{
	(void)state;
	cmv_error_clear();
	assert_null(cmv_error_last());
	assert_int_equal(cmv_error__set(CMV_ENOTFOUND, "thing '%s' not found", "x"), CMV_ENOTFOUND);
	assert_int_equal(cmv_error_last()->code, CMV_ENOTFOUND);
	assert_string_equal(cmv_error_last()->message, "thing 'x' not found");
	cmv_error__prefix("%s:%d: ", "file.jsonl", 3);
	assert_string_equal(cmv_error_last()->message, "file.jsonl:3: thing 'x' not found");
	/* The published codes never change. */
	assert_int_equal(CMV_ENOTFOUND, -30001);
	assert_int_equal(CMV_EMISMATCH, -30007);
	assert_int_equal(CMV_ITEROVER, -30016);
	assert_string_equal(cmv_strerror(CMV_EAMBIGUOUS), "ambiguous id prefix");
	assert_string_equal(cmv_strerror(12345), "unknown error");
	cmv_error_clear();
}

/* The header's version is the build's (CMakeLists.txt project()): an ABI change bumps both. */
static void test_base_version__header_and_project_agree(void **state)
{
	char v[32];
	(void)state;
	snprintf(v, sizeof(v), "%d.%d.%d", CMV_VERSION_MAJOR, CMV_VERSION_MINOR, CMV_VERSION_PATCH);
	assert_string_equal(cmv_version(), CMV_TEST_PROJECT_VERSION);
	assert_string_equal(v, CMV_TEST_PROJECT_VERSION);
	/* 0.2: cmv_billed_call grew (id, reasoning) */
	assert_true(CMV_VERSION_MAJOR > 0 || CMV_VERSION_MINOR >= 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_buf__grows_and_stays_terminated),
		cmocka_unit_test(test_base_buf__cap_is_enforced),
		cmocka_unit_test(test_base_buf__set_from_itself_and_detach),
		cmocka_unit_test(test_base_buf__append_from_itself_while_growing),
		cmocka_unit_test(test_base_id__matches_xxhsum_and_roundtrips),
		cmocka_unit_test(test_base_id__rejects_bad_hex_and_short_prefixes),
		cmocka_unit_test(test_base_utf8__validation),
		cmocka_unit_test(test_base_errors__codes_and_messages),
		cmocka_unit_test(test_base_version__header_and_project_agree),
	};
	return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
