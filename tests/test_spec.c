/* test_spec.c - the spec parser's strictness, and the seed specs in specs/:
 * each parses, builds, and has the notebook's parameter count; and the
 * JSON helpers' text for floats. */
#include <cJSON.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "json.h"
#include "model.h"
#include "spec.h"

static const char *const ISSUE_SPEC =
    "{\"name\": \"fashion-mlp64\", \"dataset\": \"fashion-mnist\","
    " \"layers\": [{\"type\": \"flatten\"}, {\"type\": \"dense\", \"units\": 64, \"activation\": \"relu\"},"
    "            {\"type\": \"dense\", \"units\": 10, \"activation\": \"softmax\"}],"
    " \"loss\": \"categorical_crossentropy\", \"optimizer\": {\"type\": \"adam\", \"learning_rate\": 0.001},"
    " \"epochs\": 10, \"batch_size\": 32, \"validation_split\": 0.1,"
    " \"early_stopping\": {\"monitor\": \"val_loss\", \"patience\": 2, \"restore_best\": true},"
    " \"preprocess\": \"scale\", \"seed\": 1151998}";

static int parse(const char *json, ModelSpec *s, MnError *err)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    memset(err, 0, sizeof *err);
    return spec_parse(json, strlen(json), &lim, s, err);
}

/* Parses and builds; returns the code and leaves the message in err. */
static int parse_build(const char *json, MnError *err)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    ModelSpec s;
    int rc = parse(json, &s, err);
    if (rc)
        return rc;
    Model *m = NULL;
    rc = model_build(&s, &lim, &m, err);
    model_free(m);
    return rc;
}

START_TEST(test_issue_spec_parses)
{
    ModelSpec s;
    MnError err;
    ck_assert_int_eq(parse(ISSUE_SPEC, &s, &err), 0);
    ck_assert_str_eq(s.name, "fashion-mlp64");
    ck_assert_str_eq(s.dataset, "fashion-mnist");
    ck_assert_int_eq(s.n_layers, 3);
    ck_assert_int_eq(s.layers[1].type, LAYER_DENSE);
    ck_assert_int_eq(s.layers[1].cfg.dense.units, 64);
    ck_assert_int_eq(s.layers[1].act, ACT_RELU);
    ck_assert_int_eq(s.layers[2].act, ACT_SOFTMAX);
    ck_assert_int_eq(s.optim.type, OPT_ADAM);
    ck_assert_float_eq_tol(s.optim.learning_rate, 0.001f, 1e-9f);
    ck_assert_float_eq_tol(s.optim.epsilon, 1e-7f, 1e-12f);
    ck_assert_int_eq(s.epochs, 10);
    ck_assert_int_eq(s.batch_size, 32);
    ck_assert_float_eq_tol(s.validation_split, 0.1f, 1e-7f);
    ck_assert(s.early_stopping.enabled);
    ck_assert(s.early_stopping.monitor_validation);
    ck_assert(!s.early_stopping.monitor_accuracy);
    ck_assert_int_eq(s.early_stopping.patience, 2);
    ck_assert(s.early_stopping.restore_best);
    ck_assert_int_eq(s.preprocess, INPUT_SCALE);
    ck_assert_uint_eq(s.seed, 1151998);
    ck_assert_int_eq(parse_build(ISSUE_SPEC, &err), 0);
}
END_TEST

/* Each bad spec must be refused with the given code and a message naming the key. */
/* The start and end of a small layer graph, for the cases below. */
#define GRAPH_HEAD "{\"name\":\"g\",\"input_shape\":[6,6,1],\"layers\":[" \
    "{\"type\":\"conv2d\",\"name\":\"a\",\"filters\":2,\"kernel_size\":3,\"padding\":\"same\"},"
