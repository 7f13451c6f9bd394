/**
 * A tunnel through a SOCKS5 proxy (RFC 1928), with username/password authentication (RFC
 * 1929) when the proxy URL has credentials. `socks5` resolves the relay's name here and sends
 * the address; `socks5h` sends the name for the proxy to resolve (what a network that blocks
 * DNS needs). Reply codes other than 0 become ProxyRefusedError with the code and its meaning.
 */
import { lookup } from 'node:dns/promises'
import net from 'node:net'
import { ProxyAuthFailedError, ProxyRefusedError, RelayUnreachableError } from '../errors.js'
import { ProxyReplyReader } from './proxy-reader.js'
import type { ProxyConfig } from './proxy-url.js'
import { formatHostPort, unreachableReason } from './tcp.js'

const VERSION = 0x05
const AUTH_NONE = 0x00
const AUTH_USERPASS = 0x02
const AUTH_NO_ACCEPTABLE = 0xff
const USERPASS_VERSION = 0x01
const CMD_CONNECT = 0x01
const ATYP_IPV4 = 0x01
const ATYP_DOMAIN = 0x03
const ATYP_IPV6 = 0x04

/** RFC 1928 §6 reply codes. */
export const SOCKS5_REPLIES: Readonly<Record<number, string>> = {
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
}

/**
 * Asks the SOCKS5 proxy on `socket` (connected to it) for a connection to `host:port`;
 * resolves with the same socket, now carrying it.
 */
export async function socks5Connect (socket: net.Socket, proxy: ProxyConfig, host: string, port: number): Promise<net.Socket> {
  const target = formatHostPort(host, port)
  const reader = new ProxyReplyReader(socket)
  const lost = (err: unknown): RelayUnreachableError => new RelayUnreachableError(target, `through proxy ${proxy.label}: ${unreachableReason(err)}`, { cause: err })
  const withAuth = proxy.username !== undefined
  // The destination is worked out first: a failed lookup should not leave a half-greeted proxy.
  const address = await destination(proxy, host)
  socket.write(Buffer.from(withAuth ? [VERSION, 2, AUTH_NONE, AUTH_USERPASS] : [VERSION, 1, AUTH_NONE]))
  let reply: Buffer
  try {
    reply = await reader.read(2)
  } catch (err) { throw lost(err) }
  if (reply[0] !== VERSION) throw new ProxyRefusedError(proxy.label, target, `not a SOCKS5 proxy (version byte ${reply[0]})`)
  const method = reply[1]
  if (method === AUTH_NO_ACCEPTABLE) {
    throw new ProxyAuthFailedError(proxy.label, withAuth ? 'the proxy accepts none of the offered methods (none, username/password)' : 'the proxy wants authentication; give user:pass in the proxy URL')
  }
  if (method === AUTH_USERPASS) {
    if (!withAuth) throw new ProxyRefusedError(proxy.label, target, 'the proxy chose username/password, which was not offered')
    const user = Buffer.from(proxy.username!, 'utf8')
    const pass = Buffer.from(proxy.password ?? '', 'utf8')
    if (user.length > 255 || pass.length > 255) throw new ProxyAuthFailedError(proxy.label, 'username and password are at most 255 bytes each in SOCKS5')
    socket.write(Buffer.concat([Buffer.from([USERPASS_VERSION, user.length]), user, Buffer.from([pass.length]), pass]))
    let status: Buffer
    try {
      status = await reader.read(2)
    } catch (err) { throw lost(err) }
    if (status[1] !== 0) throw new ProxyAuthFailedError(proxy.label, `username/password rejected (status ${status[1]})`)
  } else if (method !== AUTH_NONE) {
    throw new ProxyRefusedError(proxy.label, target, `the proxy chose authentication method ${method}, which was not offered`)
  }
  const portBytes = Buffer.alloc(2)
  portBytes.writeUInt16BE(port)
  socket.write(Buffer.concat([Buffer.from([VERSION, CMD_CONNECT, 0x00]), address, portBytes]))
  let head: Buffer
  try {
    head = await reader.read(4)
  } catch (err) { throw lost(err) }
  if (head[0] !== VERSION) throw new ProxyRefusedError(proxy.label, target, `not a SOCKS5 reply (version byte ${head[0]})`)
  const code = head[1]!
  if (code !== 0) throw new ProxyRefusedError(proxy.label, target, `SOCKS5 reply ${code} (${SOCKS5_REPLIES[code] ?? 'unassigned'})`, { reply: code })
  // The bound address follows; its length depends on its type.
  const atyp = head[3]
  if (atyp !== ATYP_IPV4 && atyp !== ATYP_IPV6 && atyp !== ATYP_DOMAIN) throw new ProxyRefusedError(proxy.label, target, `bad address type ${atyp} in the SOCKS5 reply`)
  try {
    const length = atyp === ATYP_IPV4 ? 4 : atyp === ATYP_IPV6 ? 16 : (await reader.read(1))[0]!
    await reader.read(length + 2)
  } catch (err) { throw lost(err) }
  return reader.release()
}

/** DST.ADDR with its type byte: the name for socks5h, else the address it resolves to here. */
async function destination (proxy: ProxyConfig, host: string): Promise<Buffer> {
  let ip = net.isIP(host) !== 0 ? host : undefined
  if (ip === undefined && proxy.kind === 'socks5h') {
    const name = Buffer.from(host, 'utf8')
    if (name.length > 255) throw new RelayUnreachableError(host, 'host name longer than 255 bytes')
    return Buffer.concat([Buffer.from([ATYP_DOMAIN, name.length]), name])
  }
  if (ip === undefined) {
    try {
      ip = (await lookup(host)).address
    } catch (err) {
      throw new RelayUnreachableError(host, unreachableReason(err), { cause: err })
    }
  }
  if (net.isIPv4(ip)) return Buffer.from([ATYP_IPV4, ...ip.split('.').map(Number)])
  return Buffer.concat([Buffer.from([ATYP_IPV6]), ipv6Bytes(ip)])
}

function ipv6Bytes (ip: string): Buffer {
  const [headPart = '', tailPart] = ip.split('::')
  const head = headPart === '' ? [] : headPart.split(':')
  const tail = tailPart === undefined || tailPart === '' ? [] : tailPart.split(':')
  const groups = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}
