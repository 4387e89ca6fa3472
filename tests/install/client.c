/* An out-of-tree libupgate client, built only from what `make install` put down (pkg-config upgate). */
#define _POSIX_C_SOURCE 200809L /* getaddrinfo under -std=c11 */
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <upgate/client.h>

static int fail(ug_client *c, const char *what)
{
    fprintf(stderr, "client: %s: %s\n", what, ug_client_errmsg(c));
    ug_client_free(c);
    return 1;
}

/* usage: client                     prints the library's version
 *        client HOST PORT UID VERSION KEY CRED HINT.pub RELEASE.pub
 *                                   asks the tracker once, as libupgate(3) shows,
 *                                   and prints "offer TO SIZE" or "wait WHY RETRY" */
int main(int argc, char **argv)
{
    printf("libupgate %s\n", ug_client_version());
    if (argc == 1)
        return 0;
    if (argc != 9) {
        fprintf(stderr, "usage: client [HOST PORT UID VERSION KEY CRED HINT.pub RELEASE.pub]\n");
        return 2;
    }
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = strtoull(argv[3], NULL, 10);
    cfg.version = argv[4];
    ug_client *c;
    const char *msg;
    if (ug_client_new(&cfg, &c, &msg) != UG_CLIENT_OK) {
        fprintf(stderr, "client: %s\n", msg);
        return 2;
    }
    if (ug_client_load_key(c, argv[5]) != UG_CLIENT_OK || ug_client_load_cred(c, argv[6]) != UG_CLIENT_OK ||
        ug_client_add_hint_key_file(c, argv[7]) != UG_CLIENT_OK ||
        ug_client_add_release_key_file(c, argv[8]) != UG_CLIENT_OK)
        return fail(c, "setup");
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai;
    if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0)
        return fail(c, "cannot resolve the tracker");
    int fd = socket(ai->ai_family, SOCK_DGRAM, 0);
    int connected = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    freeaddrinfo(ai);
    if (!connected)
        return fail(c, "cannot reach the tracker");
    const ug_client_event *ev = NULL;
    for (int sends = 0; sends < 6 && !(ev && ev->done); sends++) {
        uint8_t buf[UG_CLIENT_DGRAM_MAX];
        size_t len;
        if (ug_client_hello(c, buf, sizeof buf, &len) != UG_CLIENT_OK)
            return fail(c, "hello");
        if (send(fd, buf, len, 0) < 0)
            return fail(c, "send");
        struct pollfd p = {.fd = fd, .events = POLLIN};
        for (ev = NULL; poll(&p, 1, 1000) > 0; ev = NULL) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0 && ug_client_receive(c, buf, (size_t)n, &ev) == UG_CLIENT_OK && (ev->done || ev->send_now))
                break;
        }
    }
    int rc = 1;
    if (ev && ev->done && ev->type == UG_CLIENT_EV_OFFER) {
        printf("offer %s %llu\n", ev->offer.to, (unsigned long long)ev->offer.size);
        rc = 0;
    } else if (ev && ev->done && ev->type == UG_CLIENT_EV_WAIT) {
        printf("wait %u %llu\n", ev->why, (unsigned long long)ev->retry);
        rc = 0;
    } else {
        fprintf(stderr, "client: no answer\n");
    }
    close(fd);
    ug_client_free(c);
    return rc;
}