#define GRAPH_TAIL "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":3}]}"
static const struct {
    const char *json;
    int code;
    const char *says;
} bad_specs[] = {
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}]} x",
     MN_EINVAL, "trailing bytes"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":16.5}]}",
     MN_EINVAL, "layers[1].units must be an integer"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}],"
     "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":NaN}}",
     MN_EINVAL, "not valid JSON"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}],"
     "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":1e999}}",
     MN_EINVAL, "optimizer.learning_rate"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}],"
     "\"epochs\":\"10\"}",
     MN_EINVAL, "epochs must be an integer"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}],"
     "\"epochs\":0}",
     MN_EINVAL, "epochs must be between 1"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}],"
     "\"learning_rate\":0.1}",
     MN_EINVAL, "unknown key \"learning_rate\""},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10,"
     "\"activaton\":\"relu\"}]}",
     MN_EINVAL, "layers[1]: unknown key \"activaton\""},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10,"
     "\"activation\":\"mish\"}]}",
     MN_EINVAL, "layers[1].activation: unknown value \"mish\""},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"lstm\",\"units\":10}]}", MN_ESPEC,
     "unknown layer type \"lstm\""},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"dense\"}]}", MN_EINVAL, "missing key \"units\""},
    {"{\"name\":\"../etc\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "name"},
    {"{\"name\":\"a\",\"layers\":[]}", MN_EINVAL, "layers must be a non-empty array"},
    {"[1, 2]", MN_EINVAL, "must be a JSON object"},
    {"{\"name\":\"a\",\"name\":\"b\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "duplicate key \"name\""},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}],"
     "\"early_stopping\":{\"monitor\":\"val_loss\"}}",
     MN_EINVAL, "no validation data"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":[3,3,3]}]}",
     MN_EINVAL, "layers[0].kernel_size"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dropout\",\"rate\":1.5}]}",
     MN_EINVAL, "layers[1].rate"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}],"
     "\"optimizer\":{\"type\":\"sgd\",\"beta_1\":0.9}}",
     MN_EINVAL, "belong to adam"},
    /* a layer graph's mistakes, naming the layer and its name */
    {GRAPH_HEAD "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":3,\"padding\":\"same\"},"
     "{\"type\":\"add\",\"name\":\"res1\",\"inputs\":[\"a\",\"b\"]}," GRAPH_TAIL,
     MN_ESPEC, "layer 2 (add, \"res1\"): input \"b\" is no layer's name"},
    {GRAPH_HEAD "{\"type\":\"conv2d\",\"name\":\"a\",\"filters\":2,\"kernel_size\":3},"
     "{\"type\":\"add\",\"inputs\":[\"a\",\"a\"]}," GRAPH_TAIL,
     MN_ESPEC, "layer 1 (conv2d, \"a\"): its name is also layer 0's"},
    {GRAPH_HEAD "{\"type\":\"conv2d\",\"name\":\"b\",\"filters\":2,\"kernel_size\":3},"
     "{\"type\":\"add\",\"name\":\"res1\",\"inputs\":[\"a\",\"b\"]}," GRAPH_TAIL,
     MN_ESPEC, "layer 2 (add, \"res1\"): inputs of different shapes: input 0 is 6x6x2, input 1 4x4x2"},
    {GRAPH_HEAD "{\"type\":\"conv2d\",\"name\":\"b\",\"filters\":2,\"kernel_size\":3,"
     "\"padding\":\"same\",\"inputs\":[\"res1\"]},"
     "{\"type\":\"add\",\"name\":\"res1\",\"inputs\":[\"a\",\"b\"]}," GRAPH_TAIL,
     MN_ESPEC, "layer 1 (conv2d, \"b\"): input \"res1\" comes after it"},
    {GRAPH_HEAD "{\"type\":\"add\",\"name\":\"res1\",\"inputs\":[\"a\",\"res1\"]}," GRAPH_TAIL,
     MN_ESPEC, "layer 1 (add, \"res1\"): input \"res1\" is the layer itself"},
    {GRAPH_HEAD "{\"type\":\"add\"}," GRAPH_TAIL,
     MN_ESPEC, "layer 1 (add, \"add\"): takes 2 to 8 inputs, got 1: name them with \"inputs\""},
    {GRAPH_HEAD "{\"type\":\"flatten\",\"inputs\":[\"a\",\"input\"]},{\"type\":\"dense\",\"units\":3}]}",
     MN_ESPEC, "layer 1 (flatten, \"flatten\"): takes 1 input, got 2"},
    {GRAPH_HEAD "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":3,\"inputs\":[\"input\"]},"
     GRAPH_TAIL, MN_ESPEC, "layer 0 (conv2d, \"a\"): no layer reads its output"},
    {GRAPH_HEAD "{\"type\":\"add\",\"name\":\"input\",\"inputs\":[\"a\",\"a\"]}," GRAPH_TAIL,
     MN_ESPEC, "layer 1 (add, \"input\"): \"input\" is the model's input"},
    {GRAPH_HEAD "{\"type\":\"add\",\"inputs\":\"a\"}," GRAPH_TAIL,
     MN_EINVAL, "layer 1 (add, \"add\"): inputs must be a list of 1 to 8 layer names"},
    {GRAPH_HEAD "{\"type\":\"add\",\"inputs\":[\"a\", 3]}," GRAPH_TAIL,
     MN_EINVAL, "layer 1 (add, \"add\"): inputs must be a list of layer names"},
    {GRAPH_HEAD "{\"type\":\"add\",\"name\":\"bad name\",\"inputs\":[\"a\",\"a\"]}," GRAPH_TAIL,
     MN_EINVAL, "layers[1].name: character ' ' not allowed"},
    {GRAPH_HEAD "{\"type\":\"concatenate\",\"axis\":1,\"inputs\":[\"a\",\"a\"]}," GRAPH_TAIL,
     MN_ESPEC, "layers[1] (concatenate).axis: 1 is not supported: only -1"},
    {GRAPH_HEAD "{\"type\":\"concatenate\",\"axis\":\"-1\",\"inputs\":[\"a\",\"a\"]}," GRAPH_TAIL,
     MN_EINVAL, "layers[1].axis must be an integer"},
    {GRAPH_HEAD "{\"type\":\"concatenate\"}," GRAPH_TAIL,
     MN_ESPEC, "layer 1 (concatenate, \"concatenate\"): takes 2 to 8 inputs, got 1"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10,"
     "\"use_bias\":0}]}",
     MN_EINVAL, "layers[1].use_bias must be true or false"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":3,"
     "\"use_bias\":\"no\"},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "layers[0].use_bias must be true or false"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"global_average_pooling2d\",\"keepdims\":1},"
     "{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "layers[0].keepdims must be true or false"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"average_pooling2d\",\"pool_size\":0},"
     "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "layers[0].pool_size must be between 1"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"average_pooling2d\",\"data_format\":\"x\"},"
     "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "data_format"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"activation\"},"
     "{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "layers[1] (activation): missing key \"activation\""},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"activation\","
     "\"activation\":\"mish\"},{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "layers[1].activation: unknown value \"mish\" (expected one of: linear, relu"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"leaky_relu\","
     "\"alpha\":0.1,\"negative_slope\":0.1},{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "layers[1] (leaky_relu): \"negative_slope\" and \"alpha\""},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"LeakyReLU\","
     "\"negative_slope\":-0.1},{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "layers[1].negative_slope must be between 0"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"elu\","
     "\"alpha\":1000},{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "layers[1].alpha must be between 0"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"elu\","
     "\"activation\":\"relu\"},{\"type\":\"dense\",\"units\":10}]}",
     MN_EINVAL, "activation"},
};

