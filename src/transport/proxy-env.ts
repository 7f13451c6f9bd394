/**
 * The proxy for a connection to the relay from the environment, read the way curl reads it:
 * `https_proxy`/`HTTPS_PROXY` for TLS connections (direct TLS and `wss`), only lowercase
 * `http_proxy` for plain HTTP (`ws`; curl ignores the uppercase one, which CGI lets a request
 * header set), then `all_proxy`/`ALL_PROXY`; lowercase wins over uppercase. `no_proxy`/`NO_PROXY`
 * lists hosts to reach directly: `*` for all, a name (which also matches its subdomains, with or
 * without a leading dot), an IP address, or a CIDR range; ports in entries are ignored.
 */
import net from 'node:net'
import { parseProxyUrl, type ProxyConfig } from './proxy-url.js'

/** The scheme of the connection a proxy is wanted for: `https` for TLS, `http` for plain HTTP. */
export type ProxiedScheme = 'https' | 'http'

/**
 * The proxy the environment names for a connection to `host` over `scheme`, or undefined
 * (none set, or NO_PROXY excludes the host). A malformed value is an InvalidConfigError naming
 * the variable.
 */
export function proxyFromEnv (env: NodeJS.ProcessEnv, scheme: ProxiedScheme, host: string): ProxyConfig | undefined {
  const names = scheme === 'https' ? ['https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'] : ['http_proxy', 'all_proxy', 'ALL_PROXY']
  const name = names.find(n => env[n] !== undefined && env[n] !== '')
  if (name === undefined) return undefined
  if (bypassesProxy(env.no_proxy ?? env.NO_PROXY ?? '', host)) return undefined
  return parseProxyUrl(env[name]!, name)
}

/** True when the NO_PROXY list `list` says to reach `host` directly. */
export function bypassesProxy (list: string, host: string): boolean {
  const target = unbracket(host.trim().toLowerCase().replace(/\.$/, ''))
  for (const raw of list.split(',')) {
    let entry = raw.trim().toLowerCase()
    if (entry === '') continue
    if (entry === '*') return true
    entry = stripPort(entry)
    if (entry.includes('/')) {
      if (inCidr(target, entry)) return true
      continue
    }
    entry = unbracket(entry).replace(/\.$/, '')
    if (net.isIP(entry) !== 0) {
      if (net.isIP(target) !== 0 && sameIp(entry, target)) return true
      continue
    }
    const name = entry.startsWith('.') ? entry.slice(1) : entry.startsWith('*.') ? entry.slice(2) : entry
    if (target === name || target.endsWith(`.${name}`)) return true
  }
  return false
}

function unbracket (h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h
}

/** `host:port` → `host`, `[v6]:port` → `[v6]`; a bare IPv6 address stays whole. */
function stripPort (entry: string): string {
  if (entry.startsWith('[')) {
    const end = entry.indexOf(']')
    return end < 0 ? entry : entry.slice(0, end + 1)
  }
  const colons = entry.split(':').length - 1
  return colons === 1 && !entry.includes('/') ? entry.slice(0, entry.indexOf(':')) : entry
}

function sameIp (a: string, b: string): boolean {
  const list = new net.BlockList()
  list.addAddress(a, net.isIPv6(a) ? 'ipv6' : 'ipv4')
  return list.check(b, net.isIPv6(b) ? 'ipv6' : 'ipv4')
}

function inCidr (ip: string, cidr: string): boolean {
  const [base = '', bits = ''] = cidr.split('/')
  const family = net.isIPv6(base) ? 'ipv6' : net.isIPv4(base) ? 'ipv4' : undefined
  const prefix = Number(bits)
  if (family === undefined || net.isIP(ip) === 0 || !Number.isInteger(prefix)) return false
  if (prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) return false
  const list = new net.BlockList()
  list.addSubnet(base, prefix, family)
  return list.check(ip, net.isIPv6(ip) ? 'ipv6' : 'ipv4')
}
