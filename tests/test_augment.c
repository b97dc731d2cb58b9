/* test_augment.c - the augmentation layers (core/augment.c): each transform
 * on small images against values worked out by hand, the identity at
 * inference, one seed one result, spec refusals that name the key, and
 * the summary. Their backward passes are checked against central
 * differences in test_grad.c; the same weights on one thread and two in
 * test_model.c (its lanes tests). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "layer.h"
#include "model.h"
#include "spec.h"

/* A layer from its spec object, built for one sample of shape in. */
static void layer_from_json(const char *json, Shape in, Layer *l)
{
    cJSON *obj = cJSON_Parse(json);
    ck_assert_msg(obj != NULL, "bad test JSON: %s", json);
    int type = layer_type_from_name(cJSON_GetObjectItem(obj, "type")->valuestring);
    ck_assert_int_ge(type, 0);
    memset(l, 0, sizeof *l);
    l->type = (LayerType)type;
    const LayerOps *ops = layer_ops(l->type);
    MnError err = {0};
    ck_assert_msg(ops->parse(l, obj, "layers[0]", &err) == 0, "%s: %s", json, err.msg);
    l->in = in;
    ck_assert_msg(ops->build(l, &in, 1, &err) == 0, "%s: %s", json, err.msg);
    cJSON_Delete(obj);
}

/* y = the layer's forward over batch samples of x, its Rng seeded with seed. */
static void apply(const Layer *l, const float *x, float *y, int batch, bool training,
                  uint64_t seed)
{
    void *aux = calloc(layer_ops(l->type)->aux(l, batch), 1);
    Rng rng;
    rng_seed(&rng, seed);
    LayerRun run = {.batch = batch, .training = training, .aux = aux, .rng = &rng};
    layer_ops(l->type)->forward(l, NULL, x, y, &run);
    free(aux);
}

static void assert_floats(const float *got, const float *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s: [%d] is %g, want %g", what, i, got[i], want[i]);
}

/* ---- each transform, worked out by hand ---- */

/* The layer spec'd by json, in training on one sample x of shape in, gives want. */
static void check_by_hand(const char *json, Shape in, const float *x, const float *want)
{
    float y[32];
    int n = (int)shape_numel(in);
    ck_assert_int_le(n, 32);
    Layer l;
    layer_from_json(json, in, &l);
    apply(&l, x, y, 1, true, 1);
    assert_floats(y, want, n, json);
}

/* A 1x4 row [1 2 3 4] shifted along its width by whole or half pixels. */
static const struct {
    const char *json;
    float want[4];
} shifts[] = {
    {"{\"type\":\"random_translation\",\"height_factor\":0,\"width_factor\":[0.25,0.25],"
     "\"fill_mode\":\"constant\",\"fill_value\":9}", {9, 1, 2, 3}},
    {"{\"type\":\"random_translation\",\"height_factor\":0,\"width_factor\":[0.5,0.5],"
     "\"fill_mode\":\"nearest\"}", {1, 1, 1, 2}},
    {"{\"type\":\"random_translation\",\"height_factor\":0,\"width_factor\":[0.5,0.5]}",
     {2, 1, 1, 2}}, /* reflect, Keras's default: d c b a | a b c d */
    {"{\"type\":\"random_translation\",\"height_factor\":0,\"width_factor\":[-0.25,-0.25],"
     "\"fill_mode\":\"reflect\"}", {2, 3, 4, 4}},
    {"{\"type\":\"random_translation\",\"height_factor\":0,\"width_factor\":[0.25,0.25],"
     "\"fill_mode\":\"wrap\"}", {4, 1, 2, 3}},
    {"{\"type\":\"random_translation\",\"height_factor\":0,\"width_factor\":[0.125,0.125],"
     "\"fill_mode\":\"constant\"}", {0.5f, 1.5f, 2.5f, 3.5f}}, /* half a pixel, bilinear */
    {"{\"type\":\"random_translation\",\"height_factor\":0,\"width_factor\":[0.125,0.125],"
     "\"fill_mode\":\"constant\",\"interpolation\":\"nearest\"}", {0, 2, 3, 4}}, /* ties away from 0 */
};

START_TEST(test_translation_along_a_row)
{
    const float row[4] = {1, 2, 3, 4};
    check_by_hand(shifts[_i].json, shape_make(1, 4, 1), row, shifts[_i].want);
}
END_TEST