START_TEST(test_bad_spec_refused)
{
    MnError err;
    int rc = parse_build(bad_specs[_i].json, &err);
    ck_assert_msg(rc == bad_specs[_i].code, "case %d: code %d, want %d (%s)", _i, rc,
                  bad_specs[_i].code, err.msg);
    ck_assert_msg(strstr(err.msg, bad_specs[_i].says), "case %d: message \"%s\" lacks \"%s\"", _i,
                  err.msg, bad_specs[_i].says);
}
END_TEST

/* Specs that parse but describe impossible networks: refused by model_build, naming the layer. */
static const struct {
    const char *json;
    int code;
    const char *says;
} impossible_specs[] = {
    {"{\"name\":\"a\",\"input_shape\":[4,4,1],\"layers\":[{\"type\":\"conv2d\",\"filters\":2,"
     "\"kernel_size\":5},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}]}",
     MN_ESPEC, "layer 0 (conv2d)"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":3},"
     "{\"type\":\"dense\",\"units\":10}]}",
     MN_ESPEC, "layer 1 (dense)"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":20000},"
     "{\"type\":\"dense\",\"units\":10}]}",
     MN_ELIMIT, "over the limit of 10000000"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":3}]}",
     MN_ESPEC, "end with flatten and dense"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":1}]}",
     MN_ESPEC, "2 to 64"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"maxpool2d\",\"pool_size\":30},{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":10}]}",
     MN_ESPEC, "layer 0 (maxpool2d)"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"average_pooling2d\",\"pool_size\":30},"
     "{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":10}]}",
     MN_ESPEC, "layer 0 (average_pooling2d): window 30x30 larger than input 28x28"},
    {GRAPH_HEAD "{\"type\":\"maxpool2d\"},{\"type\":\"concatenate\",\"inputs\":[\"a\",\"max_pooling2d\"]},"
     GRAPH_TAIL,
     MN_ESPEC, "layer 2 (concatenate, \"concatenate\"): inputs of different heights and widths: "
               "input 0 is 6x6x2, input 1 3x3x2"},
    {"{\"name\":\"a\",\"layers\":[{\"type\":\"conv2d\",\"filters\":4,\"kernel_size\":3},"
     "{\"type\":\"activation\",\"activation\":\"softmax\"},{\"type\":\"flatten\"},"
     "{\"type\":\"dense\",\"units\":10}]}",
     MN_ESPEC, "layer 1 (activation): softmax needs a flat output"},
};

