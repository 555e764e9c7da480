// Plain C++ (no napi.h): strict columnar parser. See procparse.h.
#include "procparse.h"

#include <cstring>

namespace xtt {

namespace {

const char kTrafficHeader[] = "IP\t\tTOTAL\t\tTCP\t\tUDP\t\tOTHER\n";
const char kIpConnHeader[] = "IP\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n";
const char kPortConnHeader[] = "PORT\t\tTOTAL\t\tTCP\t\tUDP\t\tICMP\t\tOTHER\n";

// Parses a decimal without leading zeros ("0" itself is fine) up to `max`, ending at `end_ch`.
// Advances p past the terminator.
bool parse_uint(const char *&p, const char *end, uint64_t max, char end_ch, uint64_t &v) {
  const char *s = p;
  uint64_t n = 0;
  // 19 digits always fit in 64 bits (10^19 - 1 < 2^64); only a 20th needs an overflow check.
  while (p < end && p - s < 19 && static_cast<unsigned>(*p - '0') < 10) n = n * 10 + static_cast<unsigned>(*p++ - '0');
  if (p < end && p - s == 19 && static_cast<unsigned>(*p - '0') < 10) {
    unsigned d = static_cast<unsigned>(*p++ - '0');
    if (n > (UINT64_MAX - d) / 10) return false;
    n = n * 10 + d;
    if (p < end && static_cast<unsigned>(*p - '0') < 10) return false;  // 21 digits
  }
  size_t digits = static_cast<size_t>(p - s);
  if (digits == 0 || (digits > 1 && *s == '0') || n > max) return false;
  if (p >= end || *p != end_ch) return false;
  ++p;
  v = n;
  return true;
}

bool parse_ip(const char *&p, const char *end, uint32_t &ip) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    uint64_t octet;
    if (!parse_uint(p, end, 255, i == 3 ? '\t' : '.', octet)) return false;
    v = (v << 8) | static_cast<uint32_t>(octet);
  }
  ip = v;
  return true;
}

}  // namespace

bool parse_columns(const char *data, size_t len, TableKind kind, Columns &out) {
  const char *header;
  unsigned ncounters;
  switch (kind) {
    case TableKind::Traffic:
      header = kTrafficHeader;
      ncounters = 8;
      break;
    case TableKind::IpConn:
      header = kIpConnHeader;
      ncounters = 10;
      break;
    default:
      header = kPortConnHeader;
      ncounters = 10;
      break;
  }
  size_t hlen = std::strlen(header);
  if (len < hlen || std::memcmp(data, header, hlen) != 0) return false;
  const char *p = data + hlen;
  const char *end = data + len;

  // Rows are about 40-120 bytes: reserve from the size so the vectors grow at most once or twice.
  size_t guess = (len - hlen) / 32 + 1;
  out.keys.clear();
  out.counters.clear();
  for (auto &s : out.sums) s = 0;
  out.keys.reserve(guess);
  out.counters.reserve(guess * ncounters);
  out.counters_per_row = ncounters;

  int64_t prev = -1;
  while (p < end) {
    uint32_t key;
    if (kind == TableKind::PortConn) {
      uint64_t port;
      if (!parse_uint(p, end, 65535, '\t', port)) return false;
      key = static_cast<uint32_t>(port);
    } else if (!parse_ip(p, end, key)) {
      return false;
    }
    if (static_cast<int64_t>(key) <= prev) return false;  // not ascending (or a duplicate)
    prev = key;
    out.keys.push_back(key);
    for (unsigned i = 0; i < ncounters; i++) {
      uint64_t v;
      if (!parse_uint(p, end, UINT64_MAX, i + 1 == ncounters ? '\n' : '\t', v)) return false;
      out.counters.push_back(v);
      out.sums[i] += v;
    }
  }
  out.rows = out.keys.size();
  return true;
}

}  // namespace xtt
