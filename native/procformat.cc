// Plain C++ (no napi.h): row output of parsed tables. See procformat.h.
#include "procformat.h"

#include <cstdlib>
#include <cstring>

namespace xtt {

namespace {

const char *const kTrafficGroups[] = {"total", "tcp", "udp", "other"};
const char *const kConnGroups[] = {"total", "tcp", "udp", "icmp", "other"};

// "00" .. "99"
struct DigitPairs {
  char d[200];
  DigitPairs() {
    for (int i = 0; i < 100; i++) {
      d[2 * i] = static_cast<char>('0' + i / 10);
      d[2 * i + 1] = static_cast<char>('0' + i % 10);
    }
  }
};
const DigitPairs kPairs;

unsigned digits(uint64_t v) {
  unsigned n = 1;
  for (;;) {
    if (v < 10) return n;
    if (v < 100) return n + 1;
    if (v < 1000) return n + 2;
    if (v < 10000) return n + 3;
    v /= 10000;
    n += 4;
  }
}

// Writes v in decimal ending just before `end` (exactly digits(v) bytes); returns the start.
char *put_uint_back(char *end, uint64_t v) {
  while (v >= 100) {
    unsigned r = static_cast<unsigned>(v % 100);
    v /= 100;
    end -= 2;
    std::memcpy(end, kPairs.d + 2 * r, 2);
  }
  if (v >= 10) {
    end -= 2;
    std::memcpy(end, kPairs.d + 2 * v, 2);
  } else {
    *--end = static_cast<char>('0' + v);
  }
  return end;
}

char *put_uint(char *p, uint64_t v) {
  unsigned n = digits(v);
  put_uint_back(p + n, v);
  return p + n;
}

unsigned key_len(TableKind kind, uint32_t k) {
  if (kind == TableKind::PortConn) return digits(k);
  return digits(k >> 24) + digits((k >> 16) & 255) + digits((k >> 8) & 255) + digits(k & 255) + 3;
}

char *put_key(char *p, TableKind kind, uint32_t k) {
  if (kind == TableKind::PortConn) return put_uint(p, k);
  for (int s = 24; s >= 0; s -= 8) {
    p = put_uint(p, (k >> s) & 255);
    if (s) *p++ = '.';
  }
  return p;
}

char *put(char *p, const char *s, size_t n) {
  std::memcpy(p, s, n);
  return p + n;
}

char *put_spaces(char *p, size_t n) {
  std::memset(p, ' ', n);
  return p + n;
}

// The JSON text of one row around its numbers: the pieces before each counter, then the end.
struct JsonTemplate {
  std::string open;                 // `    {\n      "ip": ` (the key follows, quoted for IPs)
  std::string before[10];           // text before counter i
  std::string close;                // after the last counter
  size_t fixed = 0;                 // bytes of the row that are not key or counter digits

  JsonTemplate(TableKind kind, unsigned per) {
    const bool port = kind == TableKind::PortConn;
    open = std::string("    {\n      \"") + (port ? "port" : "ip") + "\": " + (port ? "" : "\"");
    const char *const *groups = kind == TableKind::Traffic ? kTrafficGroups : kConnGroups;
    for (unsigned i = 0; i < per; i++) {
      std::string s;
      if (i % 2 == 0) {
        s = i == 0 ? std::string(port ? "" : "\"") + ",\n" : "\n      },\n";
        s += std::string("      \"") + groups[i / 2] + "\": {\n        \"in\": ";
      } else {
        s = ",\n        \"out\": ";
      }
      before[i] = s;
    }
    close = "\n      }\n    }";
    fixed = open.size() + close.size();
    for (unsigned i = 0; i < per; i++) fixed += before[i].size();
  }
};

}  // namespace

void cell_widths(const RowSource &src, unsigned *widths) {
  for (unsigned c = 0; c <= src.per; c++) widths[c] = 0;
  for (size_t j = 0; j < src.count; j++) {
    size_t r = src.order ? src.order[j] : j;
    unsigned w = key_len(src.kind, src.keys[r]);
    if (w > widths[0]) widths[0] = w;
    const uint64_t *c = src.counters + r * src.per;
    for (unsigned i = 0; i < src.per; i++) {
      w = digits(c[i]);
      if (w > widths[i + 1]) widths[i + 1] = w;
    }
  }
}

bool format_rows(const RowSource &src, RowStyle style, const unsigned *widths, const std::string &prefix,
                 const std::string &suffix, char **out, size_t *out_len) {
  const unsigned per = src.per;
  const JsonTemplate json(src.kind, style == RowStyle::Json ? per : 0);
  // Pass 1: the exact size.
  size_t len = prefix.size() + suffix.size();
  if (style == RowStyle::Table) {
    size_t line = per * 2 + 1;  // separators and the newline
    for (unsigned c = 0; c <= per; c++) line += widths[c];
    len += line * src.count;
  } else {
    for (size_t j = 0; j < src.count; j++) {
      size_t r = src.order ? src.order[j] : j;
      len += key_len(src.kind, src.keys[r]);
      const uint64_t *c = src.counters + r * per;
      for (unsigned i = 0; i < per; i++) len += digits(c[i]);
    }
    if (style == RowStyle::Json) {
      len += json.fixed * src.count + (src.count ? 2 * (src.count - 1) : 0);  // ",\n" between rows
    } else {
      len += (per + 1) * src.count;  // commas and newlines
    }
  }
  char *buf = static_cast<char *>(std::malloc(len ? len : 1));
  if (buf == nullptr) return false;
  // Pass 2: the text.
  char *p = put(buf, prefix.data(), prefix.size());
  for (size_t j = 0; j < src.count; j++) {
    size_t r = src.order ? src.order[j] : j;
    const uint64_t *c = src.counters + r * per;
    const uint32_t k = src.keys[r];
    switch (style) {
      case RowStyle::Json:
        if (j) p = put(p, ",\n", 2);
        p = put(p, json.open.data(), json.open.size());
        p = put_key(p, src.kind, k);
        for (unsigned i = 0; i < per; i++) {
          p = put(p, json.before[i].data(), json.before[i].size());
          p = put_uint(p, c[i]);
        }
        p = put(p, json.close.data(), json.close.size());
        break;
      case RowStyle::Csv:
        p = put_key(p, src.kind, k);
        for (unsigned i = 0; i < per; i++) {
          *p++ = ',';
          p = put_uint(p, c[i]);
        }
        *p++ = '\n';
        break;
      case RowStyle::Table: {
        char *s = p;
        p = put_key(p, src.kind, k);
        p = put_spaces(p, widths[0] - static_cast<size_t>(p - s));
        for (unsigned i = 0; i < per; i++) {
          p = put_spaces(p, 2);
          unsigned n = digits(c[i]);
          p = put_spaces(p, widths[i + 1] - n);
          p = put_uint(p, c[i]);
        }
        *p++ = '\n';
        break;
      }
    }
  }
  p = put(p, suffix.data(), suffix.size());
  *out = buf;
  *out_len = static_cast<size_t>(p - buf);
  return true;
}

}  // namespace xtt
