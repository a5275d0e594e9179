/* Whole files on disk (file.h): reading one in, replacing one atomically. */
#define _GNU_SOURCE /* O_TMPFILE and AT_EMPTY_PATH, where the system has them */

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "file.h"
#include "io_internal.h"
#include "random.h"

io_write_fn lstm__io_write_hook = write;
io_temporary lstm__io_temporary_hook = IO_TEMPORARY_ANY;

/* MAX_LINKS: Linux's limit of links followed in one lookup (ELOOP). */
enum { MAX_LINKS = 40, NAME_TRIES = 100 };

/* Short, so that a name of up to NAME_MAX bytes can be saved to. */
#define TEMPORARY_PREFIX ".lstm-tmp-"
#define TEMPORARY_NAME_SIZE (sizeof TEMPORARY_PREFIX + 6) /* with six letters and the NUL */

static const char UNCHANGED[] = "; the file is unchanged";

/* LSTM_E_IO with the system's reason first and the path last: a long path,
 * not the reason, is what the message's length cuts. */
static lstm_status io_fail(int error, const char *doing, const char *outcome, const char *path)
{
    return lstm__fail(LSTM_E_IO, "%s: %s%s: %s", doing, strerror(error), outcome, path);
}

/* A new copy of the first length bytes of text, NUL-terminated, or NULL. */
static char *copy_text(const char *text, size_t length)
{
    char *copy = lstm__mem_alloc(length + 1);
    if (copy != NULL) {
        memcpy(copy, text, length);
        copy[length] = '\0';
    }
    return copy;
}

/* The directory part of path ("." without a slash), a new string or NULL. */
static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return copy_text(".", 1);
    return copy_text(path, slash == path ? 1 : (size_t)(slash - path));
}

/* ---- reading ----------------------------------------------------------------- */

lstm_status lstm__file_read_all(const char *path, unsigned char **data, size_t *size)
{
    *data = NULL;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; a regular
     * file's reads ignore it. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return io_fail(errno, "opening", "", path);
    struct stat info;
    lstm_status status = LSTM_OK;
    if (fstat(fd, &info) != 0) {
        status = io_fail(errno, "examining", "", path);
        goto out;
    }
    if (!S_ISREG(info.st_mode) || info.st_size < 0) {
        status = lstm__fail(LSTM_E_IO, "not a regular file: %s", path);
        goto out;
    }
    if ((uintmax_t)info.st_size > SIZE_MAX) {
        status = lstm__fail(LSTM_E_NOMEM, "a file of %jd bytes does not fit in memory: %s",
                            (intmax_t)info.st_size, path);
        goto out;
    }
    *size = (size_t)info.st_size;
    if ((*data = lstm__mem_alloc(*size != 0 ? *size : 1)) == NULL) {
        status = lstm__fail(LSTM_E_NOMEM, "allocating %zu bytes to read %s", *size, path);
        goto out;
    }
    for (size_t done = 0; done < *size;) {
        ssize_t got = read(fd, *data + done, *size - done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            status = got < 0 ? io_fail(errno, "reading", "", path)
                             : lstm__fail(LSTM_E_IO, "reading: the file shrank: %s", path);
            lstm__mem_free(*data);
            *data = NULL;
            goto out;
        }
        done += (size_t)got;
    }
out:
    close(fd);
    return status;
}

/* ---- the file a save replaces ------------------------------------------------- */

/*
 * Whether a link in directory may be followed: not when it lies in a
 * sticky world-writable directory (/tmp) and belongs neither to the caller
 * nor to the directory's owner, where another user could have planted it to
 * point a save at the caller's files (Linux's protected_symlinks rule).
 */
static lstm_status may_follow(const char *directory, const struct stat *link, const char *path)
{
    struct stat info;
    bool shared =
        stat(directory, &info) == 0 && (info.st_mode & S_ISVTX) && (info.st_mode & S_IWOTH);
    if (shared && link->st_uid != geteuid() && link->st_uid != info.st_uid)
        return lstm__fail(LSTM_E_IO,
                          "not following a symbolic link of another user in a sticky "
                          "world-writable directory: %s",
                          path);
    return LSTM_OK;
}

/* directory/name, a new string or NULL. */
static char *join_path(const char *directory, const char *name)
{
    const size_t head = strlen(directory), tail = strlen(name);
    char *joined = lstm__mem_alloc(head + 1 + tail + 1);
    if (joined != NULL) {
        memcpy(joined, directory, head);
        joined[head] = '/';
        memcpy(joined + head + 1, name, tail + 1);
    }
    return joined;
}

/* *next: the path the link at link_path, in directory, names (relative to
 * that directory). */
