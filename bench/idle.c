/* bench/idle.c - the floor of ballastd's idle RSS: run.sh links this with
 * every library a local-only ballastd links (the NEEDED entries of its
 * ELF file), so that the loader maps and initialises them as it does for
 * ballastd; then it waits. Its RSS is what those libraries cost before
 * ballastd does anything. It waits 30 s at most, so that a bench that
 * dies meanwhile leaves nothing behind. */
#include <unistd.h>

int main(void)
{
	sleep(30);
	return 0;
}
