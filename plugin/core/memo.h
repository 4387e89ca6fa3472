/* The percent-bucket memo of ug_claims (ABI minor 3): salts numbered per policy build, buckets kept per peer by the caller. */
#ifndef UG_MEMO_H
#define UG_MEMO_H

#include "core/live.h"

/* Numbers the distinct salts of l's percent stages (ls->salt_id, from 1;
 * 0 past 65535 salts: those are never memoised) and gives l a mark of its
 * own in the process (l->memo_mark), so that no memo filled under another
 * build, or another instance, is taken for one of l. */
void ug_memo_number(ug_live *l);

/* uid's percent bucket for ls's salt (ug_percent_bucket), read from m when
 * m holds it for this build and uid, else computed and kept there (m NULL:
 * computed). Equal to ug_percent_bucket() whatever m holds. */
uint32_t ug_memo_bucket(ug_bucket_memo *m, const ug_live *l, const ug_live_stage *ls, uint64_t uid);

#endif
