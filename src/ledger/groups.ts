/**
 * Groups (a customer, a town, a department): named sets of prefixes with validity dates, and
 * a billing profile each. A host belongs to at most one group at any instant: two groups'
 * prefixes that overlap during overlapping validity are refused, naming both.
 */
import { UsageError } from '../core/errors.js';
import { alignTo6, formatIPv6, ipValue, isAligned6, maskWord6, numberToIp, parseIPv6 } from '../core/ip.js';
import type { DB } from './db.js';
import { checkBillingDay, checkZone, type Profile } from './periods.js';

/**
 * A prefix of either family. `words`: the network address, one word (IPv4) or four (IPv6,
 * most significant first); `net`: the IPv4 value (0 for IPv6).
 */
export interface Cidr {
  family: 4 | 6;
  net: number;
  words: Uint32Array;
  plen: number;
  /** Canonical text: "10.0.0.0/24", a /32 as "10.0.0.1/32"; IPv6 in RFC 5952 form, "2001:db8:100::/48", a /128 as ".../128". */
  text: string;
}

const cidrHint = 'a.b.c.d/N (N 0..32), an IPv4 address, an IPv6 prefix such as 2001:db8:100::/48 (N 0..128) or an IPv6 address';

/** Parses an IPv4 or IPv6 CIDR (a bare address is a /32 or /128); the host bits must be zero. */
export function parseCidr(s: string): Cidr {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(s);
  if (m && m[2] !== undefined && m[2].length > 1 && m[2][0] === '0') throw new UsageError(`CIDR "${s}": the prefix length has a leading zero`, { hint: cidrHint });
  if (m && m[1]!.includes(':')) {
    const w = new Uint32Array(4);
    const plen = m[2] !== undefined ? Number(m[2]) : 128;
    if (!parseIPv6(m[1]!, w) || plen > 128) throw new UsageError(`CIDR "${s}": not an IPv6 address or prefix (prefix length 0..128)`, { hint: cidrHint });
    if (!isAligned6(w, plen)) throw new UsageError(`CIDR "${s}": host bits are set (the network is ${formatIPv6(alignTo6(w, plen))}/${plen})`);
    return { family: 6, net: 0, words: w, plen, text: `${formatIPv6(w)}/${plen}` };
  }
  const ip = m ? ipValue(m[1]!) : -1;
  const plen = m && m[2] !== undefined ? Number(m[2]) : 32;
  if (!m || ip < 0 || plen > 32) {
    throw new UsageError(`CIDR "${s}": expected a.b.c.d/N (N 0..32) or an IPv4 address`, { hint: cidrHint });
  }
  const mask = plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0;
  if (((ip & ~mask) >>> 0) !== 0) {
    throw new UsageError(`CIDR "${s}": host bits are set (the network is ${numberToIp((ip & mask) >>> 0)}/${plen})`);
  }
  return { family: 4, net: ip, words: Uint32Array.of(ip), plen, text: `${numberToIp(ip)}/${plen}` };
}

/** A host key of the ledger (`hosts.key`: "10.0.0.1", "10.0.0.0/24", "2001:db8:0:1::/64", "2001:db8::1") as a prefix. */
export function hostKeyCidr(key: string): Cidr {
  return parseCidr(key);
}

/** The network address of `c` as a BLOB (big-endian, 4 or 16 bytes): members.net. */
export function netBlob(c: Cidr): Buffer {
  const b = Buffer.alloc(c.family === 4 ? 4 : 16);
  for (let i = 0; i < c.words.length; i++) b.writeUInt32BE(c.words[i]!, 4 * i);
  return b;
}

const maskOf = (family: 4 | 6, plen: number, i: number) => (family === 4 ? (plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0) : maskWord6(plen, i));

/** The first `p` bits of a and b are equal (same family). */
function samePrefix(a: Cidr, b: Cidr, p: number): boolean {
  for (let i = 0; i < a.words.length; i++) {
    const m = maskOf(a.family, p, i);
    if (((a.words[i]! & m) >>> 0) !== ((b.words[i]! & m) >>> 0)) return false;
  }
  return true;
}

/** True when prefix `c` contains the whole of prefix `h` (same family, c no longer than h). */
export function cidrContainsPrefix(c: Cidr, h: Cidr): boolean {
  return c.family === h.family && c.plen <= h.plen && samePrefix(c, h, c.plen);
}

/** True when the IPv4 address `ip` (a number) is inside the IPv4 prefix `c`. */
export function cidrContains(c: { family?: 4 | 6; net: number; plen: number }, ip: number): boolean {
  if (c.family === 6) return false;
  const mask = c.plen === 0 ? 0 : (0xffffffff << (32 - c.plen)) >>> 0;
  return ((ip & mask) >>> 0) === c.net;
}

