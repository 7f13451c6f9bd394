/**
 * IP allow/deny lists for every tunnel kind (TCP, HTTP, TLS). A relay exposes services such as
 * a phone's ADB port to the whole internet unless the operator narrows who may connect; this
 * module parses the CIDR lists and answers "may this visitor connect?" per connection.
 *
 * Addresses are handled as bytes. Node reports IPv4 visitors on dual-stack sockets as
 * IPv4-mapped IPv6 (`::ffff:1.2.3.4`); those are folded to IPv4 so that `10.0.0.0/8` matches
 * them and `::/0` (all of IPv6) does not.
 */
import { InvalidConfigError } from '../errors.js'

export interface IpAddress {
  family: 4 | 6
  /** 4 bytes for IPv4, 16 for IPv6. */
  bytes: Uint8Array
}

export interface Cidr extends IpAddress {
  /** Prefix length: 0–32 for IPv4, 0–128 for IPv6. */
  prefix: number
}

/** Parses an IPv4 or IPv6 address (IPv6 zone ids like `%eth0` are ignored); undefined if invalid. */
export function parseIp (text: string): IpAddress | undefined {
  if (text.includes(':')) {
    const v6 = parseIpv6(text.replace(/%[^%]*$/, ''))
    if (v6 === undefined) return undefined
    return isV4Mapped(v6) ? { family: 4, bytes: v6.slice(12) } : { family: 6, bytes: v6 }
  }
  const v4 = parseIpv4(text)
  return v4 === undefined ? undefined : { family: 4, bytes: v4 }
}

/** The canonical text of an address: dotted quad, or RFC 5952 IPv6 (IPv4-mapped folded to IPv4). */
export function normalizeIp (text: string): string | undefined {
  const ip = parseIp(text)
  return ip === undefined ? undefined : formatIp(ip)
}

export function formatIp (ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join('.')
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!)
  // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map(g => g.toString(16))
  if (best < 0) return hex.join(':')
  return hex.slice(0, best).join(':') + '::' + hex.slice(best + bestLen).join(':')
}

/**
 * Parses `addr/prefix` or a bare address (a single host). Host bits beyond the prefix are
 * ignored (`10.1.2.3/8` is `10.0.0.0/8`). `key` names the setting in the error.
 */
export function parseCidr (entry: string, key = 'ip-filter'): Cidr {
  const text = entry.trim()
  const slash = text.indexOf('/')
  const addrText = slash < 0 ? text : text.slice(0, slash)
  const ip = parseIp(addrText)
  if (ip === undefined) throw new InvalidConfigError(key, `${JSON.stringify(entry)} is not an IPv4/IPv6 address or CIDR (expected e.g. 203.0.113.0/24 or 2001:db8::/32)`)
  const max = ip.family === 4 ? 32 : 128
  let prefix = max
  if (slash >= 0) {
    const p = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p)) throw new InvalidConfigError(key, `${JSON.stringify(entry)}: prefix length "${p}" is not a number`)
    prefix = Number(p)
    // An IPv4-mapped CIDR (::ffff:10.0.0.0/104) counts its prefix over 128 bits.
    if (ip.family === 4 && addrText.includes(':')) {
      if (prefix < 96) throw new InvalidConfigError(key, `${JSON.stringify(entry)}: an IPv4-mapped prefix must be at least /96`)
      prefix -= 96
    }
    if (prefix > max) throw new InvalidConfigError(key, `${JSON.stringify(entry)}: prefix length ${prefix} exceeds ${max} for IPv${ip.family}`)
  }
  return { family: ip.family, prefix, bytes: mask(ip.bytes, prefix) }
}

export function cidrContains (cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false
  const full = cidr.prefix >> 3
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== ip.bytes[i]) return false
  const rest = cidr.prefix & 7
  if (rest === 0) return true
  const m = (0xff << (8 - rest)) & 0xff
  return ((ip.bytes[full]! ^ cidr.bytes[full]!) & m) === 0
}

export function formatCidr (cidr: Cidr): string {
  return `${formatIp(cidr)}/${cidr.prefix}`
}

/**
 * Options of {@link IpFilter}: address or CIDR strings (`10.0.0.0/8`, `::1`); a malformed
 * entry is an InvalidConfigError.
 */
export interface IpFilterOptions {
  /** When non-empty, only these networks may connect. An empty list means "no allow list". */
  allow?: readonly string[]
  /** These networks may never connect; deny wins over allow. */
  deny?: readonly string[]
}

/** An address let through an allow list until a time (the owner's "allow my IP for N hours"). */
export interface IpGrant { address: string, until: number }

/** Most grants one filter holds; the oldest goes first. */
const MAX_GRANTS = 32

/**
 * Per-tunnel visitor filter: deny wins; with an allow list, only the listed networks pass, and
 * the addresses granted until a time (grants widen an allow list; they never open a denied
 * address, and a filter without an allow list lets everyone in anyway).
 */
export class IpFilter {
  /** Networks allowed; empty means every address not denied. */
  readonly allow: readonly Cidr[]
  /** Networks refused; deny wins over allow. */
  readonly deny: readonly Cidr[]
  #grants: Array<{ cidr: Cidr, grant: IpGrant }> = []