START_TEST(test_impossible_spec_refused)
{
    MnError err;
    int rc = parse_build(impossible_specs[_i].json, &err);
    ck_assert_msg(rc == impossible_specs[_i].code, "case %d: code %d, want %d (%s)", _i, rc,
                  impossible_specs[_i].code, err.msg);
    ck_assert_msg(strstr(err.msg, impossible_specs[_i].says),
                  "case %d: message \"%s\" lacks \"%s\"", _i, err.msg, impossible_specs[_i].says);
}
END_TEST

/* Keras's default names, the inputs resolved, and a written graph parsing
 * back to the same one; a chain's written spec keeps no names or inputs. */
START_TEST(test_graph_names_and_round_trip)
{
    static const char *const json =
        GRAPH_HEAD "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":3,\"padding\":\"same\"},"
        "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":1},"
        "{\"type\":\"add\",\"name\":\"res1\",\"inputs\":[\"a\",\"conv2d_1\",\"input\"]}," GRAPH_TAIL;
    ModelSpec s, back;
    MnError err;
    ck_assert_msg(parse(json, &s, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(s.layers[0].name, "a");
    ck_assert_str_eq(s.layers[1].name, "conv2d"); /* Keras counts only the unnamed */
    ck_assert_str_eq(s.layers[2].name, "conv2d_1");
    ck_assert_int_eq(s.layers[3].n_inputs, 3);
    ck_assert_int_eq(s.layers[3].inputs[0], 0);
    ck_assert_int_eq(s.layers[3].inputs[1], 2);
    ck_assert_int_eq(s.layers[3].inputs[2], LAYER_INPUT_MODEL);
    ck_assert_int_eq(s.layers[4].inputs[0], 3);
    ck_assert(!spec_is_chain(&s));
    cJSON *o = spec_to_json(&s);
    char *text = cJSON_PrintUnformatted(o);
    ck_assert_msg(parse(text, &back, &err) == 0, "%s: %s", text, err.msg);
    for (int i = 0; i < s.n_layers; i++) {
        ck_assert_str_eq(back.layers[i].name, s.layers[i].name);
        ck_assert_int_eq(back.layers[i].n_inputs, s.layers[i].n_inputs);
        for (int k = 0; k < s.layers[i].n_inputs; k++)
            ck_assert_int_eq(back.layers[i].inputs[k], s.layers[i].inputs[k]);
    }
    ck_assert_ptr_null(strstr(text, "\"name\":\"conv2d\"")); /* defaults stay implicit */
    free(text);
    cJSON_Delete(o);

    ck_assert_int_eq(parse(ISSUE_SPEC, &s, &err), 0);
    ck_assert(spec_is_chain(&s));
    o = spec_to_json(&s);
    text = cJSON_PrintUnformatted(o);
    ck_assert_ptr_null(strstr(text, "\"inputs\""));
    ck_assert_str_eq(s.layers[2].name, "dense_1");
    free(text);
    cJSON_Delete(o);
}
END_TEST

START_TEST(test_param_limit_configurable)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    lim.max_params = 50889;
    ModelSpec s;
    MnError err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/specs/mnist-mlp64.json", check_util_src_dir());
    ck_assert_int_eq(spec_load_file(path, &lim, &s, &err), 0);
    Model *m = NULL;
    ck_assert_int_eq(model_build(&s, &lim, &m, &err), MN_ELIMIT);
    ck_assert_ptr_null(m);
    lim.max_params = 50890;
    ck_assert_int_eq(model_build(&s, &lim, &m, &err), 0);
    model_free(m);
}
END_TEST