function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && samePrefix(a, b, Math.min(a.plen, b.plen));
}

const timesOverlap = (af: number, at: number | null, bf: number, bt: number | null) => af < (bt ?? Infinity) && bf < (at ?? Infinity);

export interface Member extends Cidr {
  id: number;
  group: string;
  groupId: number;
  prefix: string;
  from: number;
  to: number | null;
}

export interface Group {
  id: number;
  name: string;
  billingDay: number;
  tz: string;
  members: Member[];
}

export function checkGroupName(name: string): string {
  if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) throw new UsageError(`group name "${name}": 1..64 characters of [A-Za-z0-9_.@-]`);
  return name;
}

export function allMembers(db: DB): Member[] {
  const rows = db.prepare(`SELECT m.id, g.name AS "group", g.id AS groupId, m.prefix, m.from_ms AS "from", m.to_ms AS "to"
    FROM members m JOIN groups g ON g.id = m.group_id ORDER BY g.name, m.family, m.net, m.plen, m.from_ms`).all() as Array<{ id: bigint; group: string; groupId: bigint; prefix: string; from: bigint; to: bigint | null }>;
  return rows.map((m) => ({
    ...parseCidr(m.prefix), id: Number(m.id), group: m.group, groupId: Number(m.groupId), prefix: m.prefix, from: Number(m.from), to: m.to === null ? null : Number(m.to),
  }));
}

export function listGroups(db: DB): Group[] {
  const members = allMembers(db);
  return (db.prepare(`SELECT id, name, billing_day AS billingDay, tz FROM groups ORDER BY name`).all() as Group[]).map((g) => ({
    id: Number(g.id), name: g.name, billingDay: Number(g.billingDay), tz: g.tz, members: members.filter((m) => m.groupId === Number(g.id)),
  }));
}

export function getGroup(db: DB, name: string): Group {
  const g = listGroups(db).find((x) => x.name === name);
  if (!g) throw new UsageError(`group "${name}": no such group`, { hint: '`xttraffic group list` shows the groups' });
  return g;
}

export interface AddOptions {
  from: number;
  to: number | null;
  billingDay?: number | undefined;
  tz?: string | undefined;
  now: number;
}

