/* test_hardening.c — the release build's hardening is really in the
 * programs (Makefile HARDEN, HARDEN_LD): each of bin/ is a position-
 * independent executable with read-only relocations bound at start
 * (RELRO + BIND_NOW), calls the stack protector's failure handler, and uses
 * fortified libc calls (__*_chk).  Read from the ELF files with readelf.  The
 * sanitizer build is built without these flags (ASan has its own checks), so
 * there only the PIE property, Debian's compiler default, is asserted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tests/testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define HARDENED 0
#else
#define HARDENED 1
#endif

/* Whether the output of `readelf OPTS PROGRAM` holds `what`. */
static bool readelf_has(const char *opts, const char *prog, const char *what)
{
	char cmd[1024], line[4096];
	snprintf(cmd, sizeof cmd, "readelf %s '%s/%s' 2>/dev/null", opts, test_bin_dir(), prog);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	bool found = false;
	while (fgets(line, sizeof line, p))
		found |= strstr(line, what) != NULL;
	int rc = pclose(p);
	if (rc != 0)
		fail_msg("%s failed (is binutils installed? is %s built?)", cmd, prog);
	return found;
}

static void check_program(const char *prog)
{
	if (!readelf_has("-h", prog, "DYN (Position-Independent Executable"))
		fail_msg("%s is not a position-independent executable", prog);
	if (!HARDENED)
		return;
	if (!readelf_has("-l", prog, "GNU_RELRO"))
		fail_msg("%s has no RELRO segment", prog);
	if (!readelf_has("-d", prog, "BIND_NOW"))
		fail_msg("%s does not bind at start (-z now)", prog);
	if (!readelf_has("--dyn-syms -W", prog, "__stack_chk_fail"))
		fail_msg("%s has no stack protector", prog);
	if (!readelf_has("--dyn-syms -W", prog, "_chk@"))
		fail_msg("%s calls no fortified libc function (_FORTIFY_SOURCE)", prog);
}

static void test_programs(void **state)
{
	static const char *const progs[] = {
		"sousuo-index", "sousuo-search", "sousuo-server", "sousuo-cli", "sousuo-hotpath",
		"sousuo-benchmark",
	};
	for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++)
		check_program(progs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_programs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