static const struct {
    const char *file;
    size_t params;
} seed_specs[] = {
    {"mnist-mlp64.json", 50890},
    {"mnist-cnn.json", 24186},
    {"mnist-sigmoid16.json", 12730},
    {"fashion-sigmoid10.json", 7960},
    {"fashion-relu50-sgd.json", 39760},
    {"fashion-relu50-50-adam.json", 42310},
    {"fashion-cnn.json", 125770},
    {"fashion-homework-relu.json", 17570},
    {"fashion-homework-sigmoid.json", 17570},
};

START_TEST(test_seed_specs_build)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    char path[4096];
    snprintf(path, sizeof path, "%s/specs/%s", check_util_src_dir(), seed_specs[_i].file);
    ModelSpec s;
    MnError err = {0};
    Model *m = NULL;
    ck_assert_msg(spec_load_file(path, &lim, &s, &err) == 0, "%s", err.msg);
    ck_assert_msg(model_build(&s, &lim, &m, &err) == 0, "%s", err.msg);
    ck_assert_msg(m->n_params == seed_specs[_i].params, "%s: %zu params, want %zu",
                  seed_specs[_i].file, m->n_params, seed_specs[_i].params);

    /* The spec survives a trip through its own JSON. */
    cJSON *j = spec_to_json(&m->spec);
    char *text = cJSON_PrintUnformatted(j);
    ModelSpec back;
    ck_assert_msg(spec_parse(text, strlen(text), &lim, &back, &err) == 0, "%s", err.msg);
    cJSON *j2 = spec_to_json(&back);
    char *text2 = cJSON_PrintUnformatted(j2);
    ck_assert_str_eq(text, text2);
    free(text);
    free(text2);
    cJSON_Delete(j);
    cJSON_Delete(j2);
    model_free(m);
}
END_TEST

/* The model_summary text of s, built (the caller frees it). */
static char *summary_of(const ModelSpec *s)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    MnError err = {0};
    Model *m = NULL;
    ck_assert_msg(model_build(s, &lim, &m, &err) == 0, "%s", err.msg);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    model_summary(m, f);
    fclose(f);
    model_free(m);
    return buf;
}

