/*
 * olm_dl.c - libolm opened on first use (see olm_dl.h for why).
 */
#define OLM_DL_NO_NAMES
#include <dlfcn.h>
#include <stddef.h>

#include "olm_dl.h"
#include "util.h"

/* The shared object of libolm 3 (Debian: libolm3), then the -dev link. */
static const char *const olm_dl_names[] = { "libolm.so.3", "libolm.so" };

struct olm_dl olm_dl;

int
olm_dl_load(char **cause)
{
	static int state;	/* 0 not tried, 1 loaded, -1 failed */
	static char *why;
	void *h = NULL;
	const char *missing = NULL;

	if (state == 0) {
		for (size_t i = 0; h == NULL && i < nitems(olm_dl_names); i++)
			h = dlopen(olm_dl_names[i], RTLD_NOW | RTLD_LOCAL);
		if (h == NULL)
			why = xasprintf("encrypted rooms need libolm 3 "
			    "(Debian: apt-get install libolm3): %s", dlerror());
		else {
#define OLM_DL_SYM(f)							\
			if (missing == NULL && (*(void **)&olm_dl.p_##f =	\
			    dlsym(h, #f)) == NULL)				\
				missing = #f;
			OLM_DL_FUNCS(OLM_DL_SYM)
#undef OLM_DL_SYM
			if (missing != NULL)
				why = xasprintf("the libolm found lacks %s: "
				    "encrypted rooms need libolm 3", missing);
		}
		state = why == NULL ? 1 : -1;
	}
	if (state == -1 && cause != NULL)
		*cause = xstrdup(why);
	return state == 1 ? 0 : -1;
}
