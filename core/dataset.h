/* dataset.h - a labelled image set in memory (uint8 pixels, NHWC) and the
 * data directory's layout: DIR/NAME/dataset.json names the classes, the
 * image preprocessing that suits the data, and the four IDX files. */
#ifndef MN_DATASET_H
#define MN_DATASET_H

#include <stdint.h>

#include "error.h"
#include "spec.h"
#include "tensor.h"

#define DATASET_MAX_CLASSES 64

typedef struct {
    char name[64];
    int n;                 /* samples */
    Shape shape;           /* one sample: (28, 28, 1) */
    uint8_t *images;       /* owned: n * shape_numel(shape) */
    uint8_t *labels;       /* owned: n */
    int n_classes;
    char class_names[DATASET_MAX_CLASSES][32];
    ImagePreprocess image_preprocess; /* digit (MNIST) or frame (Fashion-MNIST) */
} Dataset;

typedef enum { SPLIT_TRAIN, SPLIT_TEST } DatasetSplit;

/* Loads DIR/NAME's split. Errors name the file and the problem; a dataset
 * that is not there says to run `make data`. */
int dataset_load(const char *data_dir, const char *name, DatasetSplit split, Dataset *out,
                 MnError *err);
void dataset_free(Dataset *d);

/* Names of the datasets present under data_dir (NULL-terminated array of
 * malloc'd strings, caller frees with dataset_list_free). */
char **dataset_list(const char *data_dir);
void dataset_list_free(char **names);

/* The number of samples in a split, from its labels file alone (cheap). */
int dataset_count(const char *data_dir, const char *name, DatasetSplit split, int *n,
                  MnError *err);

/* The number of classes DIR/NAME/dataset.json names (cheap: no IDX file is read). */
int dataset_class_count(const char *data_dir, const char *name, int *n_classes, MnError *err);

/* Per-pixel mean and std (population, as sklearn's StandardScaler; a zero
 * std becomes 1) over the first n samples. mean/std: shape_numel floats. */
void dataset_standardize_stats(const Dataset *d, int n, float *mean, float *std);

#endif