static lstm_status read_link(const char *link_path, const char *directory, const struct stat *link,
                             const char *path, char **next)
{
    size_t capacity = link->st_size > 0 ? (size_t)link->st_size + 1 : 256;
    char *text;
    ssize_t length;
    for (;;) { /* a link that grew since lstat() is read again */
        if ((text = lstm__mem_alloc(capacity)) == NULL)
            return lstm__fail(LSTM_E_NOMEM, "allocating %zu bytes to follow a link to save to %s",
                              capacity, path);
        length = readlink(link_path, text, capacity);
        if (length < 0 || (size_t)length < capacity)
            break;
        lstm__mem_free(text);
        capacity *= 2;
    }
    if (length < 0) {
        int error = errno;
        lstm__mem_free(text);
        return io_fail(error, "reading a symbolic link", UNCHANGED, path);
    }
    text[length] = '\0';
    if (text[0] == '/') {
        *next = text;
        return LSTM_OK;
    }
    *next = join_path(directory, text);
    lstm__mem_free(text);
    return *next != NULL ? LSTM_OK
                         : lstm__fail(LSTM_E_NOMEM, "allocating a path to save to %s", path);
}

/* *target: path, or the file its chain of symbolic links names (a new
 * string). A missing file ends the chain: the save creates it. */
static lstm_status resolve_links(const char *path, char **target)
{
    char *current = copy_text(path, strlen(path));
    if (current == NULL)
        return lstm__fail(LSTM_E_NOMEM, "allocating a path to save to %s", path);
    for (int links = 0;; links++) {
        struct stat link;
        if (lstat(current, &link) != 0 || !S_ISLNK(link.st_mode))
            break; /* any error shows again, with its reason, where the file is opened */
        char *next = NULL, *directory = directory_of(current);
        lstm_status status;
        if (directory == NULL)
            status = lstm__fail(LSTM_E_NOMEM, "allocating a path to save to %s", path);
        else if (links == MAX_LINKS)
            status = io_fail(ELOOP, "following symbolic links", UNCHANGED, path);
        else if ((status = may_follow(directory, &link, path)) == LSTM_OK)
            status = read_link(current, directory, &link, path, &next);
        lstm__mem_free(directory);
        lstm__mem_free(current);
        if (status != LSTM_OK)
            return status;
        current = next;
    }
    *target = current;
    return LSTM_OK;
}

/* The umask, which umask(2) cannot read without changing it (for every
 * thread); 022 where /proc does not tell. */
static mode_t process_umask(void)
{
    mode_t mask = 022;
    char status[512]; /* Umask is the second line */
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : read(fd, status, sizeof status - 1);
    if (fd >= 0)
        close(fd);
    if (got > 0) {
        status[got] = '\0';
        const char *line = strstr(status, "\nUmask:");
        unsigned value;
        if (line != NULL && sscanf(line + 1, "Umask: %o", &value) == 1)
            mask = (mode_t)value;
    }
    return mask;
}

/* The mode of the new file: the permission bits of the one it replaces,
 * never its set-id or sticky bits; for a new file 0666 less the umask. */
static lstm_status new_file_mode(int directory, const char *name, const char *path, mode_t *mode)
{
    struct stat info;
    if (fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISREG(info.st_mode))
            return lstm__fail(LSTM_E_IO, "not a regular file%s: %s", UNCHANGED, path);
        *mode = info.st_mode & 0777;
        return LSTM_OK;
    }
    if (errno != ENOENT)
        return io_fail(errno, "examining", UNCHANGED, path);
    *mode = 0666 & ~process_umask();
    return LSTM_OK;
}

/* ---- the temporary file ------------------------------------------------------- */

/* A fresh TEMPORARY_PREFIX name with six random letters: the names only
 * need to differ, O_EXCL and link() catch a clash. */
static void temporary_name(char name[TEMPORARY_NAME_SIZE])
{
    static atomic_uint_least64_t calls;
    struct timespec now = {0, 0};
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t state = ((uint64_t)now.tv_sec << 30) ^ (uint64_t)now.tv_nsec ^
                     ((uint64_t)getpid() << 40) ^ (atomic_fetch_add(&calls, 1) << 20);
    uint64_t word = random_next(&state);
    memcpy(name, TEMPORARY_PREFIX, sizeof TEMPORARY_PREFIX - 1);
    for (size_t k = sizeof TEMPORARY_PREFIX - 1; k + 1 < TEMPORARY_NAME_SIZE; k++, word >>= 5)
        name[k] = "abcdefghijklmnopqrstuvwxyz012345"[word & 31];
    name[TEMPORARY_NAME_SIZE - 1] = '\0';
}

