/* test_hostile.c - hostile input against the real server (in-process, on a
 * free port, raw requests over sockets as in test_http.c): broken and
 * bomb PNGs, lying Content-Lengths, slow clients, malformed multipart,
 * nested, huge and non-UTF-8 JSON, impossible specs, path traversal, bad
 * tokens and a full queue. Each gets its documented status and JSON error,
 * the server answers a normal /predict right after, and repeating every
 * case many times grows neither the heap nor the resident set. */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "check_http.h"
#include "check_pipe.h"
#include "check_server.h"
#include "check_util.h"
#include "dataset.h"
#include "image.h"
#include "server.h"

/* Under AddressSanitizer the heap is ASan's and RSS means nothing. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define MAX_BODY (4L << 20) /* room for the 1 GiB bomb, about 1 MiB deflated */

static Server srv;
static char *store;

static void start_server(const char *token, long max_jobs, long conn_timeout)
{
    check_server_config(&srv, store);
    srv.cfg.max_body = MAX_BODY;
    srv.cfg.max_batch = 8;
    srv.cfg.max_jobs = max_jobs;
    srv.cfg.threads = 2;
    srv.cfg.watch_interval = 0;
    if (conn_timeout)
        srv.cfg.connection_timeout = conn_timeout;
    snprintf(srv.cfg.token, sizeof srv.cfg.token, "%s", token ? token : "");
    check_server_start(&srv);
}

static void setup(void)
{
    store = check_util_tmpdir();
    ck_assert_int_eq(check_util_copy_models(store), 0);
    start_server("tok", 16, 0);
}

static void teardown(void) { check_server_stop(&srv, store); }

/* ---- requests ---- */

/* One request over a fresh connection (check_http.h); extra is more header
 * lines, each ending in \r\n. */
static HttpReply http(const char *method, const char *path, const char *type, const char *extra,
                      const void *body, size_t len)
{
    return check_http_request(srv.cfg.port, method, path, type, extra, body, len);
}

/* Strict UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 9;
        if (k == 9 || i + k >= n + (k == 0))
            return false;
        unsigned v = k == 0 ? c : c & (0x3f >> k);
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            v = v << 6 | (s[i + j] & 0x3f);
        }
        static const unsigned min[] = {0, 0x80, 0x800, 0x10000};
        if (v < min[k] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* The documented error: status, {"error": {"code", "message"}} with the
 * message naming what went wrong (on the protocol routes, /v1 and /v2,
 * their {"error": "message"}: no code), and the whole body valid UTF-8 JSON. */
static void check_error_on(const char *path, const char *what, HttpReply *r, int status,
                           const char *code, const char *says)
{
    ck_assert_msg(r->status == status, "%s: status %d, want %d: %.300s", what, r->status, status,
                  r->raw);
    ck_assert_msg(strstr(r->raw, "Content-Type: application/json"), "%s: not JSON: %.300s", what,
                  r->raw);
    ck_assert_msg(utf8_valid((const unsigned char *)r->body, r->body_len),
                  "%s: the body is not UTF-8: %.300s", what, r->body);
    cJSON *j = cJSON_Parse(r->body);
    ck_assert_msg(j != NULL, "%s: not JSON: %.300s", what, r->body);
    cJSON *e = cJSON_GetObjectItem(j, "error");
    bool protocol = !strncmp(path, "/v1/", 4) || !strncmp(path, "/v2/", 4);
    const char *c = protocol ? code : cJSON_GetStringValue(cJSON_GetObjectItem(e, "code"));
    const char *m = protocol ? cJSON_GetStringValue(e)
                             : cJSON_GetStringValue(cJSON_GetObjectItem(e, "message"));
    ck_assert_msg(c && m, "%s: not an error %s: %s", what, protocol ? "string" : "object", r->body);
    ck_assert_msg(!strcmp(c, code), "%s: code %s, want %s (%s)", what, c, code, m);
    ck_assert_msg(strstr(m, says), "%s: message \"%s\" lacks \"%s\"", what, m, says);
    cJSON_Delete(j);
}

static void check_error(const char *what, HttpReply *r, int status, const char *code,
                        const char *says)
{
    check_error_on("/", what, r, status, code, says);
}

/* ---- images ---- */

static Dataset digits;

static const uint8_t *digit(int i, int *label)
{
    MnError err = {0};
    if (!digits.n)
        ck_assert_msg(dataset_load(check_util_data_dir(), "mnist", SPLIT_TEST, &digits, &err) == 0,
                      "%s", err.msg);
    if (label)
        *label = digits.labels[i];
    return digits.images + (size_t)i * 784;
}

typedef struct {
    unsigned char *data;
    size_t len, cap;
} Buf;

