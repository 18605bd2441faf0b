/*
 * wrong_size.c - a plugin whose descriptor claims ABI version 1 with a size that is not
 * version 1's (one reserved slot short, as if built from a mismatched header), for the
 * tests of the loader's refusal. Should the loader wrongly accept it, init fails with a
 * message saying so.
 */
#include <stdio.h>

#include "cgigate_plugin.h"

static int32_t wrong_init(const char *config, size_t len, char *err, size_t err_len)
{
    (void)config;
    (void)len;
    snprintf(err, err_len, "wrong_size: the loader should have refused a wrong descriptor size");
    return CGIGATE_ERROR;
}

static int32_t wrong_handle(cgigate_request *request)
{
    (void)request;
    return CGIGATE_ERROR;
}

static const cgigate_plugin descriptor = {
    sizeof(cgigate_plugin) - sizeof(void *), CGIGATE_ABI_VERSION, "wrong_size", wrong_init,
    wrong_handle, NULL, {0},
};

CGIGATE_EXPORT const cgigate_plugin *cgigate_plugin_descriptor(void)
{
    return &descriptor;
}