START_TEST(test_summary_table)
{
    SpecLimits lim;
    spec_limits_default(&lim);
    char path[4096];
    snprintf(path, sizeof path, "%s/specs/fashion-cnn.json", check_util_src_dir());
    ModelSpec s;
    MnError err = {0};
    ck_assert_int_eq(spec_load_file(path, &lim, &s, &err), 0);
    char *buf = summary_of(&s);
    ck_assert_ptr_nonnull(strstr(buf, "conv2d (Conv2D)"));
    ck_assert_ptr_nonnull(strstr(buf, "(None, 28, 28, 64)"));
    ck_assert_ptr_nonnull(strstr(buf, "max_pooling2d (MaxPooling2D)"));
    ck_assert_ptr_nonnull(strstr(buf, "(None, 14, 14, 64)"));
    ck_assert_ptr_nonnull(strstr(buf, "(None, 12544)"));
    ck_assert_ptr_nonnull(strstr(buf, "125450"));
    ck_assert_ptr_nonnull(strstr(buf, "Total params: 125,770"));
    ck_assert_ptr_null(strstr(buf, "Connected to")); /* a chain: the Sequential table */
    free(buf);
}
END_TEST

/* A graph: Keras's functional table, one "Connected to" line per input. */
START_TEST(test_graph_summary_table)
{
    ModelSpec s;
    MnError err = {0};
    ck_assert_int_eq(parse(GRAPH_HEAD "{\"type\":\"conv2d\",\"filters\":2,\"kernel_size\":3,"
                           "\"padding\":\"same\"},{\"type\":\"add\",\"name\":\"res1\","
                           "\"inputs\":[\"a\",\"conv2d\"]}," GRAPH_TAIL, &s, &err), 0);
    char *buf = summary_of(&s);
    ck_assert_ptr_nonnull(strstr(buf, "Param #      Connected to\n"));
    ck_assert_ptr_nonnull(strstr(buf, "input (InputLayer)              (None, 6, 6, 1)      0\n"));
    ck_assert_ptr_nonnull(strstr(buf, "res1 (Add)                      (None, 6, 6, 2)      0"
                                      "            a[0][0]\n"
                                      "                                                      "
                                      "            conv2d[0][0]\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Total params: 277"));
    free(buf);
}
END_TEST

/* use_bias false: no bias parameters, as Keras counts them. Keras prints
 * for this model conv2d 72 (3*3*1*8), dense 80 (8*10), Total params: 152;
 * with biases it would be 80 and 90. */
START_TEST(test_summary_without_bias)
{
    ModelSpec s;
    MnError err = {0};
    ck_assert_int_eq(parse("{\"name\":\"nb\",\"layers\":[{\"type\":\"conv2d\",\"filters\":8,"
                           "\"kernel_size\":3,\"use_bias\":false,\"activation\":\"gelu\"},"
                           "{\"type\":\"average_pooling2d\",\"padding\":\"same\"},"
                           "{\"type\":\"activation\",\"activation\":\"swish\"},"
                           "{\"type\":\"global_average_pooling2d\"},"
                           "{\"type\":\"dense\",\"units\":10,\"use_bias\":false,"
                           "\"activation\":\"softmax\"}]}", &s, &err), 0);
    char *buf = summary_of(&s);
    ck_assert_ptr_nonnull(strstr(buf, "conv2d (Conv2D)              (None, 26, 26, 8)         72\n"));
    ck_assert_ptr_nonnull(strstr(buf, "average_pooling2d (AveragePooling2D) (None, 13, 13, 8)         0\n"));
    ck_assert_ptr_nonnull(strstr(buf, "activation (Activation)      (None, 13, 13, 8)         0\n"));
    ck_assert_ptr_nonnull(strstr(buf, "global_average_pooling2d (GlobalAveragePooling2D) (None, 8)"));
    ck_assert_ptr_nonnull(strstr(buf, "dense (Dense)                (None, 10)                80\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Total params: 152\nTrainable params: 152\n"));
    free(buf);
}
END_TEST

