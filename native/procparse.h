// Plain C++ (no napi.h): a strict parser of /proc/net/xt_traffic/ tables into columns.
//
// It accepts only the kernel's exact byte format (docs/design.md): the exact header line,
// then rows "KEY\tN\t...\tN\n" with keys strictly ascending, decimal u64 counters without
// leading zeros, IPv4 dotted quads without leading zeros. Anything else makes it return false
// and the caller parses the text with the TypeScript parser, which accepts the lenient forms or
// reports the precise error with its line number. So the two never disagree on a value.
#ifndef XTT_NATIVE_PROCPARSE_H
#define XTT_NATIVE_PROCPARSE_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace xtt {

enum class TableKind { Traffic, IpConn, PortConn };

struct Columns {
  size_t rows = 0;
  unsigned counters_per_row = 0;   // 8 (traffic) or 10 (ipconn, portconn)
  std::vector<uint32_t> keys;      // IPv4 in host order, or port
  std::vector<uint64_t> counters;  // rows * counters_per_row, in /proc column order
  // Column sums, exact: 128 bits cannot overflow for fewer than 2^64 rows.
  unsigned __int128 sums[10] = {};
};

// Returns true and fills `out` when `data` is exactly in the kernel's format.
bool parse_columns(const char *data, size_t len, TableKind kind, Columns &out);

}  // namespace xtt

#endif
