/* upgate-node's record of its control socket: a file keyed by the policy in a runtime folder, for upgate-ctl --policy, and control.sock in the state folder (docs/control.md "Finding the socket"). */
#ifndef UG_CTLREC_H
#define UG_CTLREC_H

/* Records that this process serves policy's control socket at socket
 * (relative to the current folder, or absolute): a record in the first
 * usable runtime folder (ug_rundirs_list), the records of dead nodes there
 * removed first, and, when state is set, the link state/control.sock. It
 * never stops the node: what it cannot record it logs as a warning, and
 * then upgate-ctl needs --socket. */
void ug_ctlrec_publish(const char *policy, const char *socket, const char *state);

/* At a clean stop: removes the record and the link if they are still
 * this process's (a successor's stay). */
void ug_ctlrec_withdraw(void);

#endif