/* The new layers and keys write back to a spec that parses to the same
 * layers; use_bias is written only when false, so old specs stay as written. */
START_TEST(test_new_layers_round_trip)
{
    static const char *const json =
        GRAPH_HEAD "{\"type\":\"conv2d\",\"filters\":3,\"kernel_size\":3,\"padding\":\"same\","
        "\"use_bias\":false,\"activation\":\"silu\"},"
        "{\"type\":\"Concatenate\",\"inputs\":[\"a\",\"conv2d\"]},"
        "{\"type\":\"AveragePooling2D\",\"pool_size\":3,\"strides\":2,\"padding\":\"same\"},"
        "{\"type\":\"Activation\",\"activation\":\"leaky_relu\"},"
        "{\"type\":\"GlobalAveragePooling2D\",\"keepdims\":true},"
        "{\"type\":\"LeakyReLU\",\"alpha\":0.1},{\"type\":\"elu\"},{\"type\":\"leaky_relu\"},"
        "{\"type\":\"ELU\",\"alpha\":0.5},"
        "{\"type\":\"dense\",\"units\":3,\"activation\":\"elu\"}]}";
    ModelSpec s, back;
    MnError err;
    ck_assert_msg(parse(json, &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s.layers[1].act, ACT_SWISH);
    ck_assert(s.layers[1].cfg.conv.no_bias);
    ck_assert(!s.layers[0].cfg.conv.no_bias);
    ck_assert(s.layers[5].cfg.global_pool.keepdims);
    /* Keras 2's alpha for LeakyReLU's negative_slope; Keras's defaults 0.3 and 1 */
    const float slopes[4] = {0.1f, 1.0f, 0.3f, 0.5f};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(s.layers[6 + i].type, i % 2 ? LAYER_ELU : LAYER_LEAKY_RELU);
        ck_assert_float_eq(s.layers[6 + i].cfg.slope.alpha, slopes[i]);
        ck_assert_int_eq(s.layers[6 + i].act, ACT_LINEAR);
    }
    cJSON *o = spec_to_json(&s);
    char *text = cJSON_PrintUnformatted(o);
    ck_assert_msg(parse(text, &back, &err) == 0, "%s: %s", text, err.msg);
    ck_assert_msg(strstr(text, "\"type\":\"concatenate\",\"axis\":-1,\"inputs\":[\"a\",\"conv2d\"]"), "%s", text);
    ck_assert_ptr_nonnull(strstr(text, "\"activation\":\"swish\",\"use_bias\":false"));
    ck_assert_ptr_nonnull(strstr(text, "\"type\":\"average_pooling2d\",\"pool_size\":[3,3],\"strides\":[2,2],\"padding\":\"same\""));
    ck_assert_ptr_null(strstr(strstr(text, "use_bias") + 1, "use_bias")); /* the one false */
    ck_assert_msg(strstr(text, "\"type\":\"leaky_relu\",\"negative_slope\":0.1") &&
                  strstr(text, "\"type\":\"elu\",\"alpha\":1}"), "%s", text);
    for (int i = 0; i < s.n_layers; i++) {
        ck_assert_int_eq(back.layers[i].type, s.layers[i].type);
        ck_assert_int_eq(back.layers[i].act, s.layers[i].act);
        ck_assert(memcmp(&back.layers[i].cfg, &s.layers[i].cfg, sizeof s.layers[i].cfg) == 0);
    }
    free(text);
    cJSON_Delete(o);
}
END_TEST

/* An answer's probabilities are printf's %.9g of each float, byte for
 * byte (what json_float_array wrote before strfromf), 0 for NaN and Inf:
 * special values, then 20,000 random bit patterns. */