static void buf_add(Buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void png_to_buf(png_structp p, png_bytep d, png_size_t n) { buf_add(png_get_io_ptr(p), d, n); }
static void png_flush_none(png_structp p) { (void)p; }

enum { PX_GRAY16, PX_PALETTE, PX_INTERLACED, PX_RGBA, PX_GA16_INTERLACED };

/* A 28x28 digit written by libpng in one of the layouts above. */
static unsigned char *digit_png_as(int kind, int index, size_t *len, int *label)
{
    const uint8_t *px = digit(index, label);
    Buf b = {0};
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    ck_assert(p && info);
    ck_assert_int_eq(setjmp(png_jmpbuf(p)), 0);
    png_set_write_fn(p, &b, png_to_buf, png_flush_none);
    int depth = 8, color = PNG_COLOR_TYPE_GRAY, channels = 1;
    switch (kind) {
    case PX_GRAY16: depth = 16; break;
    case PX_PALETTE: color = PNG_COLOR_TYPE_PALETTE; break;
    case PX_RGBA: color = PNG_COLOR_TYPE_RGBA, channels = 4; break;
    case PX_GA16_INTERLACED: depth = 16, color = PNG_COLOR_TYPE_GRAY_ALPHA, channels = 2; break;
    }
    bool adam7 = kind == PX_INTERLACED || kind == PX_GA16_INTERLACED;
    png_set_IHDR(p, info, 28, 28, depth, color, adam7 ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (kind == PX_PALETTE) {
        png_color pal[256];
        for (int i = 0; i < 256; i++) /* a reversed ramp: index i is gray 255 - i */
            pal[i].red = pal[i].green = pal[i].blue = (png_byte)(255 - i);
        png_set_PLTE(p, info, pal, 256);
    }
    png_write_info(p, info);
    size_t stride = 28 * (size_t)channels * (size_t)depth / 8;
    png_bytep rows[28];
    unsigned char *img = calloc(28, stride);
    for (int y = 0; y < 28; y++) {
        rows[y] = img + y * stride;
        for (int x = 0; x < 28; x++) {
            uint8_t v = px[y * 28 + x];
            unsigned char *o = rows[y] + (size_t)x * channels * (size_t)depth / 8;
            switch (kind) {
            case PX_GRAY16: o[0] = o[1] = v; break;               /* v * 257, big-endian */
            case PX_PALETTE: o[0] = (unsigned char)(255 - v); break; /* dark ink on white */
            case PX_INTERLACED: o[0] = v; break;
            case PX_RGBA: o[0] = o[1] = o[2] = 255, o[3] = v; break; /* white ink, alpha */
            case PX_GA16_INTERLACED: o[0] = o[1] = 255, o[2] = o[3] = v; break;
            }
        }
    }
    png_write_image(p, rows);
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    free(img);
    *len = b.len;
    return b.data;
}

static unsigned char *plain_png(int index, size_t *len, int *label)
{
    uint8_t *png;
    MnError err = {0};
    ck_assert_int_eq(image_encode_png_gray8(digit(index, label), 28, 28, &png, len, &err), 0);
    return png;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void add_chunk(Buf *b, const char *type, const void *data, uint32_t n)
{
    unsigned char head[8], crc[4];
    put_be32(head, n);
    memcpy(head + 4, type, 4);
    buf_add(b, head, 8);
    if (n)
        buf_add(b, data, n);
    uLong c = crc32(0, (const Bytef *)type, 4);
    c = crc32(c, data, n);
    put_be32(crc, (uint32_t)c);
    buf_add(b, crc, 4);
}

/* A PNG of w x h 8-bit gray whose IDAT is the given zlib stream. */
static unsigned char *png_with_idat(uint32_t w, uint32_t h, const void *z, size_t zlen, size_t *len)
{
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    Buf b = {0};
    buf_add(&b, sig, 8);
    unsigned char ihdr[13] = {0};
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = 8; /* depth 8, gray, deflate, no filter, no interlace */
    add_chunk(&b, "IHDR", ihdr, 13);
    add_chunk(&b, "IDAT", z, (uint32_t)zlen);
    add_chunk(&b, "IEND", NULL, 0);
    *len = b.len;
    return b.data;
}

/* A 1x1 PNG whose IDAT inflates to 1 GiB of zeros, a valid zlib stream of
 * about 1 MiB: 1 MiB of zeros deflated after a full flush always gives the
 * same bytes, so that block is written 1023 more times, and the Adler-32 of
 * n zero bytes is (n mod 65521) << 16 | 1. */
static unsigned char *bomb_png(size_t *len)
{
    const size_t chunk = 1 << 20, chunks = 1024;
    unsigned char *zeros = calloc(chunk, 1), *out = malloc(64 << 10);
    z_stream z = {0};
    ck_assert_int_eq(deflateInit(&z, 9), Z_OK);
    Buf s = {0};
    unsigned char *block = NULL;
    size_t block_len = 0;
    for (int k = 0; k < 2; k++) {
        z.next_in = zeros, z.avail_in = (uInt)chunk;
        z.next_out = out, z.avail_out = 64 << 10;
        ck_assert_int_eq(deflate(&z, Z_FULL_FLUSH), Z_OK);
        ck_assert_int_eq(z.avail_in, 0);
        size_t n = (64 << 10) - z.avail_out;
        buf_add(&s, out, n);
        if (k == 1)
            block = out, block_len = n;
    }
    for (size_t k = 2; k < chunks; k++)
        buf_add(&s, block, block_len);
    deflateEnd(&z);
    unsigned char tail[6] = {0x03, 0x00}; /* a last fixed-Huffman block holding only its end */
    put_be32(tail + 2, (uint32_t)((chunk * chunks) % 65521) << 16 | 1);
    buf_add(&s, tail, 6);
    /* the stream is what it claims: 1 GiB of zeros, checksum and all */
    z_stream in = {0};
    ck_assert_int_eq(inflateInit(&in), Z_OK);
    in.next_in = s.data, in.avail_in = (uInt)s.len;
    size_t total = 0;
    int zrc;
    do {
        in.next_out = zeros, in.avail_out = (uInt)chunk;
        zrc = inflate(&in, Z_NO_FLUSH);
        total += chunk - in.avail_out;
    } while (zrc == Z_OK);
    ck_assert_int_eq(zrc, Z_STREAM_END);
    ck_assert_uint_eq(total, chunk * chunks);
    inflateEnd(&in);
    unsigned char *png = png_with_idat(1, 1, s.data, s.len, len);
    free(zeros), free(out), free(s.data);
    return png;
}

/* ---- checks ---- */

#define MULTIPART "multipart/form-data; boundary=XbOuNdArY"

static char *multipart_of(const void *file, size_t len, size_t *out_len)
{
    Buf b = {0};
    const char *head = "--XbOuNdArY\r\nContent-Disposition: form-data; name=\"image\"; "
                       "filename=\"d.png\"\r\nContent-Type: image/png\r\n\r\n";
    buf_add(&b, head, strlen(head));
    buf_add(&b, file, len);
    buf_add(&b, "\r\n--XbOuNdArY--\r\n", 17);
    *out_len = b.len;
    return (char *)b.data;
}

/* The server is up and classifies a digit correctly. */
static void predict_still_works(const char *after)
{
    size_t len, blen;
    int label;
    unsigned char *png = plain_png(3, &len, &label);
    char *body = multipart_of(png, len, &blen);
    HttpReply r = http("POST", "/predict", MULTIPART, NULL, body, blen);
    ck_assert_msg(r.status == 200, "after %s: /predict answered %d: %.300s", after, r.status, r.raw);
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "prediction")->valueint, label);
    cJSON_Delete(j);
    check_http_free(&r);
    free(body);
    free(png);
}

/* One hostile request: how it is sent and what must come back. */
typedef struct {
    const char *what;
    const char *method, *path, *type, *extra;
    unsigned char *body;
    size_t len;
    int status;
    const char *code, *says;
} Case;

static void run_case(const Case *c)
{
    HttpReply r = http(c->method, c->path, c->type, c->extra, c->body, c->len);
    check_error_on(c->path, c->what, &r, c->status, c->code, c->says);
    check_http_free(&r);
}

/* Resident pages of this process (the server runs in it). */
static long rss_kib(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Bytes malloc has handed out and not had back, over every arena. */
static long heap_kib(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

/* Every case once (status, message, a /predict after), then the whole set
 * `rounds` times more: the heap in use and the resident set must end
 * where a warm-up left them, within a margin far below what a leak of one
 * request's body or decode buffers per request would add up to. */
static void run_cases(const Case *cases, int n, int rounds)
{
    for (int i = 0; i < n; i++) {
        run_case(&cases[i]);
        predict_still_works(cases[i].what);
    }
    /* Under ASan or memcheck (make asan and make valgrind set MNISTD_QUICK)
     * the tool finds leaks itself, and every request is many times slower:
     * one round, nothing compared. */
    bool quick = UNDER_ASAN || getenv("MNISTD_QUICK");
    if (quick)
        rounds = 1;
    for (int k = 0; k < (quick ? 1 : 20); k++) /* warm-up: arenas, run pools, MHD's pools */
        for (int i = 0; i < n; i++)
            run_case(&cases[i]);
    malloc_trim(0);
    long heap0 = heap_kib(), rss0 = rss_kib();
    for (int k = 0; k < rounds; k++)
        for (int i = 0; i < n; i++)
            run_case(&cases[i]);
    predict_still_works("the repeats");
    malloc_trim(0);
    long heap1 = heap_kib(), rss1 = rss_kib();
    fprintf(stderr, "%d cases x %d: heap %ld -> %ld KiB, RSS %ld -> %ld KiB%s\n", n, rounds, heap0,
            heap1, rss0, rss1, quick ? " (not compared: the sanitizer or memcheck checks)" : "");
    if (quick)
        return; /* LeakSanitizer or memcheck checks at exit instead */
    /* 1 MiB over `rounds` x n requests: 300 x 8 requests catch anything
     * over ~450 bytes a request in the heap, ~3.5 KiB in the RSS. */
    ck_assert_msg(heap1 - heap0 < 1024, "heap grew from %ld to %ld KiB", heap0, heap1);
    ck_assert_msg(rss1 - rss0 < 8192, "resident set grew from %ld to %ld KiB", rss0, rss1);
}

/* ---- the tests ---- */

/* Broken PNGs are refused with the problem named; valid but unusual ones
 * (16-bit, palette, interlaced, alpha) are read like any other. */
START_TEST(test_png_hostile_and_unusual)
{
    size_t len;
    unsigned char *good = plain_png(0, &len, NULL);
    size_t at = 8; /* the IDAT chunk: its length at `at`, data at at + 8 */
    while (memcmp(good + at + 4, "IDAT", 4))
        at += 12 + ((size_t)good[at] << 24 | good[at + 1] << 16 | good[at + 2] << 8 | good[at + 3]);
    uint32_t idat_len = (uint32_t)good[at] << 24 | good[at + 1] << 16 | good[at + 2] << 8 | good[at + 3];
    unsigned char *bad_crc = malloc(len);
    memcpy(bad_crc, good, len);
    bad_crc[at + 8 + idat_len] ^= 0x55; /* the IDAT's CRC, data untouched */
    unsigned char *bad_ihdr_crc = malloc(len);
    memcpy(bad_ihdr_crc, good, len);
    bad_ihdr_crc[29] ^= 0x01;
    size_t huge_len, bomb_len;
    unsigned char *huge = png_with_idat(100000, 100000, "x\x9c\x03\x00\x00\x00\x00\x01", 8, &huge_len);
    unsigned char *bomb = bomb_png(&bomb_len);
    ck_assert_int_gt(bomb_len, 900 << 10);
    ck_assert_int_lt(bomb_len, 1200 << 10);

    Case cases[] = {
        {"PNG cut in IDAT", "POST", "/predict", "image/png", NULL, good, at + 8 + idat_len / 2, 400,
         "corrupt_file", "runs past the end of the file"},
        {"PNG cut after IHDR", "POST", "/predict", "image/png", NULL, good, 33, 400,
         "corrupt_file", "without an IEND chunk"},
        {"PNG with a bad IDAT CRC", "POST", "/predict", "image/png", NULL, bad_crc, len, 400,
         "corrupt_file", "CRC"},
        {"PNG with a bad IHDR CRC", "POST", "/predict", "image/png", NULL, bad_ihdr_crc, len, 400,
         "corrupt_file", "CRC"},
        {"IHDR of 100000x100000", "POST", "/predict", "image/png", NULL, huge, huge_len, 413,
         "limit_exceeded", "image 100000x100000 exceeds the 4096x4096 limit"},
        /* where the decoder stopped is in the message: the 2 bytes of 1x1
         * (a row of one byte and its filter byte), not a GiB */
        {"1x1 PNG inflating to 1 GiB", "POST", "/predict", "image/png", NULL, bomb, bomb_len, 413,
         "limit_exceeded", "inflates past the 2 bytes its header needs (decompression bomb)"},
        {"empty image/png body", "POST", "/predict", "image/png", NULL, NULL, 0, 400,
         "invalid_argument", "empty"},
        {"GIF as image/png", "POST", "/predict", "image/png", NULL, (unsigned char *)"GIF89a", 6,
         415, "unsupported_media_type", "not a PNG"},
    };
    run_cases(cases, sizeof cases / sizeof *cases, 300);

    static const char *const kinds[] = {"16-bit gray", "palette", "interlaced", "RGBA",
                                        "16-bit gray+alpha interlaced"};
    for (int k = 0; k < 5; k++) {
        int label;
        size_t plen;
        unsigned char *png = digit_png_as(k, 10 + k, &plen, &label);
        HttpReply r = http("POST", "/predict", "image/png", NULL, png, plen);
        ck_assert_msg(r.status == 200, "%s: %d %s", kinds[k], r.status, r.body);
        cJSON *j = cJSON_Parse(r.body);
        ck_assert_int_eq(cJSON_GetObjectItem(j, "prediction")->valueint, label);
        cJSON_Delete(j);
        check_http_free(&r);
        free(png);
    }
    free(good), free(bad_crc), free(bad_ihdr_crc), free(huge), free(bomb);
}
END_TEST

/* A Content-Length over --max-body is answered 413 at once, before any
 * body is sent; and bodies over it, raw or JSON, are 413 too. */
START_TEST(test_body_limits)
{
    int fd = check_http_connect(srv.cfg.port);
    const char *head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                       "Content-Length: 1000000000\r\n\r\n";
    ck_assert_int_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
    HttpReply r = check_http_read(fd); /* no body sent: the answer must come anyway */
    close(fd);
    check_error("Content-Length: 1000000000", &r, 413, "payload_too_large",
                "4194304-byte limit (--max-body)");
    check_http_free(&r);
    predict_still_works("a 1 GB Content-Length");

    size_t big = MAX_BODY + 1;
    unsigned char *json = malloc(big);
    memset(json, ' ', big);
    memcpy(json, "{\"pixels\": [", 12);
    Case cases[] = {
        {"JSON over --max-body", "POST", "/predict", "application/json", NULL, json, big, 413,
         "payload_too_large", "4194304-byte limit"},
        {"a spec over --max-body", "POST", "/train", "application/json",
         "Authorization: Bearer tok\r\n", json, big, 413, "payload_too_large", "4194304-byte limit"},
    };
    run_cases(cases, 2, 20);
    free(json);

    /* Headers share libmicrohttpd's 32 KiB per connection: 20 KB of them
     * pass, 40 KB are answered 431 (by MHD itself, so not in JSON). */
    for (int kb = 20; kb <= 40; kb += 20) {
        char *line = malloc((size_t)kb * 1000 + 16);
        int n = sprintf(line, "X-Big: ");
        memset(line + n, 'a', (size_t)kb * 1000);
        strcpy(line + n + (size_t)kb * 1000, "\r\n");
        r = http("GET", "/v2/health/live", NULL, line, NULL, 0);
        ck_assert_msg(r.status == (kb == 20 ? 200 : 431), "%d KB of headers: %d", kb, r.status);
        check_http_free(&r);
        free(line);
    }
    predict_still_works("40 KB of headers");
}
END_TEST

/* A client trickling a request a byte at a time, faster than the idle
 * timeout, is cut off once --request-timeout passes; others are served
 * meanwhile. */
START_TEST(test_slowloris)
{
    server_stop(&srv);
    setenv("MNISTD_REQUEST_TIMEOUT", "2", 1);
    start_server(NULL, 16, 1);
    unsetenv("MNISTD_REQUEST_TIMEOUT");
    ck_assert_int_eq(srv.cfg.request_timeout, 2);
    int slow[2];
    const char *req = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                      "Content-Length: 100\r\n\r\n";
    for (int s = 0; s < 2; s++)
        slow[s] = check_http_connect(srv.cfg.port);
    /* one trickles its headers, the other its body, a byte per 200 ms */
    ck_assert_int_eq(write(slow[1], req, strlen(req)), (ssize_t)strlen(req));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool cut[2] = {false, false};
    size_t sent[2] = {0, 0};
    for (int tick = 0; tick < 50 && !(cut[0] && cut[1]); tick++) {
        for (int s = 0; s < 2; s++) {
            if (cut[s])
                continue;
            char c = s == 0 ? req[sent[s] % strlen(req)] : 'x';
            if (s == 0 && sent[s] >= strlen(req) - 4)
                c = 'X'; /* headers that never end */
            if (send(slow[s], &c, 1, MSG_NOSIGNAL) != 1) {
                cut[s] = true;
                continue;
            }
            sent[s]++;
            char buf[256];
            ssize_t n = recv(slow[s], buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                cut[s] = true;
        }
        if (tick % 3 == 0) { /* others are served meanwhile */
            HttpReply r = http("GET", "/v2/health/live", NULL, NULL, NULL, 0);
            ck_assert_int_eq(r.status, 200);
            check_http_free(&r);
        }
        usleep(200 * 1000);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_msg(cut[0], "a client trickling headers is still connected after %zu bytes", sent[0]);
    ck_assert_msg(cut[1], "a client trickling a body is still connected after %zu bytes", sent[1]);
    close(slow[0]);
    close(slow[1]);
    predict_still_works("slow clients");
}
END_TEST

/* Multipart bodies that do not hold together are 400, naming the problem. */
START_TEST(test_malformed_multipart)
{
    size_t len, blen;
    unsigned char *png = plain_png(1, &len, NULL);
    char *good = multipart_of(png, len, &blen);
    /* unterminated: the closing boundary never comes */
    size_t cut_len = blen - strlen("\r\n--XbOuNdArY--\r\n");
    char long_type[200];
    snprintf(long_type, sizeof long_type, "multipart/form-data; boundary=%0100d", 7);
    Case cases[] = {
        {"multipart without a boundary", "POST", "/predict", "multipart/form-data", NULL,
         (unsigned char *)good, blen, 400, "invalid_argument", "boundary"},
        {"multipart with an empty boundary", "POST", "/predict", "multipart/form-data; boundary=",
         NULL, (unsigned char *)good, blen, 400, "invalid_argument", "boundary"},
        {"multipart with a boundary over 70 characters", "POST", "/predict", long_type, NULL,
         (unsigned char *)good, blen, 400, "invalid_argument", "boundary"},
        {"multipart with a garbage body", "POST", "/predict", MULTIPART, NULL,
         (unsigned char *)"\x01\x02garbage\xff\xfe--X", 15, 400, "invalid_argument", "multipart"},
        {"multipart with another boundary", "POST", "/predict",
         "multipart/form-data; boundary=Other", NULL, (unsigned char *)good, blen, 400,
         "invalid_argument", "multipart"},
        {"unterminated multipart", "POST", "/predict", MULTIPART, NULL, (unsigned char *)good,
         cut_len, 400, "invalid_argument", "multipart"},
    };
    run_cases(cases, sizeof cases / sizeof *cases, 300);
    free(good);
    free(png);
}
END_TEST

/* JSON nested past any sane depth, and bytes that are not UTF-8, in bodies,
 * query strings and paths: 400 or 404 with a message that is itself UTF-8. */
START_TEST(test_json_and_utf8)
{
    size_t deep_n = 100000;
    unsigned char *deep = malloc(deep_n);
    memset(deep, '[', deep_n);
    char *deep_obj = malloc(deep_n + 16);
    int o = sprintf(deep_obj, "{\"pixels\": ");
    memset(deep_obj + o, '[', deep_n - (size_t)o);
    static const char bad_key[] = "{\"pix\xff\xfels\": [0.5]}";
    static const char bad_str[] = "{\"name\": \"caf\xe9\", \"layers\": []}";
    static const char overlong[] = "{\"pixels\": [0.5], \"\xc0\xaf\": 1}";
    static const char v2_bad[] = "{\"inputs\":[{\"name\":\"\xff\",\"shape\":[1,5],\"datatype\":\"FP32\",\"data\":[1]}]}";
    Case cases[] = {
        {"100000 '[' to /predict", "POST", "/predict", "application/json", NULL, deep, deep_n, 400,
         "invalid_argument", "not valid JSON"},
        {"nested pixels", "POST", "/predict", "application/json", NULL, (unsigned char *)deep_obj,
         deep_n, 400, "invalid_argument", "not valid JSON"},
        {"100000 '[' to /train", "POST", "/train", "application/json", "Authorization: Bearer tok\r\n",
         deep, deep_n, 400, "invalid_argument", "not valid JSON"},
        {"100000 '[' to /backprop", "POST", "/backprop", "application/json", NULL, deep, deep_n,
         400, "invalid_argument", "JSON"},
        {"100000 '[' to TF Serving", "POST", "/v1/models/mnist-cnn:predict", "application/json",
         NULL, deep, deep_n, 400, "invalid_argument", "not valid JSON"},
        {"a key that is not UTF-8", "POST", "/predict", "application/json", NULL,
         (unsigned char *)bad_key, sizeof bad_key - 1, 400, "invalid_argument", "UTF-8"},
        {"Latin-1 in a spec", "POST", "/train", "application/json", "Authorization: Bearer tok\r\n",
         (unsigned char *)bad_str, sizeof bad_str - 1, 400, "invalid_argument", "UTF-8"},
        {"an overlong '/'", "POST", "/predict", "application/json", NULL,
         (unsigned char *)overlong, sizeof overlong - 1, 400, "invalid_argument", "UTF-8"},
        {"a model name that is not UTF-8", "POST", "/predict?model=%FF%FEx", "image/png", NULL,
         (unsigned char *)"x", 1, 404, "not_found", "not found"},
        {"a preprocess that is not UTF-8", "POST", "/predict?preprocess=%C3", "image/png", NULL,
         (unsigned char *)"x", 1, 400, "invalid_argument", "preprocess"},
        {"a path that is not UTF-8", "GET", "/models/%FF%C0%80", NULL, NULL, NULL, 0, 404,
         "not_found", "not found"},
        {"a route that is not UTF-8", "GET", "/x%E2%82", NULL, NULL, NULL, 0, 404, "not_found",
         "no route"},
    };
    run_cases(cases, sizeof cases / sizeof *cases, 150);

    /* the v2 routes answer in their own shape, and as UTF-8 too */
    HttpReply r = http("POST", "/v2/models/mnist-cnn/infer", "application/json", NULL, v2_bad,
                   sizeof v2_bad - 1);
    ck_assert_int_eq(r.status, 400);
    ck_assert(utf8_valid((unsigned char *)r.body, r.body_len));
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_msg(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(j, "error")), "UTF-8"), "%s", r.body);
    cJSON_Delete(j);
    check_http_free(&r);
    r = http("GET", "/v2/models/%FF", NULL, NULL, NULL, 0);
    ck_assert_int_eq(r.status, 404);
    ck_assert_msg(utf8_valid((unsigned char *)r.body, r.body_len), "%s", r.body);
    check_http_free(&r);

    /* the log line of a path with a quote, a newline and a bad byte stays
     * one JSON object: nothing forged, nothing broken */
    char log[4200];
    snprintf(log, sizeof log, "%s/serve.log", store);
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    r = http("GET", "/x%22%0A%7B%22forged%22:1%7D%FF", NULL, NULL, NULL, 0);
    ck_assert_int_eq(r.status, 404);
    check_http_free(&r);
    char *text = NULL;
    for (int i = 0; i < 100 && !(text && strstr(text, "forged")); i++) { /* logged on completion */
        free(text);
        usleep(20 * 1000);
        text = check_util_read_file(log, NULL);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_msg(text && strstr(text, "forged"), "no log line: %s", text ? text : "");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "forged"))
            continue;
        cJSON *l = cJSON_Parse(line);
        ck_assert_msg(l != NULL, "log line is not JSON: %s", line);
        ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(l, "path")),
                         "/x\"\n{\"forged\":1}\xef\xbf\xbd");
        cJSON_Delete(l);
    }
    free(text);
    free(deep);
    free(deep_obj);
}
END_TEST

