/* The installed libupgate's own version, built out of tree from what `make install` put down (pkg-config upgate). */
#include <stdio.h>

#include <upgate/client.h>

int main(void)
{
    return printf("libupgate %s\n", ug_client_version()) < 0;
}