  constructor (opts: IpFilterOptions = {}) {
    this.allow = (opts.allow ?? []).map(e => parseCidr(e, 'allow-ip'))
    this.deny = (opts.deny ?? []).map(e => parseCidr(e, 'deny-ip'))
  }

  /** True when the filter lets everyone in. */
  get open (): boolean {
    return this.allow.length === 0 && this.deny.length === 0
  }

  /** May a visitor from `addr` connect (at `now`, for grants)? Unparseable or missing addresses are refused unless the filter is open. */
  allows (addr: string | undefined, now = Date.now()): boolean {
    if (this.open) return true
    const ip = addr === undefined ? undefined : parseIp(addr)
    if (ip === undefined) return false
    if (this.deny.some(c => cidrContains(c, ip))) return false
    return this.allow.length === 0 || this.allow.some(c => cidrContains(c, ip)) || this.#grants.some(g => g.grant.until > now && cidrContains(g.cidr, ip))
  }

  /** Lets `address` (an IP or CIDR) through the allow list until `until` (ms); a grant for the same address is replaced. InvalidConfigError for a malformed one. */
  grant (address: string, until: number, now = Date.now()): void {
    const cidr = parseCidr(address, 'allow-ip')
    this.#grants = this.#grants.filter(g => g.grant.until > now && g.grant.address !== address)
    this.#grants.push({ cidr, grant: { address, until } })
    if (this.#grants.length > MAX_GRANTS) this.#grants.shift()
  }

  /** The grants still in force at `now`. */
  grants (now = Date.now()): IpGrant[] {
    return this.#grants.filter(g => g.grant.until > now).map(g => ({ ...g.grant }))
  }

  /** The rules as CIDR strings (what the constructor takes), to hand the same filter to another process. */
  get rules (): { allow: string[], deny: string[] } {
    return { allow: this.allow.map(formatCidr), deny: this.deny.map(formatCidr) }
  }

  /** One line for logs and CLI output, e.g. `allow 10.0.0.0/8, deny 10.9.0.0/16`. */
  describe (): string {
    const parts: string[] = []
    if (this.allow.length > 0) parts.push('allow ' + this.allow.map(formatCidr).join(', '))
    if (this.deny.length > 0) parts.push('deny ' + this.deny.map(formatCidr).join(', '))
    return parts.length === 0 ? 'open to every address' : parts.join('; ')
  }
}

const RISKY_PORTS: ReadonlyMap<number, string> = new Map([
  [22, 'SSH'],
  [23, 'telnet'],
  [445, 'SMB'],
  [3306, 'MySQL'],
  [3389, 'RDP'],
  [5432, 'PostgreSQL'],
  [5555, 'ADB (Android debugging)'],
  [5900, 'VNC'],
  [6379, 'Redis'],
  [27017, 'MongoDB'],
])

/**
 * A one-line warning when `port` is a well-known port that is dangerous to open to the whole
 * internet, or undefined.
 */
export function riskyPortHint (port: number): string | undefined {
  const what = RISKY_PORTS.get(port)
  if (what === undefined) return undefined
  return `port ${port} is usually ${what}, which attackers scan for: restrict who can connect with --allow-ip <your-ip>/32 (repeatable, CIDRs accepted)`
}

function parseIpv4 (text: string): Uint8Array | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!
    // Decimal only, no leading zeros (which some stacks read as octal).
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    out[i] = n
  }
  return out
}

function parseIpv6 (text: string): Uint8Array | undefined {
  if (text.length > 45 || text.length < 2) return undefined
  const out = new Uint8Array(16)
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const parseGroups = (s: string, allowV4Tail: boolean): number[] | undefined => {
    if (s === '') return []
    const groups: number[] = []
    const items = s.split(':')
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!
      if (allowV4Tail && i === items.length - 1 && item.includes('.')) {
        const v4 = parseIpv4(item)
        if (v4 === undefined) return undefined
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!)
        continue
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return undefined
      groups.push(parseInt(item, 16))
    }
    return groups
  }
  if (halves.length === 1) {
    const g = parseGroups(text, true)
    if (g === undefined || g.length !== 8) return undefined
    writeGroups(out, 0, g)
    return out
  }
  const head = parseGroups(halves[0]!, false)
  const tail = parseGroups(halves[1]!, true)
  if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined
  writeGroups(out, 0, head)
  writeGroups(out, 16 - 2 * tail.length, tail)
  return out
}

function writeGroups (out: Uint8Array, offset: number, groups: number[]): void {
  for (let i = 0; i < groups.length; i++) {
    out[offset + 2 * i] = groups[i]! >> 8
    out[offset + 2 * i + 1] = groups[i]! & 0xff
  }
}

function isV4Mapped (b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false
  return b[10] === 0xff && b[11] === 0xff
}

function mask (bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes.length)
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - 8 * i))
    out[i] = bytes[i]! & ((0xff << (8 - bits)) & 0xff)
  }
  return out
}