/* Down by exactly one pixel, "constant": the top row is the fill. */
START_TEST(test_translation_one_pixel_down)
{
    float x[16], want[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i + 1);
    for (int i = 0; i < 16; i++)
        want[i] = i < 4 ? 0.0f : x[i - 4];
    check_by_hand("{\"type\":\"random_translation\",\"height_factor\":[0.25,0.25],"
                  "\"width_factor\":0,\"fill_mode\":\"constant\"}",
                  shape_make(4, 4, 1), x, want);
}
END_TEST

/* A quarter turn with nearest interpolation: positive is counter-clockwise. */
START_TEST(test_rotation_quarter_turn)
{
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float ccw[9] = {3, 6, 9, 2, 5, 8, 1, 4, 7}, cw[9] = {7, 4, 1, 8, 5, 2, 9, 6, 3};
    check_by_hand("{\"type\":\"random_rotation\",\"factor\":[0.25,0.25],"
                  "\"interpolation\":\"nearest\"}",
                  shape_make(3, 3, 1), x, ccw);
    check_by_hand("{\"type\":\"random_rotation\",\"factor\":[-0.25,-0.25],"
                  "\"interpolation\":\"nearest\"}",
                  shape_make(3, 3, 1), x, cw);
}
END_TEST

/* On a 5x5 image whose pixels hold their column: a negative factor zooms
 * in (width follows height when width_factor is absent), a positive one
 * zooms out, as Keras documents. */
START_TEST(test_zoom_in_and_out)
{
    float x[25], zoomed_in[25], zoomed_out[25];
    const float in_row[5] = {1, 1.5f, 2, 2.5f, 3}, out_row[5] = {-1, 0, 2, 4, -1};
    for (int i = 0; i < 25; i++) {
        int r = i / 5, c = i % 5;
        x[i] = (float)c;
        zoomed_in[i] = in_row[c];
        zoomed_out[i] = r == 0 || r == 4 ? -1.0f : out_row[c]; /* rows 0 and 4: the fill */
    }
    check_by_hand("{\"type\":\"random_zoom\",\"height_factor\":[-0.5,-0.5]}", shape_make(5, 5, 1),
                  x, zoomed_in);
    check_by_hand("{\"type\":\"random_zoom\",\"height_factor\":[1,1],\"width_factor\":[1,1],"
                  "\"fill_mode\":\"constant\",\"fill_value\":-1,\"interpolation\":\"nearest\"}",
                  shape_make(5, 5, 1), x, zoomed_out);
}
END_TEST

/* 2x3 with two channels. Each sample of a batch of one image is either
 * the image or its mirror, and in 16 samples both happen. */
START_TEST(test_flip_modes)
{
    enum { N = 16, PER = 12 };
    float x[N * PER], y[N * PER];
    for (int i = 0; i < N * PER; i++)
        x[i] = (float)(i % PER);
    float h[PER], v[PER], hv[PER]; /* the mirrors, NHWC: (r * 3 + c) * 2 + ch */
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++)
            for (int ch = 0; ch < 2; ch++) {
                int at = (r * 3 + c) * 2 + ch;
                h[at] = x[(r * 3 + 2 - c) * 2 + ch];
                v[at] = x[((1 - r) * 3 + c) * 2 + ch];
                hv[at] = x[((1 - r) * 3 + 2 - c) * 2 + ch];
            }
    const char *modes[] = {"horizontal", "vertical", "horizontal_and_vertical"};
    const float *mirrors[3][3] = {{h, NULL, NULL}, {v, NULL, NULL}, {h, v, hv}};
    for (int m = 0; m < 3; m++) {
        char json[96];
        snprintf(json, sizeof json, "{\"type\":\"random_flip\",\"mode\":\"%s\"}", modes[m]);
        Layer l;
        layer_from_json(json, shape_make(2, 3, 2), &l);
        apply(&l, x, y, N, true, 11);
        int seen[4] = {0};
        for (int s = 0; s < N; s++) {
            int which = memcmp(y + s * PER, x, sizeof h) == 0 ? 0 : -1;
            for (int k = 0; k < 3 && which < 0; k++)
                if (mirrors[m][k] && memcmp(y + s * PER, mirrors[m][k], sizeof h) == 0)
                    which = k + 1;
            ck_assert_msg(which >= 0, "%s: sample %d is neither the image nor a mirror", json, s);
            seen[which]++;
        }
        for (int k = 0; k < 4; k++)
            ck_assert_msg(seen[k] > 0 || (k > 0 && !mirrors[m][k - 1]),
                          "%s: variant %d never drawn in %d samples", json, k, N);
    }
    Layer l;
    layer_from_json("{\"type\":\"random_flip\"}", shape_make(2, 3, 2), &l);
    ck_assert(l.cfg.augment.flip_h && l.cfg.augment.flip_v); /* Keras's default mode */
}
END_TEST

