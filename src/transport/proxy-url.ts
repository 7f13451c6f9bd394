/**
 * A proxy on the way to the relay, as `--proxy`, MPORT_PROXY or HTTPS_PROXY/ALL_PROXY give it:
 * `http://[user:pass@]host[:port]` (HTTP CONNECT, and plain HTTP requests for `ws`),
 * `socks5://…` (the client resolves the relay's name) or `socks5h://…` (the proxy resolves it).
 * Like curl, a URL without a scheme is an HTTP proxy and the default port is 1080.
 */
import { InvalidConfigError } from '../errors.js'
import { formatHostPort } from './tcp.js'

/** The kinds of proxy the client speaks. */
export type ProxyKind = 'http' | 'socks5' | 'socks5h'

/** A parsed proxy URL. `label` names it in messages and logs: never the credentials. */
export interface ProxyConfig {
  kind: ProxyKind
  host: string
  port: number
  username?: string
  password?: string
  /** `scheme://host:port`, with `user:***@` when it has credentials. */
  label: string
}

const DEFAULT_PROXY_PORT = 1080

/** Parses a proxy URL; throws InvalidConfigError (naming `what`, never echoing a password) when it is not one. */
export function parseProxyUrl (text: string, what = 'proxy'): ProxyConfig {
  const trimmed = text.trim()
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new InvalidConfigError(what, 'not a proxy URL: use http://[user:pass@]host:port, socks5://… or socks5h://…')
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase()
  if (scheme !== 'http' && scheme !== 'socks5' && scheme !== 'socks5h') {
    throw new InvalidConfigError(what, `proxy scheme "${scheme}" is not supported: use http, socks5 or socks5h`)
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  if (host === '') throw new InvalidConfigError(what, 'the proxy URL has no host')
  if (url.pathname !== '/' && url.pathname !== '') throw new InvalidConfigError(what, 'a proxy URL has no path')
  const port = url.port === '' ? DEFAULT_PROXY_PORT : Number(url.port)
  const username = url.username === '' ? undefined : decodeURIComponent(url.username)
  const password = url.password === '' ? undefined : decodeURIComponent(url.password)
  return {
    kind: scheme,
    host,
    port,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    label: `${scheme}://${username !== undefined ? `${encodeURIComponent(username)}:***@` : ''}${formatHostPort(host, port)}`,
  }
}
