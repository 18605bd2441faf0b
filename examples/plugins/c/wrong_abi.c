/*
 * wrong_abi.c - a plugin built for an ABI version the server does not know (999), for the
 * tests of the loader's refusal. The descriptor is written by hand, as CGIGATE_PLUGIN
 * always fills in CGIGATE_ABI_VERSION. Should the loader wrongly accept it, init fails
 * with a message saying so.
 */
#include <stdio.h>

#include "cgigate_plugin.h"

static int32_t wrong_init(const char *config, size_t len, char *err, size_t err_len)
{
    (void)config;
    (void)len;
    snprintf(err, err_len, "wrong_abi: the loader should have refused ABI version 999");
    return CGIGATE_ERROR;
}

static int32_t wrong_handle(cgigate_request *request)
{
    (void)request;
    return CGIGATE_ERROR;
}

static const cgigate_plugin descriptor = {
    sizeof(cgigate_plugin), 999, "wrong_abi", wrong_init, wrong_handle, NULL, {0},
};

CGIGATE_EXPORT const cgigate_plugin *cgigate_plugin_descriptor(void)
{
    return &descriptor;
}
