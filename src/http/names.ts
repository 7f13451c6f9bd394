/**
 * Tunnel names on a shared HTTP/HTTPS port. A tunnel is reached as `<label>.<base domain>`
 * (a random readable label, or one the client asks for with --subdomain) or under a custom
 * hostname (--hostname). This module validates requested names, makes random ones, and maps a
 * request's Host or SNI back to the name to look up.
 */
import { randomInt } from 'node:crypto'
import { InvalidHostnameError, ReservedNameError } from '../errors.js'
import { isDnsName } from './request-head.js'

/** Subdomains a client may not take: they look official or belong to the relay itself. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'www', 'api', 'admin', 'relay', 'mport', 'app', 'dashboard', 'status', 'docs', 'help', 'support',
  'mail', 'smtp', 'imap', 'pop', 'ftp', 'ns', 'ns1', 'ns2', 'dns', 'mx', 'autoconfig', 'autodiscover',
  'localhost', 'login', 'auth', 'account', 'accounts', 'billing', 'root', 'static', 'cdn', 'assets',
])

const ADJECTIVES = [
  'amber', 'bold', 'brave', 'bright', 'calm', 'clever', 'cosy', 'crisp', 'eager', 'fancy',
  'gentle', 'glad', 'golden', 'happy', 'jolly', 'keen', 'kind', 'lively', 'lucky', 'mellow',
  'merry', 'misty', 'nimble', 'noble', 'proud', 'quick', 'quiet', 'rapid', 'rosy', 'shiny',
  'silent', 'silver', 'sleepy', 'snowy', 'sunny', 'swift', 'tidy', 'vivid', 'warm', 'witty',
] as const

const NOUNS = [
  'badger', 'beacon', 'brook', 'canyon', 'cedar', 'comet', 'coral', 'crane', 'delta', 'falcon',
  'fern', 'fjord', 'garden', 'harbor', 'heron', 'island', 'lagoon', 'lantern', 'maple', 'meadow',
  'meteor', 'orchid', 'otter', 'panda', 'pebble', 'pine', 'planet', 'prairie', 'quartz', 'raven',
  'reef', 'river', 'robin', 'summit', 'thistle', 'tiger', 'tundra', 'valley', 'walrus', 'willow',
] as const

/** Word lists behind randomName(), exported for tests. */
export const NAME_WORDS = { adjectives: ADJECTIVES, nouns: NOUNS } as const

/** A uniform random integer in [0, max); injectable for tests. */
export type RandomInt = (max: number) => number

/** A random readable label, `<adjective>-<noun>-<4 digits>` (40 × 40 × 10 000 = 16 million names). */
export function randomName (rand: RandomInt = n => randomInt(n)): string {
  const a = ADJECTIVES[rand(ADJECTIVES.length)]!
  const n = NOUNS[rand(NOUNS.length)]!
  const d = String(rand(10_000)).padStart(4, '0')
  return `${a}-${n}-${d}`
}

/**
 * Validates a requested subdomain label and returns it lowercased. Throws InvalidHostnameError
 * (not a DNS label) or ReservedNameError.
 */
export function validateSubdomain (label: string): string {
  const name = label.trim().toLowerCase()
  if (name === '') throw new InvalidHostnameError(label, 'the name is empty')
  if (name.includes('.')) throw new InvalidHostnameError(label, 'a subdomain is one label, without dots (use --hostname for a full domain name)')
  if (name.length > 63) throw new InvalidHostnameError(label, `a label has at most 63 characters, this one has ${name.length}`)
  if (!/^[a-z0-9-]+$/.test(name)) throw new InvalidHostnameError(label, 'only letters, digits and hyphens are allowed')
  if (name.startsWith('-') || name.endsWith('-')) throw new InvalidHostnameError(label, 'a label cannot start or end with a hyphen')
  if (/^..--/.test(name)) throw new InvalidHostnameError(label, 'hyphens in the 3rd and 4th characters are reserved for IDNA (xn--)')
  if (RESERVED_NAMES.has(name)) throw new ReservedNameError(name)
  return name
}

/**
 * Validates a custom hostname (`app.example.org`) and returns it lowercased without a trailing
 * dot. It needs at least two labels, must not be an IP address, and must not be the base
 * domain or a name under it (those are subdomains).
 */
export function validateHostname (hostname: string, baseDomain?: string): string {
  const name = hostname.trim().toLowerCase().replace(/\.$/, '')
  if (name === '') throw new InvalidHostnameError(hostname, 'the hostname is empty')
  if (name.length > 253) throw new InvalidHostnameError(hostname, `a hostname has at most 253 characters, this one has ${name.length}`)
  if (!isDnsName(name)) throw new InvalidHostnameError(hostname, 'each dot-separated label must be 1–63 letters, digits or inner hyphens')
  if (!name.includes('.')) throw new InvalidHostnameError(hostname, 'a custom hostname needs at least two labels (like app.example.org)')
  if (/^[0-9.]+$/.test(name)) throw new InvalidHostnameError(hostname, 'an IP address is not a hostname')
  if (baseDomain !== undefined) {
    const base = baseDomain.toLowerCase().replace(/\.$/, '')
    if (name === base || name.endsWith('.' + base)) {
      throw new InvalidHostnameError(hostname, `names under ${base} are subdomains: use --subdomain instead`)
    }
  }
  return name
}

/** What a request's host name routes to, as routeHost decides it. */
export type Route =
  /** `<label>.<base>`: look the label up among subdomain tunnels. */
  | { kind: 'subdomain', label: string }
  /** Any other name: look it up among custom hostnames. */
  | { kind: 'hostname', hostname: string }
  /** The base domain itself (no tunnel there). */
  | { kind: 'apex' }

/**
 * Maps a request's host (Host header or SNI, already lowercased and without port) to what to
 * look up. Only one label directly under the base domain is a subdomain; deeper names
 * (`a.b.<base>`) are looked up as custom hostnames and normally miss.
 */
export function routeHost (host: string, baseDomain: string | undefined): Route {
  const name = host.toLowerCase().replace(/\.$/, '')
  if (baseDomain !== undefined && baseDomain !== '') {
    const base = baseDomain.toLowerCase().replace(/\.$/, '')
    if (name === base) return { kind: 'apex' }
    if (name.endsWith('.' + base)) {
      const label = name.slice(0, -(base.length + 1))
      if (label !== '' && !label.includes('.')) return { kind: 'subdomain', label }
    }
  }
  return { kind: 'hostname', hostname: name }
}
