/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every kernel-version difference of xt_traffic lives here. The module uses
 * only APIs present unchanged from 6.1 to 6.12 (pde_data, proc_ops,
 * kvcalloc, get_random_u32, remove_proc_subtree), so this is empty for now.
 */
#ifndef _XT_TRAFFIC_COMPAT_H
#define _XT_TRAFFIC_COMPAT_H

#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0)
#error "xt_traffic needs Linux 6.1 or newer"
#endif

#endif /* _XT_TRAFFIC_COMPAT_H */
