/**
 * Groups (a customer, a town, a department): named sets of prefixes with validity dates, and
 * a billing profile each. A host belongs to at most one group at any instant: two groups'
 * prefixes that overlap during overlapping validity are refused, naming both.
 */
import { UsageError } from '../core/errors.js';
import { ipValue, numberToIp } from '../core/ip.js';
import type { DB } from './db.js';
import { checkBillingDay, checkZone, type Profile } from './periods.js';

export interface Cidr {
  family: 4;
  net: number;
  plen: number;
  /** Canonical text: "10.0.0.0/24", a /32 as "10.0.0.1/32". */
  text: string;
}

/** Parses an IPv4 CIDR (a bare address is a /32); the host bits must be zero. */
export function parseCidr(s: string): Cidr {
  const m = /^([^/]+)(?:\/(\d{1,2}))?$/.exec(s);
  if (m && m[1]!.includes(':')) throw new UsageError(`CIDR "${s}": IPv6 prefixes are not counted yet (the ledger's keys already take them)`);
  const ip = m ? ipValue(m[1]!) : -1;
  const plen = m && m[2] !== undefined ? Number(m[2]) : 32;
  if (!m || ip < 0 || plen > 32 || (m[2] !== undefined && m[2].length > 1 && m[2][0] === '0')) {
    throw new UsageError(`CIDR "${s}": expected a.b.c.d/N (N 0..32) or an IPv4 address`);
  }
  const mask = plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0;
  if (((ip & ~mask) >>> 0) !== 0) {
    throw new UsageError(`CIDR "${s}": host bits are set (the network is ${numberToIp((ip & mask) >>> 0)}/${plen})`);
  }
  return { family: 4, net: ip, plen, text: `${numberToIp(ip)}/${plen}` };
}

export function cidrContains(c: { net: number; plen: number }, ip: number): boolean {
  const mask = c.plen === 0 ? 0 : (0xffffffff << (32 - c.plen)) >>> 0;
  return ((ip & mask) >>> 0) === c.net;
}

function overlaps(a: { net: number; plen: number }, b: { net: number; plen: number }): boolean {
  const p = Math.min(a.plen, b.plen);
  const mask = p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;
  return ((a.net & mask) >>> 0) === ((b.net & mask) >>> 0);
}

const timesOverlap = (af: number, at: number | null, bf: number, bt: number | null) => af < (bt ?? Infinity) && bf < (at ?? Infinity);

export interface Member {
  id: number;
  group: string;
  groupId: number;
  prefix: string;
  net: number;
  plen: number;
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
  return (db.prepare(`SELECT m.id, g.name AS "group", g.id AS groupId, m.prefix, m.net, m.plen, m.from_ms AS "from", m.to_ms AS "to"
    FROM members m JOIN groups g ON g.id = m.group_id ORDER BY g.name, m.net, m.plen, m.from_ms`).all() as Member[])
    .map((m) => ({ ...m, id: Number(m.id), groupId: Number(m.groupId), net: Number(m.net), plen: Number(m.plen), from: Number(m.from), to: m.to === null ? null : Number(m.to) }));
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
    let g = db.prepare(`SELECT id FROM groups WHERE name = ?`).get(name) as { id: number } | undefined;
    if (!g) {
      const r = db.prepare(`INSERT INTO groups (name, billing_day, tz, created_ms) VALUES (?, ?, ?, ?)`).run(name, o.billingDay ?? 1, o.tz ?? 'UTC', o.now);
      g = { id: Number(r.lastInsertRowid) };
    } else {
      if (o.billingDay !== undefined) db.prepare(`UPDATE groups SET billing_day = ? WHERE id = ?`).run(o.billingDay, g.id);
      if (o.tz !== undefined) db.prepare(`UPDATE groups SET tz = ? WHERE id = ?`).run(o.tz, g.id);
    }
    const ins = db.prepare(`INSERT INTO members (group_id, family, prefix, net, plen, from_ms, to_ms) VALUES (?, 4, ?, ?, ?, ?, ?)`);
    for (const c of parsed) {
      const same = existing.find((m) => m.group === name && m.net === c.net && m.plen === c.plen && timesOverlap(o.from, o.to, m.from, m.to));
      if (same) continue; // already a member then: idempotent
      ins.run(g.id, c.text, c.net, c.plen, o.from, o.to);
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
      if (!g.members.some((m) => m.net === c.net && m.plen === c.plen)) throw new UsageError(`CIDR ${c.text} is not a prefix of group "${name}"`);
    }
    for (const m of g.members) {
      if (parsed.length > 0 && !parsed.some((c) => c.net === m.net && c.plen === m.plen)) continue;
      if (m.to !== null && m.to <= at) continue;
      if (m.from >= at) db.prepare(`DELETE FROM members WHERE id = ?`).run(m.id);
      else db.prepare(`UPDATE members SET to_ms = ? WHERE id = ?`).run(at, m.id);
    }
  }).immediate();
  return getGroup(db, name);
}

export function profileOf(g: { billingDay: number; tz: string }): Profile {
  return { billingDay: g.billingDay, tz: g.tz };
}

/** Finds the group of an IPv4 host at one instant: one Map per prefix length, longest first. */
export class GroupIndex {
  private readonly byLen: Array<[number, Map<number, number>]> = [];
  constructor(members: Member[], at: number) {
    const maps = new Map<number, Map<number, number>>();
    for (const m of members) {
      if (m.from > at - 1 || (m.to !== null && m.to <= at - 1)) continue;
      let mp = maps.get(m.plen);
      if (!mp) maps.set(m.plen, (mp = new Map()));
      mp.set(m.net, m.groupId);
    }
    this.byLen = [...maps.entries()].sort((a, b) => b[0] - a[0]);
  }
  get empty(): boolean {
    return this.byLen.length === 0;
  }
  groupOf(ip: number): number | undefined {
    for (const [plen, mp] of this.byLen) {
      const mask = plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0;
      const g = mp.get((ip & mask) >>> 0);
      if (g !== undefined) return g;
    }
    return undefined;
  }
}