static int jobs_count_now(void)
{
    HttpReply r = http("GET", "/jobs", NULL, NULL, NULL, 0);
    cJSON *j = cJSON_Parse(r.body);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(j, "jobs"));
    cJSON_Delete(j);
    check_http_free(&r);
    return n;
}

/* {"pixels": [0, ...]} of 784 zeros: a body /predict takes (n bytes). */
static char *zero_pixels(size_t *n)
{
    char *s = malloc(16 + 2 * 784);
    size_t o = (size_t)sprintf(s, "{\"pixels\": [");
    for (int i = 0; i < 784; i++)
        o += (size_t)sprintf(s + o, i ? ",0" : "0");
    o += (size_t)sprintf(s + o, "]}");
    *n = o;
    return s;
}

/* A v2 error: the protocol's {"error": "..."} with status and message. */
static void check_v2_error(const char *what, const char *type, const void *body, size_t len,
                           int status, const char *says)
{
    HttpReply r = http("POST", "/v2/models/mnist-cnn/infer", type, NULL, body, len);
    ck_assert_msg(r.status == status, "%s: status %d, want %d: %.300s", what, r.status, status,
                  r.raw);
    cJSON *j = cJSON_Parse(r.body);
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));
    ck_assert_msg(m && strstr(m, says), "%s: \"%s\" lacks \"%s\"", what, r.body, says);
    cJSON_Delete(j);
    check_http_free(&r);
}