/* ---- training only, deterministic ---- */

static const char *const wide_layers[] = {
    "{\"type\":\"random_translation\",\"height_factor\":0.4,\"width_factor\":0.4}",
    "{\"type\":\"random_rotation\",\"factor\":0.3,\"fill_mode\":\"wrap\"}",
    "{\"type\":\"random_zoom\",\"height_factor\":0.5,\"width_factor\":[-0.5,0.2],"
    "\"fill_mode\":\"constant\"}",
    "{\"type\":\"random_flip\"}",
};

static void random_image(float *x, size_t n, uint64_t seed)
{
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = rng_uniform(&rng);
}

START_TEST(test_identity_at_inference)
{
    enum { N = 3, PER = 6 * 5 * 2 };
    float x[N * PER], y[N * PER], dx[N * PER];
    random_image(x, N * PER, 5);
    Layer l;
    layer_from_json(wide_layers[_i], shape_make(6, 5, 2), &l);
    LayerRun run = {.batch = N, .training = false};
    layer_ops(l.type)->forward(&l, NULL, x, y, &run);
    ck_assert_msg(memcmp(x, y, sizeof x) == 0, "%s changed its input at inference", wide_layers[_i]);
    layer_ops(l.type)->backward(&l, NULL, NULL, x, y, x, dx, &run);
    ck_assert_msg(memcmp(x, dx, sizeof x) == 0, "%s: inference backward is not dy", wide_layers[_i]);
}
END_TEST

/* The same seed draws the same transforms; another seed others; and two
 * copies of one image in a batch get transforms of their own. */
START_TEST(test_deterministic_per_seed)
{
    enum { N = 4, PER = 7 * 7 * 1 };
    float x[N * PER], a[N * PER], b[N * PER], c[N * PER];
    random_image(x, PER, 9);
    for (int s = 1; s < N; s++)
        memcpy(x + s * PER, x, PER * sizeof *x);
    Layer l;
    layer_from_json(wide_layers[_i], shape_make(7, 7, 1), &l);
    apply(&l, x, a, N, true, 21);
    apply(&l, x, b, N, true, 21);
    apply(&l, x, c, N, true, 22);
    ck_assert_msg(memcmp(a, b, sizeof a) == 0, "%s: one seed, two results", wide_layers[_i]);
    ck_assert_msg(memcmp(a, c, sizeof a) != 0, "%s: two seeds, one result", wide_layers[_i]);
    bool differ = false;
    for (int s = 1; s < N; s++)
        differ |= memcmp(a, a + s * PER, PER * sizeof *a) != 0;
    ck_assert_msg(differ, "%s: every sample got the same transform", wide_layers[_i]);
}
END_TEST

/* ---- specs ---- */

static const struct {
    const char *layer, *names;
} refusals[] = {
    {"{\"type\":\"random_translation\",\"height_factor\":1.5,\"width_factor\":0}", "height_factor"},
    {"{\"type\":\"random_translation\",\"height_factor\":0.1}", "width_factor"},
    {"{\"type\":\"random_translation\",\"height_factor\":[0.1],\"width_factor\":0}",
     "height_factor"},
    {"{\"type\":\"random_rotation\",\"factor\":[0.3,0.1]}", "factor"},
    {"{\"type\":\"random_rotation\",\"factor\":-2}", "factor"},
    {"{\"type\":\"random_rotation\"}", "factor"},
    {"{\"type\":\"random_zoom\",\"height_factor\":0.1,\"width_factor\":\"wide\"}", "width_factor"},
    {"{\"type\":\"random_zoom\",\"height_factor\":0.1,\"fill_mode\":\"mirror\"}", "fill_mode"},
    {"{\"type\":\"random_zoom\",\"height_factor\":0.1,\"interpolation\":\"bicubic\"}",
     "interpolation"},
    {"{\"type\":\"random_rotation\",\"factor\":0.1,\"fill_value\":\"black\"}", "fill_value"},
    {"{\"type\":\"random_flip\",\"mode\":\"diagonal\"}", "mode"},
    {"{\"type\":\"random_flip\",\"factor\":0.5}", "factor"},
};

