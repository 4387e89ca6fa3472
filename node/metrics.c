/* upgate-node --metrics: Prometheus text at GET /metrics, from libmicrohttpd's own thread. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common.h"
#include "log.h"
#include "metrics.h"
#include "mslots.h"

#define BODY_MAX (16u << 20)

static struct MHD_Daemon *daemon_;
static _Atomic unsigned long long scrapes;

/* One family, HELP and TYPE, then its samples. */
static void family(ug_buf *b, const char *name, const char *type, const char *help)
{
    ug_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void node_families(ug_buf *b)
{
    const char *last = NULL;
    for (unsigned c = 0; c < NC_COUNT; c++) {
        const ug_node_counter *k = &ug_node_counters[c];
        if (!k->metric)
            continue;
        if (!last || strcmp(last, k->metric) != 0)
            family(b, k->metric, "counter", k->help);
        last = k->metric;
        unsigned long long v = (unsigned long long)ug_node_counter_sum(c);
        if (k->label)
            ug_buf_printf(b, "%s{%s} %llu\n", k->metric, k->label, v);
        else
            ug_buf_printf(b, "%s %llu\n", k->metric, v);
    }
    family(b, "upgate_node_control_requests_total", "counter", "Control socket connections served.");
    ug_buf_printf(b, "upgate_node_control_requests_total %llu\n", ug_ctl_served());
    family(b, "upgate_node_metrics_scrapes_total", "counter", "Scrapes of this endpoint.");
    ug_buf_printf(b, "upgate_node_metrics_scrapes_total %llu\n", atomic_load(&scrapes));
    family(b, "upgate_node_info", "gauge", "The node's version and its plugin's.");
    ug_buf_printf(b, "upgate_node_info{version=\"%s\",abi=\"%u.%u\",plugin_version=\"%s\"} 1\n", ug_build_version(),
                  ug_api->abi_major, ug_api->abi_minor, ug_api->version ? ug_api->version : "");
}

int ug_metrics_text(ug_buf *out)
{
    out->max = BODY_MAX;
    static const char req[] = "{\"cmd\":\"metrics\"}";
    ug_buf plugin = {.max = BODY_MAX};
    int rc = ug_node_control(req, sizeof req - 1, ug_buf_emit, &plugin);
    if (rc == 0 && ug_buf_finish(&plugin) == 0) {
        ug_buf_emit(out, plugin.data, plugin.len);
        if (plugin.len && plugin.data[plugin.len - 1] != '\n')
            ug_buf_emit(out, "\n", 1);
    } else if (rc != -2) {
        ug_buf_printf(out, "# the plugin's metrics are missing: its control(\"metrics\") failed\n");
    }
    ug_buf_free(&plugin);
    node_families(out);
    return ug_buf_finish(out);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text, bool allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls, (void)version, (void)upload, (void)upload_size, (void)con_cls;
    if (strcmp(url, "/metrics") != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n", false);
    /* HEAD: libmicrohttpd sends the GET reply's headers without its body */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET or HEAD\n", true);
    atomic_fetch_add(&scrapes, 1);
    ug_buf body = {0};
    if (ug_metrics_text(&body) != 0) {
        ug_buf_free(&body);
        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", false);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(body.len, body.data, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        ug_buf_free(&body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    ug_log(UG_LOG_WARN, "metrics: %s", msg);
}

int ug_metrics_start(struct sockaddr_storage *ss, socklen_t sl, char *err, size_t errcap)
{
    char name[128];
    ug_format_addr((struct sockaddr *)ss, name, sizeof name);
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) {
        snprintf(err, errcap, "--metrics %s: %s", name, strerror(errno));
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t got = sl;
    if (bind(fd, (struct sockaddr *)ss, sl) != 0 || listen(fd, UG_MSLOTS_LIVE) != 0 ||
        getsockname(fd, (struct sockaddr *)ss, &got) != 0) {
        snprintf(err, errcap, "--metrics %s: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
                     (ss->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    /* the logger first: libmicrohttpd warns about any option before it;
     * no per-address limit of libmicrohttpd's: it refuses the newcomer, and
     * an honest scraper shares its address with the slow ones (mslots.c) */
    daemon_ = MHD_start_daemon(flags, 0, ug_mslots_accept, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                               NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned)UG_MSLOTS_MHD_LIMIT,
                               MHD_OPTION_NOTIFY_CONNECTION, ug_mslots_notify, NULL,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(UG_MSLOTS_TOTAL_MS / 1000), MHD_OPTION_END);
    if (!daemon_) {
        snprintf(err, errcap, "--metrics %s: cannot start the HTTP server", name);
        close(fd);
        return -1;
    }
    return 0;
}

void ug_metrics_stop(void)
{
    if (daemon_)
        MHD_stop_daemon(daemon_); /* closes the listening socket too */
    daemon_ = NULL;
}