/* Every body parser reads the whole body as its media type says, or
 * refuses it: a NUL or control byte in JSON (cJSON would skip it as white
 * space, and with it what follows), bytes after the document, the binary
 * v2 form's bytes past its tensor, and a Content-Type that is not the
 * route's: 400 or 415, each naming the problem. */
START_TEST(test_embedded_trailing_and_media_types)
{
    size_t n;
    char *px = zero_pixels(&n);
    char *nul = malloc(n + 1), *trailing_nul = malloc(n + 2), *vtab = malloc(n + 1);
    size_t k = (size_t)(strchr(px + n / 2, ',') + 1 - px); /* after a comma: "0,\00" */
    memcpy(nul, px, k);
    nul[k] = '\0';
    memcpy(nul + k + 1, px + k, n - k);
    memcpy(trailing_nul, px, n);
    memcpy(trailing_nul + n, "\0\0", 2);
    memcpy(vtab, px, n);
    vtab[n] = '\v';
    static const char spec[] = "{\"name\":\"t\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"
                               "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],\"epochs\":1}";
    char spec_nul[sizeof spec];
    memcpy(spec_nul, spec, sizeof spec);
    spec_nul[sizeof spec - 3] = '\0'; /* "epochs":\0} */
    static const char bp_nul[] = "{\"x\": [1, 2],\0 \"y\": [1]}";
    static const char tf_nul[] = "{\"instances\": [\0]}";
    static const char b64_nul[] = "{\"instances\": [{\"b64\": \"iVBORw0KGgo=\\u0000junk\"}]}";
    static const char name_nul[] = "{\"name\":\"t\\u0000/../x\",\"layers\":[]}";
    static const char quoted_ok[] = "{\"pixels\": [0.5], \"k\\\\u0000\": 1}"; /* "k\\u0000": no NUL */
    const char *tok = "Authorization: Bearer tok\r\n";
    size_t png_len;
    unsigned char *png = plain_png(0, &png_len, NULL);
    png = realloc(png, png_len + 5);
    memcpy(png + png_len, "junk", 5); /* and its NUL */
    Case cases[] = {
        {"a PNG with bytes after IEND", "POST", "/predict", "image/png", NULL, png, png_len + 5,
         400, "corrupt_file", "5 trailing bytes after the IEND chunk"},
        {"a NUL inside pixels", "POST", "/predict", "application/json", NULL, (unsigned char *)nul,
         n + 1, 400, "invalid_argument", "NUL byte"},
        {"NULs after pixels", "POST", "/predict", "application/json", NULL,
         (unsigned char *)trailing_nul, n + 2, 400, "invalid_argument", "NUL byte"},
        {"a vertical tab after pixels", "POST", "/predict", "application/json", NULL,
         (unsigned char *)vtab, n + 1, 400, "invalid_argument", "control byte"},
        {"pixels as application/jsonp", "POST", "/predict", "application/jsonp", NULL,
         (unsigned char *)px, n, 415, "unsupported_media_type", "application/jsonp"},
        {"a PNG as image/pngx", "POST", "/predict", "image/pngx", NULL, (unsigned char *)"\x89PNG",
         4, 415, "unsupported_media_type", "image/pngx"},
        {"a spec as text/plain", "POST", "/train", "text/plain", tok, (unsigned char *)spec,
         sizeof spec - 1, 415, "unsupported_media_type", "not application/json"},
        {"a spec without a type", "POST", "/train", NULL, tok, (unsigned char *)spec,
         sizeof spec - 1, 415, "unsupported_media_type", "not application/json"},
        {"a NUL in a spec", "POST", "/train", "application/json", tok, (unsigned char *)spec_nul,
         sizeof spec - 1, 400, "invalid_argument", "NUL byte"},
        {"backprop as text/plain", "POST", "/backprop", "text/plain", NULL,
         (unsigned char *)bp_nul, sizeof bp_nul - 1, 415, "unsupported_media_type", "text/plain"},
        {"a NUL in backprop", "POST", "/backprop", "application/json", NULL,
         (unsigned char *)bp_nul, sizeof bp_nul - 1, 400, "invalid_argument", "NUL byte"},
        {"TF Serving as form data", "POST", "/v1/models/mnist-cnn:predict",
         "application/x-www-form-urlencoded", NULL, (unsigned char *)tf_nul, sizeof tf_nul - 1,
         415, "unsupported_media_type", "x-www-form-urlencoded"},
        {"an escaped NUL in base64", "POST", "/v1/models/mnist-cnn:predict", "application/json",
         NULL, (unsigned char *)b64_nul, sizeof b64_nul - 1, 400, "invalid_argument",
         "escaped NUL (\\u0000) at byte 36"},
        {"an escaped NUL in a spec name", "POST", "/train", "application/json", tok,
         (unsigned char *)name_nul, sizeof name_nul - 1, 400, "invalid_argument", "escaped NUL"},
        {"an escaped backslash before u0000", "POST", "/predict", "application/json", NULL,
         (unsigned char *)quoted_ok, sizeof quoted_ok - 1, 400, "invalid_argument",
         "unknown key \"k\\u0000\""},
        {"a NUL in TF Serving", "POST", "/v1/models/mnist-cnn:predict", "application/json", NULL,
         (unsigned char *)tf_nul, sizeof tf_nul - 1, 400, "invalid_argument", "NUL byte"},
    };
    run_cases(cases, sizeof cases / sizeof *cases, 50);
    /* the same 784 zeros, whole, are a good body */
    HttpReply r = http("POST", "/predict", "application/json; charset=utf-8", NULL, px, n);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    check_http_free(&r);

    /* KServe v2: its JSON, and Triton's binary form */
    char v2[2048], bin[512];
    px[n - 2] = '\0'; /* the zeros without "]}" */
    int vlen = snprintf(v2, sizeof v2, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],"
                                       "\"datatype\":\"UINT8\",\"data\":[%s\n]}]}", px + 12);
    char *p = strchr(v2, '\n');
    check_v2_error("v2 as text/plain", "text/plain", v2, (size_t)vlen, 415, "text/plain");
    *p = '\0';
    check_v2_error("a NUL in v2 JSON", "application/json", v2, (size_t)vlen, 400, "NUL byte");
    *p = ' ';
    int hlen = snprintf(bin, sizeof bin, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],"
                                         "\"datatype\":\"UINT8\",\"parameters\":"
                                         "{\"binary_data_size\":784}}]}");
    unsigned char *body = calloc(1, sizeof v2 + 784 + 8);
    memcpy(body, bin, (size_t)hlen);
    char type[160];
    snprintf(type, sizeof type, "application/octet-stream\r\nInference-Header-Content-Length: %d",
             hlen);
    check_v2_error("bytes after a binary tensor", type, body, (size_t)hlen + 784 + 8, 400,
                   "binary_data_size 784 but 792 bytes follow");
    snprintf(type, sizeof type, "image/png\r\nInference-Header-Content-Length: %d", hlen);
    check_v2_error("a binary request as image/png", type, body, (size_t)hlen + 784, 415,
                   "image/png");
    memcpy(body, v2, (size_t)vlen);
    snprintf(type, sizeof type, "application/json\r\nInference-Header-Content-Length: %d", vlen);
    check_v2_error("bytes after JSON data", type, body, (size_t)vlen + 8, 400,
                   "8 bytes follow the JSON header");
    check_v2_error("v2 octet-stream without a header", "application/octet-stream", v2,
                   (size_t)vlen, 415, "application/octet-stream");
    /* and the binary form, exact, answers (no Content-Type: tritonclient's way) */
    memcpy(body, bin, (size_t)hlen);
    snprintf(type, sizeof type, "application/octet-stream\r\nInference-Header-Content-Length: %d",
             hlen);
    r = http("POST", "/v2/models/mnist-cnn/infer", type, NULL, body, (size_t)hlen + 784);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    check_http_free(&r);
    r = http("POST", "/v2/models/mnist-cnn/infer", NULL, NULL, v2, (size_t)vlen);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    check_http_free(&r);
    free(body);
    free(px);
    free(nul);
    free(trailing_nul);
    free(vtab);
    free(png);
}
END_TEST


