/* h_static.c - the page's files: GET / (index.html) and GET /static/NAME
 * from --static. Names are one path segment of safe characters, so no
 * request reaches outside that directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "respond.h"

#define STATIC_MAX_BYTES (8 << 20)

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},   {".png", "image/png"},
    {".svg", "image/svg+xml"},             {".json", "application/json"},
    {".ico", "image/x-icon"},
};

static bool safe_name(const char *name)
{
    if (!name[0] || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._-", *p)))
            return false;
    return true;
}

static enum MHD_Result send_file(Request *r, const char *name)
{
    const char *type = NULL, *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
        if (!strcmp(dot, types[i].ext))
            type = types[i].type;
    char path[2200];
    snprintf(path, sizeof path, "%s/%s", r->srv->cfg.static_dir, name);
    struct stat st;
    FILE *f = type && safe_name(name) ? fopen(path, "rb") : NULL;
    if (!f || fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX_BYTES) {
        if (f)
            fclose(f);
        return respond_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no file /static/%.64s", name);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || n != (size_t)st.st_size) {
        free(buf);
        return respond_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "io_error", "cannot read %s", name);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return respond_queue(r, MHD_HTTP_OK, resp);
}

enum MHD_Result h_static(Request *r) { return send_file(r, r->params[0]); }

enum MHD_Result h_index(Request *r)
{
    static const char fallback[] =
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mnistd</title></head>"
        "<body><h1>mnistd</h1><p>The model server is running (no page found in --static). Try "
        "<code>curl -F image=@digit.png http://HOST/predict</code> or "
        "<a href=\"/models\">/models</a>.</p></body></html>\n";
    char path[2200];
    struct stat st;
    snprintf(path, sizeof path, "%s/index.html", r->srv->cfg.static_dir);
    if (stat(path, &st) == 0)
        return send_file(r, "index.html");
    return respond_bytes(r, MHD_HTTP_OK, "text/html; charset=utf-8", fallback, sizeof fallback - 1);
}
