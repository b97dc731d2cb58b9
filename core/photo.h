/* photo.h - the steps that turn a photo or scan of a digit on paper into
 * clean ink, for image.c's digit preprocessing. They work on white-on-black
 * float images in [0, 1] (ink bright, paper dark, as image.c's ink map is)
 * and leave a clean drawing (a black field, ink near 1) as it was, so
 * MNIST itself passes through. Nothing here decodes, frames or allocates
 * more than a few image-sized buffers per call. */
#ifndef MN_PHOTO_H
#define MN_PHOTO_H

#include <stdbool.h>

#include "error.h"

/* Whether the strokes of a gray image (w x h, 1 white) are darker than the
 * paper: more pixels stand strongly below their neighbourhood's mean (a
 * window wider than a stroke) than above it, "strongly" being half the
 * strongest deviation (its 99.5th percentile). The paper is most of any
 * neighbourhood, so a loop's inside stands at most a little above it; a
 * shadow's edge stands as far above on one side as below on the other. */
int photo_strokes_are_dark(const float *gray, int w, int h, bool *dark, MnError *err);

/* Whether the image is a drawing, not a photo: its paper exactly black
 * (at least half the pixels exactly 0). A drawing's levels are the pen's
 * own, and step 2 leaves them alone. */
bool photo_is_drawing(const float *ink, int w, int h);

/* 1. Illumination: the paper's level (an opening of the ink map, wider
 * than any stroke, then smoothed) is divided out, as a flat field is:
 * uneven light, shadows and tinted paper go to black. */
int photo_remove_illumination(float *ink, int w, int h, MnError *err);

/* 2. Ink from paper: Otsu's threshold splits the histogram; the paper's
 * noise (its median plus three robust deviations) goes to 0 and the ink's
 * typical level (its median) to 1. */
void photo_separate_ink(float *ink, int w, int h);

/* 3. Only the digit's ink: ruled lines (thin runs across most of the
 * image; strokes crossing them are kept), the frame's edges (thin strips
 * along a side) and specks (components under 5% of the largest) go. */
int photo_keep_digit(float *ink, int w, int h, MnError *err);

/* 4. Stroke width: the mean width (2 area / perimeter) of the ink above
 * half the brightest, in pixels; 0 for no ink. */
double photo_stroke_width(const float *ink, int w, int h);

/* Thickens (radius > 0) or thins (radius < 0) every stroke by |radius|
 * pixels a side: gray dilation or erosion by an octagon. */
int photo_adjust_stroke(float *ink, int w, int h, int radius, MnError *err);

#endif
