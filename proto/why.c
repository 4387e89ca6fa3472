/* The WAIT reasons' names and the REPORT `via` names: the one list each, for the plugin, upgate-ctl's
 * replies, upgate-sim and libupgate. */
#include "ug_proto2.h"

static const char *const why_names[UG_WHY_COUNT_] = {
    [UG_WHY_NOT_TARGETED] = "not_targeted",
    [UG_WHY_NOT_SELECTED] = "not_selected",
    [UG_WHY_QUOTA] = "quota",
    [UG_WHY_CLOCK] = "clock",
    [UG_WHY_PAUSED] = "paused",
    [UG_WHY_RATE] = "rate",
    [UG_WHY_TOO_SMALL] = "too_small",
};

const char *ug_why_name(unsigned why)
{
    return why < UG_WHY_COUNT_ && why_names[why] ? why_names[why] : "unknown";
}

static const char *const via_names[UG2_VIA_COUNT_] = {
    [UG2_VIA_FULL] = "full",
    [UG2_VIA_DELTA] = "delta",
    [UG2_VIA_DELTA_FALLBACK] = "delta-fallback",
};

const char *ug2_via_name(unsigned via)
{
    return via < UG2_VIA_COUNT_ ? via_names[via] : "unknown";
}
