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

/* Read what is there from `from` into `to`: 0 at end (EOF, or EIO once the other side is gone). */
static int pump(int from, int to)
{
    char buf[16384];
    ssize_t n = read(from, buf, sizeof buf);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (n == 0)
        return 0;
    if (to >= 0)
        write_full(to, buf, (size_t)n);
    return 1;
}

int pty_relay(int master, pid_t pid, int sigfd, int in, int out)
{
    if (master >= 0) {
        fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
        if (in >= 0)
            copy_size(master);
    }
    int st = 0;
    for (;;) {
        struct pollfd p[3] = {{sigfd, POLLIN, 0}, {master, POLLIN, 0}, {in, POLLIN, 0}};
        if (poll(p, 3, -1) < 0 && errno != EINTR)
            break;
        if (p[2].revents) {
            char buf[16384];
            ssize_t n = read(in, buf, sizeof buf);
            if (n > 0) {
                write_full(master, buf, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                in = -1;
                /* end of our input: the terminal's end-of-file character */
                char eof = 4;
                (void)!write(master, &eof, 1);
            }
        }
        if (p[1].revents && pump(master, out) == 0) {
            close(master);
            master = -1;
        }
        if (p[0].revents) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo == SIGWINCH) {
                    if (master >= 0)
                        copy_size(master);
                } else if (si.ssi_signo != SIGCHLD) {
                    kill(pid, (int)si.ssi_signo);
                }
            }
        }
        if (waitpid(pid, &st, WNOHANG) == pid) {
            /* what the command wrote just before it ended is still in the pty */
            while (master >= 0) {
                struct pollfd q = {master, POLLIN, 0};
                if (poll(&q, 1, 0) <= 0 || pump(master, out) == 0)
                    break;
            }
            if (master >= 0)
                close(master);
            return st;
        }
    }
    if (master >= 0)
        close(master);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}
