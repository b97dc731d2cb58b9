/* journal.h - the append-only job journal (MODELS/.jobs.journal): one JSON
 * object per line, fsynced per append, so no job record is lost on a
 * crash. Replay on start hands each line back in order. */
#ifndef MN_JOURNAL_H
#define MN_JOURNAL_H

#include <cJSON.h>
#include <stdio.h>

#include "error.h"

typedef struct {
    FILE *f;
    char path[1100];
} Journal;

/* Replays every complete line through fn (a torn last line is ignored),
 * then opens the file for appending. */
int journal_open(Journal *j, const char *path, void (*fn)(const cJSON *rec, void *ctx),
                 void *ctx, MnError *err);
/* Appends rec as one line and fsyncs; rec stays the caller's. MN_EIO with
 * errno set when the line could not be written whole (nothing of it is
 * left in the file) or synced. */
int journal_append(Journal *j, const cJSON *rec);
void journal_close(Journal *j);

#endif
