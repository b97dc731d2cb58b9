/* progress.c - the training progress bar (see progress.h). */
#include "progress.h"

#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_init(Progress *p, FILE *out)
{
    p->out = out;
    p->tty = isatty(fileno(out));
    p->last_draw = 0.0;
}

static void draw_bar(FILE *out, int done, int total)
{
    int filled = total ? (int)((long)BAR_WIDTH * done / total) : BAR_WIDTH;
    fputc('[', out);
    for (int i = 0; i < BAR_WIDTH; i++)
        fputc(i < filled ? '=' : (i == filled ? '>' : '.'), out);
    fputc(']', out);
}

void progress_on_batch(const TrainProgress *tp, void *ctx)
{
    Progress *p = ctx;
    if (!p->tty)
        return;
    if (tp->batch == 1)
        fprintf(p->out, "Epoch %d/%d\n", tp->epoch, tp->epochs);
    double now = now_seconds();
    if (tp->batch != 1 && tp->batch != tp->batches && now - p->last_draw < 0.1)
        return;
    p->last_draw = now;
    double eta = tp->seconds / tp->batch * (tp->batches - tp->batch);
    fprintf(p->out, "\r%*d/%d ", snprintf(NULL, 0, "%d", tp->batches), tp->batch, tp->batches);
    draw_bar(p->out, tp->batch, tp->batches);
    fprintf(p->out, " - ETA: %.0fs - loss: %.4f - accuracy: %.4f\033[K", eta, tp->loss,
            tp->accuracy);
    fflush(p->out);
}

void progress_on_epoch(const TrainProgress *tp, void *ctx)
{
    Progress *p = ctx;
    if (p->tty) {
        fprintf(p->out, "\r%d/%d ", tp->batches, tp->batches);
        draw_bar(p->out, tp->batches, tp->batches);
        fputs("\033[K", p->out);
    } else {
        fprintf(p->out, "Epoch %d/%d", tp->epoch, tp->epochs);
    }
    fprintf(p->out, " - %.1fs - loss: %.4f - accuracy: %.4f", tp->seconds, tp->loss,
            tp->accuracy);
    if (tp->has_val)
        fprintf(p->out, " - val_loss: %.4f - val_accuracy: %.4f", tp->val_loss,
                tp->val_accuracy);
    fputc('\n', p->out);
    fflush(p->out);
}