/* A new named temporary file in directory, open for writing, or -1. */
static int create_named(int directory, char name[TEMPORARY_NAME_SIZE])
{
    for (int tries = 0; tries < NAME_TRIES; tries++) {
        temporary_name(name);
        int fd = openat(directory, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* An unnamed temporary file in directory, open for writing, or -1 where
 * the system or the file system has none. */
static int create_unnamed(int directory)
{
#ifdef O_TMPFILE
    if (lstm__io_temporary_hook == IO_TEMPORARY_NAMED)
        return -1;
    return openat(directory, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
#else
    (void)directory;
    return -1;
#endif
}

/* Gives the unnamed file fd a temporary name in directory; false where
 * the system cannot (linkat's AT_EMPTY_PATH wants CAP_DAC_READ_SEARCH, the
 * /proc route a mounted /proc). */
static bool name_unnamed(int directory, int fd, char name[TEMPORARY_NAME_SIZE])
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    for (int tries = 0; tries < NAME_TRIES; tries++) {
        temporary_name(name);
        int result = -1;
        errno = ENOENT; /* what linkat() gives without the capability */
#ifdef AT_EMPTY_PATH
        if (lstm__io_temporary_hook != IO_TEMPORARY_PROC_LINK)
            result = linkat(fd, "", directory, name, AT_EMPTY_PATH);
#endif
        if (result != 0 && errno != EEXIST)
            result = linkat(AT_FDCWD, proc, directory, name, AT_SYMLINK_FOLLOW);
        if (result == 0)
            return true;
        if (errno != EEXIST)
            return false;
    }
    return false;
}

/* Writes all of data through the (test-replaceable) write hook; errno
 * tells why not. */
static bool write_all(int fd, const unsigned char *data, size_t size)
{
    const size_t chunk = (size_t)1 << 20;
    while (size > 0) {
        ssize_t done = lstm__io_write_hook(fd, data, size < chunk ? size : chunk);
        if (done < 0 && errno == EINTR)
            continue;
        if (done == 0)
            errno = EIO; /* no progress, and no reason given */
        if (done <= 0)
            return false;
        data += done;
        size -= (size_t)done;
    }
    return true;
}

static lstm_status write_durably(int fd, const unsigned char *bytes, size_t size, mode_t mode,
                                 const char *path)
{
    if (fchmod(fd, mode) != 0)
        return io_fail(errno, "setting the mode of a temporary file", UNCHANGED, path);
    if (!write_all(fd, bytes, size))
        return io_fail(errno, "writing a temporary file", UNCHANGED, path);
    if (fsync(fd) != 0)
        return io_fail(errno, "syncing a temporary file", UNCHANGED, path);
    return LSTM_OK;
}

/* Writes bytes durably to a new temporary file in directory and leaves it
 * there under name; on failure nothing is left. */
static lstm_status write_temporary(int directory, const unsigned char *bytes, size_t size,
                                   mode_t mode, char name[TEMPORARY_NAME_SIZE], const char *path)
{
    int fd = create_unnamed(directory);
    bool named = fd < 0;
    if (named && (fd = create_named(directory, name)) < 0)
        return io_fail(errno, "creating a temporary file", UNCHANGED, path);
    lstm_status status = write_durably(fd, bytes, size, mode, path);
    if (status == LSTM_OK && !named) {
        named = name_unnamed(directory, fd, name);
        if (!named) { /* the unnamed file vanishes: write a named one */
            close(fd);
            if ((fd = create_named(directory, name)) < 0)
                return io_fail(errno, "creating a temporary file", UNCHANGED, path);
            named = true;
            status = write_durably(fd, bytes, size, mode, path);
        }
    }
    /* some file systems (NFS) report a failed write only here */
    if (close(fd) != 0 && status == LSTM_OK)
        status = io_fail(errno, "closing a temporary file", UNCHANGED, path);
    if (status != LSTM_OK && named)
        unlinkat(directory, name, 0);
    return status;
}

lstm_status lstm__file_replace(const char *path, const unsigned char *bytes, size_t size)
{
    char *target = NULL, *directory_path = NULL;
    int directory = -1;
    lstm_status status = resolve_links(path, &target);
    if (status != LSTM_OK)
        return status;
    const char *slash = strrchr(target, '/');
    const char *name = slash == NULL ? target : slash + 1;
    mode_t mode;
    char temporary[TEMPORARY_NAME_SIZE];
    if (*name == '\0') {
        status = lstm__fail(LSTM_E_IO, "the path names a directory, not a file: %s", path);
        goto out;
    }
    if ((directory_path = directory_of(target)) == NULL) {
        status = lstm__fail(LSTM_E_NOMEM, "allocating a path to save to %s", path);
        goto out;
    }
    if ((directory = open(directory_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        status = io_fail(errno, "opening the directory", UNCHANGED, path);
        goto out;
    }
    if ((status = new_file_mode(directory, name, path, &mode)) != LSTM_OK ||
        (status = write_temporary(directory, bytes, size, mode, temporary, path)) != LSTM_OK)
        goto out;
    if (renameat(directory, temporary, directory, name) != 0) {
        int error = errno;
        unlinkat(directory, temporary, 0);
        status = io_fail(error, "renaming a temporary file over the file", UNCHANGED, path);
        goto out;
    }
    if (fsync(directory) != 0) /* the rename is durable only with the directory */
        status = io_fail(errno, "syncing the directory", "; the file is written", path);
out:
    if (directory >= 0)
        close(directory);
    lstm__mem_free(directory_path);
    lstm__mem_free(target);
    return status;
}
