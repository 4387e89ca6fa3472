/* upgate-node --check: validate a policy through the plugin's check(), without serving. */
#ifndef UG_CHECK_H
#define UG_CHECK_H

#include <stdbool.h>

/* Checks explain ("uid=N,ver=V,src=ADDR[,plat=P][,chan=C]"); exits 2 with a
 * line saying what is wrong. */
void ug_check_explain_syntax(const char *explain);
/* Runs the check and prints the summary (text, or the JSON as is); returns
 * the exit code: 0 valid, 1 invalid or the plugin cannot check. With user
 * (--user), also 1 when a reload as that user could not read a file. */
int ug_check_run(const char *plugin_path, const char *policy, const char *explain, bool json, const char *user);

#endif