/* A billion parameters, traversal in model names, and wrong tokens: refused
 * with the documented status, nothing queued, no file touched. */
START_TEST(test_specs_names_and_tokens)
{
    static const char billion[] =
        "{\"name\":\"big\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"
        "{\"type\":\"dense\",\"units\":1275000,\"activation\":\"relu\"},"
        "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}]}";
    static const char wide[] =
        "{\"name\":\"wide\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"
        "{\"type\":\"dense\",\"units\":1000000000}]}";
    static const char sneaky[] =
        "{\"name\":\"../../x\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"flatten\"},"
        "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}]}";
    static const char sneaky_data[] =
        "{\"name\":\"x\",\"dataset\":\"../../etc\",\"layers\":[{\"type\":\"flatten\"},"
        "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}]}";
    char long_name[4200];
    snprintf(long_name, sizeof long_name, "/predict?model=%04000d", 0);
    char long_path[4200];
    snprintf(long_path, sizeof long_path, "/models/%04000d/versions/1", 0);
    char mid_path[400];
    snprintf(mid_path, sizeof mid_path, "/models/%0300d/versions/1", 0);
    const char *tok = "Authorization: Bearer tok\r\n";
    const char *wrong = "Authorization: Bearer tok2\r\n";
    Case cases[] = {
        {"a billion parameters", "POST", "/train", "application/json", tok,
         (unsigned char *)billion, sizeof billion - 1, 422, "limit_exceeded",
         "the model reaches 1000875000 parameters, over the limit of 10000000"},
        {"a billion units", "POST", "/train", "application/json", tok, (unsigned char *)wide,
         sizeof wide - 1, 400, "invalid_argument", "units"},
        {"a spec named ../../x", "POST", "/train", "application/json", tok,
         (unsigned char *)sneaky, sizeof sneaky - 1, 400, "invalid_argument", "name"},
        {"a dataset named ../../etc", "POST", "/train", "application/json", tok,
         (unsigned char *)sneaky_data, sizeof sneaky_data - 1, 400, "invalid_argument", "dataset"},
        {"?model=../../etc/passwd", "POST", "/predict?model=../../etc/passwd", "image/png", NULL,
         (unsigned char *)"x", 1, 404, "not_found", "not found"},
        {"?model= with a NUL", "POST", "/predict?model=mnist-cnn%00/../x", "image/png", NULL,
         (unsigned char *)"x", 1, 400, "invalid_argument", "query argument \"model\" holds a NUL"},
        {"?model= of 4000 characters", "POST", long_name, "image/png", NULL, (unsigned char *)"x",
         1, 404, "not_found", "not found"},
        {"/models/..%2F..%2Fx", "GET", "/models/..%2F..%2Fx", NULL, NULL, NULL, 0, 404,
         "not_found", "GET /models/../../x"},
        {"/models/a%2Fb", "GET", "/models/mnist-cnn%2Fv1.mnm", NULL, NULL, NULL, 0, 404,
         "not_found", "no route"},
        {"/models/.. deleted", "DELETE", "/models/../versions/1", NULL, tok, NULL, 0, 404,
         "not_found", "not found"},
        {"/models/<4000 characters> deleted", "DELETE", long_path, NULL, tok, NULL, 0, 404,
         "not_found", "(a path of 4019 bytes)"},
        {"/models/<300 characters> deleted", "DELETE", mid_path, NULL, tok, NULL, 0, 404,
         "not_found", "not found"},
        {"/models/<300 characters>", "GET", mid_path, NULL, NULL, NULL, 0, 404, "not_found",
         "not found"},
        {"TF Serving ../", "POST", "/v1/models/..%2Fmnist-cnn:predict", "application/json", NULL,
         (unsigned char *)"{}", 2, 404, "not_found", "no route"},
        {"/train without a token", "POST", "/train", "application/json", NULL,
         (unsigned char *)billion, sizeof billion - 1, 401, "unauthorized", "Bearer"},
        {"/train with a wrong token", "POST", "/train", "application/json", wrong,
         (unsigned char *)billion, sizeof billion - 1, 403, "forbidden", "not valid"},
        {"/train with a Basic token", "POST", "/train", "application/json",
         "Authorization: Basic dG9rOg==\r\n", (unsigned char *)billion, sizeof billion - 1, 401,
         "unauthorized", "Bearer"},
        {"/train with an empty token", "POST", "/train", "application/json",
         "Authorization: Bearer \r\n", (unsigned char *)billion, sizeof billion - 1, 403,
         "forbidden", "not valid"},
        {"DELETE a job without a token", "DELETE", "/jobs/1", NULL, NULL, NULL, 0, 401,
         "unauthorized", "Bearer"},
        {"DELETE a job with a wrong token", "DELETE", "/jobs/1", NULL, wrong, NULL, 0, 403,
         "forbidden", "not valid"},
        {"DELETE a model without a token", "DELETE", "/models/mnist-cnn/versions/1", NULL, NULL,
         NULL, 0, 401, "unauthorized", "Bearer"},
        {"DELETE a model with a token prefix", "DELETE", "/models/mnist-cnn/versions/1", NULL,
         "Authorization: Bearer to\r\n", NULL, 0, 403, "forbidden", "not valid"},
    };
    run_cases(cases, sizeof cases / sizeof *cases, 100);
    ck_assert_int_eq(jobs_count_now(), 0); /* nothing was queued */
    char path[4200];
    snprintf(path, sizeof path, "%s/mnist-cnn/v1.mnm", store);
    ck_assert_int_eq(access(path, F_OK), 0); /* nor deleted */
    /* the scheme is case-insensitive (RFC 9110) */
    HttpReply r = http("DELETE", "/jobs/77", NULL, "Authorization: bearer tok\r\n", NULL, 0);
    check_error("bearer in lower case", &r, 404, "not_found", "job 77");
    check_http_free(&r);
}
END_TEST

