// libupgate example: ask a tracker once, download a verified offer, report what came of it.
// usage: example HOST PORT UID VERSION CLIENT.key CLIENT.cred HINT.pub RELEASE.pub OUT
#define _POSIX_C_SOURCE 200809L // getaddrinfo
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <upgate/client.h>

static int fail(ug_client *c, const char *what)
{
    fprintf(stderr, "example: %s: %s\n", what, ug_client_errmsg(c));
    ug_client_free(c);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: example HOST PORT UID VERSION KEY CRED HINT.pub RELEASE.pub OUT\n");
        return 2;
    }
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = strtoull(argv[3], NULL, 10);
    cfg.version = argv[4];
    ug_client *c;
    const char *msg;
    if (ug_client_new(&cfg, &c, &msg) != UG_CLIENT_OK) {
        fprintf(stderr, "example: %s\n", msg);
        return 2;
    }
    if (ug_client_load_key(c, argv[5]) != UG_CLIENT_OK || ug_client_load_cred(c, argv[6]) != UG_CLIENT_OK ||
        ug_client_add_hint_key_file(c, argv[7]) != UG_CLIENT_OK ||
        ug_client_add_release_key_file(c, argv[8]) != UG_CLIENT_OK)
        return fail(c, "setup");

    // The application owns the socket and the loop; libupgate only makes and reads datagrams.
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai;
    if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0)
        return fail(c, "cannot resolve the tracker");
    int fd = socket(ai->ai_family, SOCK_DGRAM, 0);
    bool connected = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    freeaddrinfo(ai);
    if (!connected)
        return fail(c, "cannot reach the tracker");

    const ug_client_event *ev = NULL;
    for (int sends = 0; sends < 6 && !(ev && ev->done); sends++) {
        uint8_t buf[UG_CLIENT_DGRAM_MAX];
        size_t len;
        if (ug_client_hello(c, buf, sizeof buf, &len) != UG_CLIENT_OK)
            return fail(c, "hello");
        send(fd, buf, len, 0); // after a second of silence: the very same bytes again
        struct pollfd p = {.fd = fd, .events = POLLIN};
        for (ev = NULL; poll(&p, 1, 1000) > 0; ev = NULL) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0 && ug_client_receive(c, buf, (size_t)n, &ev) == UG_CLIENT_OK && (ev->done || ev->send_now))
                break; // an answer; an IGNORED datagram (forged, stray, malformed) is not one
        }
    }
    int rc = 1;
    if (!ev || !ev->done) {
        fprintf(stderr, "example: no answer\n");
    } else if (ev->type == UG_CLIENT_EV_WAIT) {
        printf("no upgrade now (why %u); ask again in %llu s\n", ev->why, (unsigned long long)ev->retry);
        rc = 0;
    } else {
        const ug_client_offer *o = &ev->offer;
        printf("offered %s: %llu bytes from %s\n", o->to, (unsigned long long)o->size, o->urls[0]);
        ug_client_download_config dc;
        ug_client_download_config_init(&dc);
        dc.dest = argv[9];
        ug_client_err e = ug_client_download(c, o, &dc);
        if (e == UG_CLIENT_OK)
            printf("verified and saved to %s\n", dc.dest);
        else
            fprintf(stderr, "example: download: %s\n", ug_client_errmsg(c));
        uint8_t rep[UG_CLIENT_DGRAM_MAX];
        size_t rlen;
        if (ug_client_report(c, ug_client_res_of(e), o->to, rep, sizeof rep, &rlen) == UG_CLIENT_OK)
            send(fd, rep, rlen, 0); // never answered
        rc = e == UG_CLIENT_OK ? 0 : 1;
    }
    close(fd);
    ug_client_free(c);
    return rc;
}