/** Adds prefixes to a group (creating it), refusing overlaps with other groups in time. */
export function addMembers(db: DB, name: string, cidrs: string[], o: AddOptions): Group {
  checkGroupName(name);
  const parsed = cidrs.map(parseCidr);
  if (o.billingDay !== undefined) checkBillingDay(o.billingDay);
  if (o.tz !== undefined) checkZone(o.tz);
  if (o.to !== null && o.to <= o.from) throw new UsageError(`--to must be after --from`);
  db.transaction(() => {
    const existing = allMembers(db);
    for (const [i, c] of parsed.entries()) {
      for (const m of existing) {
        if (m.group !== name && overlaps(c, m) && timesOverlap(o.from, o.to, m.from, m.to)) {
          throw new UsageError(`CIDR ${c.text} of group "${name}" overlaps ${m.prefix} of group "${m.group}" in the same time`, { hint: 'a host belongs to one group at a time: end the other membership first (group del ... --to DATE)' });
        }
      }
      for (const d of parsed.slice(0, i)) if (overlaps(c, d)) throw new UsageError(`CIDR ${c.text} overlaps ${d.text} given in the same command`);
    }
    checkHostPrefixes(db, name, parsed);
    let g = db.prepare(`SELECT id FROM groups WHERE name = ?`).get(name) as { id: number } | undefined;
    if (!g) {
      const r = db.prepare(`INSERT INTO groups (name, billing_day, tz, created_ms) VALUES (?, ?, ?, ?)`).run(name, o.billingDay ?? 1, o.tz ?? 'UTC', o.now);
      g = { id: Number(r.lastInsertRowid) };
    } else {
      if (o.billingDay !== undefined) db.prepare(`UPDATE groups SET billing_day = ? WHERE id = ?`).run(o.billingDay, g.id);
      if (o.tz !== undefined) db.prepare(`UPDATE groups SET tz = ? WHERE id = ?`).run(o.tz, g.id);
    }
    const ins = db.prepare(`INSERT INTO members (group_id, family, prefix, net, plen, from_ms, to_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    for (const c of parsed) {
      const same = existing.find((m) => m.group === name && m.text === c.text && timesOverlap(o.from, o.to, m.from, m.to));
      if (same) continue; // already a member then: idempotent
      ins.run(g.id, c.family, c.text, netBlob(c), c.plen, o.from, o.to);
    }
  }).immediate();
  return getGroup(db, name);
}

/**
 * Ends memberships at `at` (the named prefixes, or all of the group's). Counts already in the
 * ledger keep the group they were billed to; the group and its history stay.
 */
export function endMembers(db: DB, name: string, cidrs: string[], at: number): Group {
  const g = getGroup(db, name);
  const parsed = cidrs.map(parseCidr);
  db.transaction(() => {
    for (const c of parsed) {
      if (!g.members.some((m) => m.text === c.text)) throw new UsageError(`CIDR ${c.text} is not a prefix of group "${name}"`);
    }
    for (const m of g.members) {
      if (parsed.length > 0 && !parsed.some((c) => c.text === m.text)) continue;
      if (m.to !== null && m.to <= at) continue;
      if (m.from >= at) db.prepare(`DELETE FROM members WHERE id = ?`).run(m.id);
      else db.prepare(`UPDATE members SET to_ms = ? WHERE id = ?`).run(at, m.id);
    }
  }).immediate();
  return getGroup(db, name);
}

/**
 * A host key is billed whole to one group, so a member prefix must not cut a host prefix: a
 * member longer than the key length of a host the ledger already counts inside it (a /64
 * member when a table counts per /56) is refused, naming both. (A table created later with a
 * shorter host prefix bills such hosts to no group: docs/design.md, "The ledger".)
 */
function checkHostPrefixes(db: DB, name: string, parsed: Cidr[]): void {
  const cut = parsed.filter((c) => c.plen > 0 && c.plen < (c.family === 4 ? 32 : 128));
  if (cut.length === 0) return;
  const keys = db.prepare(`SELECT key FROM hosts WHERE key LIKE '%/%'`).pluck().all() as string[];
  for (const k of keys) {
    const h = parseCidr(k);
    for (const c of cut) {
      if (h.family === c.family && h.plen < c.plen && samePrefix(h, c, h.plen)) {
        throw new UsageError(`CIDR ${c.text} of group "${name}" is longer (/${c.plen}) than the host prefix ${k} (/${h.plen}) the ledger counts: a host prefix is billed whole to one group`, {
          hint: `add ${h.text} (or a shorter prefix containing it) instead, or count that net with --hostprefix ${c.plen} or longer`,
        });
      }
    }
  }
}

export function profileOf(g: { billingDay: number; tz: string }): Profile {
  return { billingDay: g.billingDay, tz: g.tz };
}

/**
 * Finds the group of a host at one instant: per family, one Map per member prefix length,
 * longest first. A host is an IPv4 address as a number, or a key text (an IPv6 prefix or
 * address, an IPv4 prefix): it belongs to the member prefix that contains it whole (a member
 * no longer than the host's prefix); a host prefix shorter than a member prefix is in no group.
 */
export class GroupIndex {
  private readonly byLen: Array<[number, Map<number, number>]> = [];
  private readonly byLen6: Array<[number, Map<string, number>]> = [];
  private readonly cache = new Map<string, number | undefined>();
  constructor(members: Member[], at: number) {
    const maps = new Map<number, Map<number, number>>();
    const maps6 = new Map<number, Map<string, number>>();
    for (const m of members) {
      if (m.from > at - 1 || (m.to !== null && m.to <= at - 1)) continue;
      if (m.family === 6) {
        let mp = maps6.get(m.plen);
        if (!mp) maps6.set(m.plen, (mp = new Map()));
        mp.set(formatIPv6(m.words), m.groupId);
      } else {
        let mp = maps.get(m.plen);
        if (!mp) maps.set(m.plen, (mp = new Map()));
        mp.set(m.net, m.groupId);
      }
    }
    this.byLen = [...maps.entries()].sort((a, b) => b[0] - a[0]);
    this.byLen6 = [...maps6.entries()].sort((a, b) => b[0] - a[0]);
  }
  get empty(): boolean {
    return this.byLen.length === 0 && this.byLen6.length === 0;
  }
  groupOf(host: number | string): number | undefined {
    if (typeof host === 'number') return this.group4(host, 32);
    if (this.cache.has(host)) return this.cache.get(host);
    const c = parseCidr(host);
    let g: number | undefined;
    if (c.family === 4) g = this.group4(c.net, c.plen);
    else {
      for (const [plen, mp] of this.byLen6) {
        if (plen > c.plen) continue;
        g = mp.get(formatIPv6(alignTo6(c.words, plen)));
        if (g !== undefined) break;
      }
    }
    this.cache.set(host, g);
    return g;
  }
  private group4(ip: number, hostLen: number): number | undefined {
    for (const [plen, mp] of this.byLen) {
      if (plen > hostLen) continue;
      const mask = plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0;
      const g = mp.get((ip & mask) >>> 0);
      if (g !== undefined) return g;
    }
    return undefined;
  }
}