static const char *const LONG_SPEC =
    "{\"name\":\"long\",\"dataset\":\"mnist\",\"layers\":[{\"type\":\"conv2d\","
    "\"filters\":32,\"kernel_size\":3,\"activation\":\"relu\"},{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":10,\"activation\":\"softmax\"}],\"epochs\":50}";

/* A full queue answers 503 with Retry-After (openapi.yaml), every time,
 * and queues nothing more. */
START_TEST(test_queue_full)
{
    server_stop(&srv);
    start_server("tok", 1, 0);
    const char *tok = "Authorization: Bearer tok\r\n";
    for (int i = 0; i < 2; i++) { /* one runs, one waits: the queue of one is full */
        HttpReply r = http("POST", "/train", "application/json", tok, LONG_SPEC, strlen(LONG_SPEC));
        ck_assert_msg(r.status == 202, "%d %s", r.status, r.body);
        check_http_free(&r);
        /* the first leaves the queue, and its datasets are loaded by its
         * first batch: the heap is steady from then on */
        for (int t = 0; i == 0 && t < 200; t++) {
            r = http("GET", "/jobs/1", NULL, NULL, NULL, 0);
            cJSON *j = cJSON_Parse(r.body);
            check_http_free(&r);
            bool training = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "batch")) >= 1;
            cJSON_Delete(j);
            if (training)
                break;
            usleep(50 * 1000);
        }
    }
    Case cases[] = {
        {"a job over a full queue", "POST", "/train", "application/json", tok,
         (unsigned char *)LONG_SPEC, strlen(LONG_SPEC), 503, "queue_full", "queue"},
    };
    run_cases(cases, 1, 200);
    HttpReply r = http("POST", "/train", "application/json", tok, LONG_SPEC, strlen(LONG_SPEC));
    ck_assert_ptr_nonnull(strstr(r.raw, "Retry-After: "));
    check_http_free(&r);
    ck_assert_int_eq(jobs_count_now(), 2);
    for (int id = 1; id <= 2; id++) { /* cancel both, so the teardown is quick */
        char path[32];
        snprintf(path, sizeof path, "/jobs/%d", id);
        r = http("DELETE", path, NULL, tok, NULL, 0);
        ck_assert_int_eq(r.status, 200);
        check_http_free(&r);
    }
}
END_TEST

