/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every kernel-version difference of xt_traffic lives here, and only here.
 * The module uses only APIs that are unchanged from 6.1 to 7.3 (pde_data,
 * proc_ops, kvcalloc, get_random_u32, remove_proc_subtree), so there is no
 * version test yet; add one here, never in xt_traffic.c. Built with -Werror
 * against Debian's 6.1, 6.12 and the newest trixie-backports headers
 * (7.3.4+deb13, gcc-14: test/unit/newest-kernel.test.ts).
 */
#ifndef _XT_TRAFFIC_COMPAT_H
#define _XT_TRAFFIC_COMPAT_H

#endif /* _XT_TRAFFIC_COMPAT_H */