START_TEST(test_float_array_is_printf)
{
    enum { SPECIAL = 10, N = SPECIAL + 20000 };
    static float v[N];
    const float special[SPECIAL] = {0.0f, -0.0f, 1.0f, 0.1f, FLT_MIN, FLT_MIN / 8, FLT_MAX,
                                    NAN, INFINITY, -INFINITY};
    memcpy(v, special, sizeof special);
    uint32_t x = 2463534242u;
    for (int i = SPECIAL; i < N; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        memcpy(&v[i], &x, sizeof x);
    }
    cJSON *arr = json_float_array(v, N);
    int i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        char want[32];
        snprintf(want, sizeof want, "%.9g", isfinite(v[i]) ? v[i] : 0.0f);
        ck_assert_msg(cJSON_IsRaw(it) && strcmp(it->valuestring, want) == 0, "%d: %s, want %s", i,
                      it->valuestring, want);
    }
    ck_assert_int_eq(i, N);
    cJSON_Delete(arr);
}
END_TEST

/* The raw array is the printed array, byte for byte: empty, one number,
 * an answer's ten (its stack buffer), the bit patterns above (malloc'd). */
START_TEST(test_float_array_raw_is_array)
{
    enum { N = 20000 };
    static float v[N];
    const float special[] = {0.0f, -0.0f, FLT_MIN / 8, -FLT_MIN, FLT_MAX, -FLT_MAX,
                             NAN, INFINITY, -1.17549435e-38f, 0.1f};
    memcpy(v, special, sizeof special);
    uint32_t x = 88675123u;
    for (size_t i = sizeof special / sizeof *special; i < N; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        memcpy(&v[i], &x, sizeof x);
    }
    const int sizes[] = {0, 1, 10, 16, 17, N};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        cJSON *arr = json_float_array(v, sizes[k]), *raw = json_float_array_raw(v, sizes[k]);
        char *want = cJSON_PrintUnformatted(arr);
        ck_assert(cJSON_IsRaw(raw));
        ck_assert_msg(strcmp(raw->valuestring, want) == 0, "%d floats: %.80s, want %.80s",
                      sizes[k], raw->valuestring, want);
        cJSON_free(want);
        cJSON_Delete(arr);
        cJSON_Delete(raw);
    }
}
END_TEST

/* What cJSON prints for the number, for the integers an answer holds
 * (classes, versions, counts) and the ends of the range it is used for. */
START_TEST(test_int_raw_is_number)
{
    const long v[] = {0, 1, -1, 9, 10, 99, 100, 12345, 2147483647L, -2147483647L - 1,
                      999999999999999L, -999999999999999L};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        cJSON *num = cJSON_CreateNumber((double)v[i]), *raw = json_int_raw(v[i]);
        char *want = cJSON_PrintUnformatted(num);
        ck_assert(cJSON_IsRaw(raw));
        ck_assert_str_eq(raw->valuestring, want);
        cJSON_free(want);
        cJSON_Delete(num);
        cJSON_Delete(raw);
    }
}
END_TEST

static Suite *spec_suite(void)
{
    Suite *s = suite_create("spec");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, test_issue_spec_parses);
    tcase_add_loop_test(tc, test_seed_specs_build, 0, sizeof seed_specs / sizeof *seed_specs);
    tcase_add_test(tc, test_summary_table);
    tcase_add_test(tc, test_graph_summary_table);
    tcase_add_test(tc, test_summary_without_bias);
    tcase_add_test(tc, test_new_layers_round_trip);
    tcase_add_test(tc, test_graph_names_and_round_trip);
    tcase_add_test(tc, test_float_array_is_printf);
    tcase_add_test(tc, test_float_array_raw_is_array);
    tcase_add_test(tc, test_int_raw_is_number);
    suite_add_tcase(s, tc);
    TCase *lim = tcase_create("Limits");
    tcase_add_loop_test(lim, test_bad_spec_refused, 0, sizeof bad_specs / sizeof *bad_specs);
    tcase_add_loop_test(lim, test_impossible_spec_refused, 0,
                        sizeof impossible_specs / sizeof *impossible_specs);
    tcase_add_test(lim, test_param_limit_configurable);
    suite_add_tcase(s, lim);
    return s;
}

MN_TEST_MAIN(spec_suite)
