/* 53_run_sigbus.c — map a file and read every byte of it (a page the kernel cannot read is SIGBUS).
 * Prints the sum of the bytes. Built static, put into the test image. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
        perror(argv[1]);
        return 1;
    }
    const unsigned char *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    unsigned long sum = 0;
    for (off_t i = 0; i < st.st_size; i++)
        sum += p[i];
    printf("%lu\n", sum);
    return 0;
}
