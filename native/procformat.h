// Plain C++ (no napi.h): `xttraffic read` output of parsed columns (see procparse.h) as JSON,
// CSV or aligned-table rows, byte for byte what src/lib/format-rows.ts (the reference, used
// when the addon is missing) and src/lib/report.ts print: one buffer, no per-row allocation.
#ifndef XTT_NATIVE_PROCFORMAT_H
#define XTT_NATIVE_PROCFORMAT_H

#include <cstddef>
#include <cstdint>
#include <string>

#include "procparse.h"

namespace xtt {

enum class RowStyle { Json, Csv, Table };

struct RowSource {
  TableKind kind;
  const uint32_t *keys;      // `rows` keys: IPv4 (host order) or port
  const uint64_t *counters;  // rows * per counters
  size_t rows;
  unsigned per;              // 8 (traffic) or 10 (ipconn, portconn)
  const uint32_t *order;     // rows to print, in this order (each < rows); nullptr: all, in order
  size_t count;              // entries of `order` (== rows when order is nullptr)
};

// Widest cell of each column (the key, then each counter) over the printed rows; 0 without rows.
// `widths` has room for 1 + per entries.
void cell_widths(const RowSource &src, unsigned *widths);

// prefix, the rows, suffix, into a malloc'd buffer (*out, *out_len; free() it). JSON: the
// elements of "rows" joined by ",\n" (no newline after the last); CSV: "key,n,...\n" per row;
// Table: cells padded to `widths` (1 + per entries, key left-aligned, numbers right-aligned),
// two spaces apart, "\n" after each row. Returns false when out of memory.
bool format_rows(const RowSource &src, RowStyle style, const unsigned *widths, const std::string &prefix,
                 const std::string &suffix, char **out, size_t *out_len);

}  // namespace xtt

#endif