START_TEST(test_spec_refusals_name_the_key)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"name\":\"r\",\"input_shape\":[4,4,1],\"layers\":[%s,{\"type\":\"flatten\"},"
             "{\"type\":\"dense\",\"units\":2,\"activation\":\"softmax\"}]}",
             refusals[_i].layer);
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec s;
    MnError err = {0};
    ck_assert_msg(spec_parse(json, strlen(json), &lim, &s, &err) != 0, "accepted %s",
                  refusals[_i].layer);
    ck_assert_msg(strstr(err.msg, refusals[_i].names) && strstr(err.msg, "layers[0]"),
                  "%s: \"%s\" names neither %s nor the layer", refusals[_i].layer, err.msg,
                  refusals[_i].names);
}
END_TEST

/* Keras's class names with 0 parameters, and a written spec parses back
 * to the same layers (defaults written out). */
START_TEST(test_summary_and_round_trip)
{
    Model *m = check_util_build_model(
        "{\"name\":\"a\",\"input_shape\":[8,8,1],\"layers\":["
        "{\"type\":\"random_translation\",\"height_factor\":0.2,\"width_factor\":[-0.1,0.3]},"
        "{\"type\":\"RandomZoom\",\"height_factor\":0.2,\"fill_mode\":\"constant\"},"
        "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":3,\"activation\":\"relu\"},"
        "{\"type\":\"random_rotation\",\"factor\":0.1,\"interpolation\":\"nearest\"},"
        "{\"type\":\"random_flip\",\"mode\":\"vertical\"},"
        "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":2,\"activation\":\"softmax\"}]}");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    model_summary(m, f);
    fclose(f);
    const char *classes[] = {"random_translation (RandomTranslation)", "random_zoom (RandomZoom)",
                             "random_rotation (RandomRotation)", "random_flip (RandomFlip)"};
    for (int i = 0; i < 4; i++) {
        const char *line = strstr(text, classes[i]);
        ck_assert_msg(line, "summary lacks %s:\n%s", classes[i], text);
        const char *end = strchr(line, '\n');
        ck_assert_msg(end - line > 2 && end[-1] == '0' && end[-2] == ' ', "not 0 params: %.*s",
                      (int)(end - line), line);
    }
    free(text);

    cJSON *written = spec_to_json(&m->spec);
    char *once = cJSON_PrintUnformatted(written);
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec again;
    MnError err = {0};
    ck_assert_msg(spec_parse(once, strlen(once), &lim, &again, &err) == 0, "%s: %s", once, err.msg);
    cJSON *rewritten = spec_to_json(&again);
    char *twice = cJSON_PrintUnformatted(rewritten);
    ck_assert_str_eq(once, twice);
    ck_assert_msg(strstr(once, "\"fill_mode\":\"reflect\"") &&
                      strstr(once, "\"interpolation\":\"bilinear\""),
                  "Keras's defaults not written: %s", once);
    for (int i = 0; i < m->spec.n_layers; i++)
        if (strncmp(layer_ops(again.layers[i].type)->name, "random_", 7) == 0)
            ck_assert_msg(memcmp(&m->spec.layers[i].cfg.augment, &again.layers[i].cfg.augment,
                                 sizeof again.layers[i].cfg.augment) == 0,
                          "layer %d parsed back to another config", i);
    free(once), free(twice);
    cJSON_Delete(written), cJSON_Delete(rewritten);
    model_free(m);
}
END_TEST

static Suite *augment_suite(void)
{
    Suite *s = suite_create("augment");
    TCase *tc = tcase_create("Transforms");
    tcase_add_loop_test(tc, test_translation_along_a_row, 0, sizeof shifts / sizeof *shifts);
    tcase_add_test(tc, test_translation_one_pixel_down);
    tcase_add_test(tc, test_rotation_quarter_turn);
    tcase_add_test(tc, test_zoom_in_and_out);
    tcase_add_test(tc, test_flip_modes);
    tcase_add_loop_test(tc, test_identity_at_inference, 0, sizeof wide_layers / sizeof *wide_layers);
    tcase_add_loop_test(tc, test_deterministic_per_seed, 0, sizeof wide_layers / sizeof *wide_layers);
    suite_add_tcase(s, tc);
    TCase *spec = tcase_create("Specs");
    tcase_add_loop_test(spec, test_spec_refusals_name_the_key, 0,
                        sizeof refusals / sizeof *refusals);
    tcase_add_test(spec, test_summary_and_round_trip);
    suite_add_tcase(s, spec);
    return s;
}

MN_TEST_MAIN(augment_suite)