/* A log collector that stops reading: stderr is a pipe nobody reads. Every
 * request is still answered; the lines that fit neither the pipe nor the
 * --log-buffer are dropped and counted in /metrics, and the count is
 * logged once the pipe is read again. */
START_TEST(test_stalled_log_reader)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    server_stop(&srv);
    fflush(stderr);
    int saved = dup(2);
    dup2(p[1], 2);
    close(p[1]);
    setenv("MNISTD_LOG_BUFFER", "4096", 1);
    start_server("tok", 16, 0);
    unsetenv("MNISTD_LOG_BUFFER");
    ck_assert_int_eq(srv.cfg.log_buffer, 4096);
    enum { REQUESTS = 2000 }; /* 80 bytes a line: 160 KB, the pipe holds 64 KiB */
    for (int i = 0; i < REQUESTS; i++) {
        HttpReply r = http("GET", "/v2/health/live", NULL, NULL, NULL, 0);
        ck_assert_int_eq(r.status, 200);
        check_http_free(&r);
    }
    HttpReply r = http("GET", "/metrics", NULL, NULL, NULL, 0);
    ck_assert_int_eq(r.status, 200);
    const char *at = strstr(r.body, "\nmnistd_log_lines_dropped_total ");
    ck_assert_msg(at != NULL, "%s", r.body);
    long dropped = atol(at + strlen("\nmnistd_log_lines_dropped_total "));
    ck_assert_int_gt(dropped, 0);
    ck_assert_int_lt(dropped, REQUESTS);
    check_http_free(&r);

    CheckPipe *reader = check_pipe_start(p[0]);
    for (int i = 0; i < 250 && !check_pipe_has(reader, "\"dropped\":"); i++)
        usleep(20 * 1000);
    fflush(stderr);
    dup2(saved, 2); /* the pipe's last writer: the reader sees its end */
    close(saved);
    char *text = check_pipe_finish(reader);
    ck_assert_msg(*text != '\0', "nothing was logged");
    long reported = 0, requests = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        ck_assert_msg(j != NULL, "not a whole JSON line: %.200s", line);
        cJSON *d = cJSON_GetObjectItem(j, "dropped");
        if (d)
            reported += (long)d->valuedouble;
        requests += cJSON_GetObjectItem(j, "path") != NULL;
        cJSON_Delete(j);
    }
    ck_assert_int_ge(reported, dropped); /* the /metrics line itself may be dropped too */
    ck_assert_int_gt(requests, 0);
    free(text);
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("Hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_png_hostile_and_unusual);
    tcase_add_test(tc, test_body_limits);
    tcase_add_test(tc, test_slowloris);
    tcase_add_test(tc, test_malformed_multipart);
    tcase_add_test(tc, test_json_and_utf8);
    tcase_add_test(tc, test_embedded_trailing_and_media_types);
    tcase_add_test(tc, test_specs_names_and_tokens);
    tcase_add_test(tc, test_stalled_log_reader);
    suite_add_tcase(s, tc);
    /* Apart: its jobs load a dataset and train, which memcheck makes take
     * minutes (make valgrind runs the Hostile case only). */
    TCase *queue = tcase_create("Queue");
    tcase_add_checked_fixture(queue, setup, teardown);
    tcase_set_timeout(queue, 120);
    tcase_add_test(queue, test_queue_full);
    suite_add_tcase(s, queue);
    return s;
}

MN_TEST_MAIN(hostile_suite)
