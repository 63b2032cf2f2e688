/* pty.c — the terminal side of `run -t` and `exec -t`: raw mode on our terminal, and a relay
 * between it and the container's pty master that also forwards signals and window sizes. */
#include "ctr_internal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>

int pty_raw_begin(int fd, void *saved, size_t saved_len)
{
    struct termios t;
    if (saved_len < sizeof t || tcgetattr(fd, &t) < 0)
        return -1;
    memcpy(saved, &t, sizeof t);
    cfmakeraw(&t);
    return tcsetattr(fd, TCSADRAIN, &t);
}

void pty_raw_end(int fd, const void *saved)
{
    tcsetattr(fd, TCSADRAIN, (const struct termios *)saved);
}

static void copy_size(int master)
{
    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws) == 0)
        ioctl(master, TIOCSWINSZ, &ws);
}

/* Read what is there from `from`, copy it to `to` (-1: nowhere) and the log (NULL: none) as
 * `stream`: 0 at end (EOF, or EIO once the other side of a pty is gone). */
static int pump(int from, int to, struct ctr_log *log, int stream)
{
    char buf[16384];
    ssize_t n = read(from, buf, sizeof buf);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (n == 0)
        return 0;
    if (to >= 0)
        write_full(to, buf, (size_t)n);
    if (log)
        ctr_log_write(log, stream, buf, (size_t)n);
    return 1;
}

int pty_relay(int master, pid_t pid, int sigfd, int in, int out)
{
    struct ctr_relay r = {.pid = pid,
                          .sigfd = sigfd,
                          .in = in,
                          .master = master,
                          .pipes = {-1, -1},
                          .to = {out, -1},
                          .watch_fd = -1};
    return ctr_relay(&r);
}

int ctr_relay(struct ctr_relay *r)
{
    /* sources: the pty master (the stdout stream), the stdout and stderr pipes */
    int src[3] = {r->master, r->pipes[0], r->pipes[1]};
    const int stream[3] = {CTR_STDOUT, CTR_STDOUT, CTR_STDERR};
    for (int i = 0; i < 3; i++)
        if (src[i] >= 0)
            fcntl(src[i], F_SETFL, fcntl(src[i], F_GETFL) | O_NONBLOCK);
    if (r->master >= 0 && r->in >= 0)
        copy_size(r->master);
    int in = r->in, st = 0, watch = r->watch_fd;
    bool reaped = false;
    while (!reaped) {
        struct pollfd p[6] = {{r->sigfd, POLLIN, 0}, {in, POLLIN, 0},     {src[0], POLLIN, 0},
                              {src[1], POLLIN, 0},   {src[2], POLLIN, 0}, {watch, POLLIN, 0}};
        if (poll(p, 6, -1) < 0 && errno != EINTR)
            break; /* cannot happen with valid descriptors; waited for below */
        if (p[5].revents) {
            watch = -1;
            if (r->watch(r->watch_arg) != 0)
                kill(r->pid, SIGKILL);
        }
        if (p[1].revents) {
            char buf[16384];
            ssize_t n = read(in, buf, sizeof buf);
            if (n > 0) {
                write_full(src[0], buf, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                in = -1;
                /* end of our input: the terminal's end-of-file character */
                char eof = 4;
                (void)!write(src[0], &eof, 1);
            }
        }
        for (int i = 0; i < 3; i++)
            if (p[2 + i].revents && pump(src[i], r->to[stream[i]], r->log, stream[i]) == 0) {
                close(src[i]);
                src[i] = -1;
            }
        if (p[0].revents) {
            struct signalfd_siginfo si;
            if (read(r->sigfd, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo == SIGWINCH) {
                    if (src[0] >= 0)
                        copy_size(src[0]);
                } else if (si.ssi_signo != SIGCHLD) {
                    kill(r->pid, (int)si.ssi_signo);
                }
            }
        }
        reaped = waitpid(r->pid, &st, WNOHANG) == r->pid;
    }
    /* what the command wrote just before it ended is still in the pty or the pipes (a process
     * that outlives it, with --pid host, is not waited for) */
    for (int i = 0; i < 3; i++) {
        while (src[i] >= 0) {
            struct pollfd q = {src[i], POLLIN, 0};
            if (poll(&q, 1, 0) <= 0 || pump(src[i], r->to[stream[i]], r->log, stream[i]) == 0)
                break;
        }
        if (src[i] >= 0)
            close(src[i]);
    }
    while (!reaped && waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}
