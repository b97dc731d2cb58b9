/* fuzz_content_coding.c - libFuzzer target: a request body in a content
 * coding as http.c inflates it (content_coding_inflate, under a small
 * limit so that bombs are met), and an Accept-Encoding value as
 * respond.c reads it. The first byte picks the coding (gzip, deflate) and
 * whether the rest is also read as an Accept-Encoding header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "content_coding.h"

#define FUZZ_BODY_LIMIT (1 << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ContentCoding coding = data[0] & 1 ? CODING_DEFLATE : CODING_GZIP;
    char *out = NULL;
    size_t n = 0;
    MnError err = {0};
    if (content_coding_inflate(coding, data + 1, size - 1, FUZZ_BODY_LIMIT, &out, &n, &err) == 0) {
        if (n > FUZZ_BODY_LIMIT || out[n] != '\0')
            abort();
        free(out);
    } else if (out || !err.msg[0]) {
        abort(); /* a refusal leaves nothing behind and says why */
    }
    if (data[0] & 2) {
        char *header = malloc(size);
        memcpy(header, data + 1, size - 1);
        header[size - 1] = '\0';
        ContentCoding c = content_coding_accepted(header);
        if (c != CODING_IDENTITY && c != CODING_GZIP && c != CODING_DEFLATE)
            abort();
        free(header);
    }
    return 0;
}
