/*
 * The plain drivers' replay, shared by the fuzz targets: run an input file,
 * or every regular file of a directory (sorted by name, not recursive),
 * through the target's replay_file().
 */
#ifndef LSTM_FUZZ_REPLAY_H
#define LSTM_FUZZ_REPLAY_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int replay_compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* program names the target in messages; false when an input failed. */
static bool replay_path(const char *program, const char *path,
                        bool (*replay_file)(const char *path))
{
    struct stat info;
    if (stat(path, &info) != 0 || !S_ISDIR(info.st_mode))
        return replay_file(path);
    DIR *directory = opendir(path);
    if (directory == NULL) {
        fprintf(stderr, "%s: cannot open %s\n", program, path);
        return false;
    }
    char **names = NULL;
    size_t count = 0;
    bool ok = true;
    for (struct dirent *entry; (entry = readdir(directory)) != NULL;) {
        if (entry->d_name[0] == '.')
            continue;
        char **grown = realloc(names, (count + 1) * sizeof *names);
        size_t length = strlen(path) + strlen(entry->d_name) + 2;
        char *name = malloc(length);
        if (grown == NULL || name == NULL) {
            fprintf(stderr, "%s: out of memory\n", program);
            exit(2);
        }
        names = grown;
        snprintf(name, length, "%s/%s", path, entry->d_name);
        names[count++] = name;
    }
    closedir(directory);
    qsort(names, count, sizeof *names, replay_compare_names);
    for (size_t n = 0; n < count; n++) {
        if (stat(names[n], &info) == 0 && S_ISREG(info.st_mode))
            ok &= replay_file(names[n]);
        free(names[n]);
    }
    free(names);
    return ok;
}

#endif /* LSTM_FUZZ_REPLAY_H */
