/* The two functions GCC may call on its own for struct and array copies and
 * zeroing (-ffreestanding still allows it), byte by byte: every image runs
 * with its MMU off, where unaligned accesses fault. */
#include <stddef.h>

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}
