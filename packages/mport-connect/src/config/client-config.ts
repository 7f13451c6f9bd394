/**
 * mport-connect's config file, checked whole: the parsed document (loadConfigFile) in, the
 * validated settings out, or an InvalidConfigError naming the key (and the tunnel). The same
 * check serves the start and every reload, so a file that starts a client also reloads it.
 */
import { parseProxyUrl, TRANSPORT_CHOICES, type ProxyConfig, type TransportChoice, type TunnelSpec } from 'mport/client'
import { checkKnownKeys, Secret } from 'mport/config'
import { LOG_LEVELS, type LogLevel } from 'mport/cli'
import { InvalidConfigError } from 'mport/errors'
import { parseByteSize, parseInspectAddr } from '../inspect/inspect-settings.js'
import { indirectSecret, parseTunnelList, type SecretSources } from './tunnel-entries.js'

/** The top-level keys of a client config file. */
export const CLIENT_CONFIG_KEYS = ['relay', 'token', 'token_file', 'token_env', 'fingerprint', 'ca', 'insecure', 'json', 'log_format', 'log_level', 'reconnect', 'retry', 'transport', 'proxy', 'relay_https_port', 'relay_http_port', 'inspect', 'inspect_addr', 'inspect_body_limit', 'tunnels'] as const

/** What a client config file says; a setting the file leaves out is undefined. */
export interface ClientFileConfig {
  /** Relay address, `host[:port]`. */
  relay?: string
  /** The access token, from `token`, `token_file` or `token_env`. */
  token?: Secret
  /** `sha256:<hex>` pin of the relay's certificate (checked by the bin, like the flag). */
  fingerprint?: string
  /** Path of a CA certificate file (PEM). */
  ca?: string
  insecure?: boolean
  json?: boolean
  /** `json` or `text` (the default): `log_format: json` is `json: true`. */
  logFormat?: 'json' | 'text'
  /** Lines below this level are dropped (`debug`: every visitor connection). */
  logLevel?: LogLevel
  reconnect?: boolean
  retry?: boolean
  /** How to reach the relay (`tls`, `wss`, `ws`, `auto`). */
  transport?: TransportChoice
  /** A proxy URL (parseProxyUrl); the file should then be private, like one with a token. */
  proxy?: ProxyConfig
  /** The relay's shared ports, for wss and ws. */
  relayHttpsPort?: number
  relayHttpPort?: number
  /** The tunnels, in file order, names unique. */
  tunnels?: TunnelSpec[]
  /** The inspector of http tunnels: on or off, where it listens, the body cap (checked as the flags are). */
  inspect?: boolean
  inspectAddr?: string
  inspectBodyLimit?: string | number
}

/**
 * Checks a parsed client config document from `file`: unknown keys (with a suggestion), the
 * types, the secrets named by `token_file` / `token_env` (read through `sources`), and every
 * tunnel (see parseTunnelList). Throws InvalidConfigError; returns only valid settings.
 */
export function validateClientConfig (doc: Record<string, unknown>, file: string, sources: SecretSources): ClientFileConfig {
  checkKnownKeys(doc, CLIENT_CONFIG_KEYS, file)
  const out: ClientFileConfig = {}
  const given = (key: string): boolean => doc[key] !== undefined && doc[key] !== null
  for (const key of ['relay', 'fingerprint', 'ca'] as const) {
    if (!given(key)) continue
    const v = doc[key]
    if (typeof v !== 'string') throw new InvalidConfigError(key, `"${key}" in ${file} must be a string, not ${JSON.stringify(v)}`)
    out[key] = v
  }
  for (const key of ['insecure', 'json', 'reconnect', 'retry', 'inspect'] as const) {
    if (!given(key)) continue
    const v = doc[key]
    if (typeof v !== 'boolean') throw new InvalidConfigError(key, `"${key}" in ${file} must be true or false, not ${JSON.stringify(v)}`)
    out[key] = v
  }
  for (const [key, choices] of [['log_format', ['json', 'text']], ['log_level', LOG_LEVELS]] as const) {
    if (!given(key)) continue
    const v = doc[key]
    if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) throw new InvalidConfigError(key, `"${key}" in ${file} must be one of ${choices.join(', ')}, not ${JSON.stringify(v)}`)
  }
  if (given('log_format')) out.logFormat = doc.log_format as 'json' | 'text'
  if (given('log_level')) out.logLevel = doc.log_level as LogLevel
  if (given('transport')) {
    const v = doc.transport
    if (typeof v !== 'string' || !(TRANSPORT_CHOICES as readonly string[]).includes(v)) throw new InvalidConfigError('transport', `"transport" in ${file} must be one of ${TRANSPORT_CHOICES.join(', ')}, not ${JSON.stringify(v)}`)
    out.transport = v as TransportChoice
  }
  if (given('proxy')) {
    if (typeof doc.proxy !== 'string') throw new InvalidConfigError('proxy', `"proxy" in ${file} must be a proxy URL string`)
    out.proxy = parseProxyUrl(doc.proxy, `proxy in ${file}`)
  }
  for (const [key, field] of [['relay_https_port', 'relayHttpsPort'], ['relay_http_port', 'relayHttpPort']] as const) {
    if (!given(key)) continue
    const v = doc[key]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw new InvalidConfigError(key, `"${key}" in ${file} must be a port number (1-65535), not ${JSON.stringify(v)}`)
    out[field] = v
  }
  if (given('inspect_addr')) {
    if (typeof doc.inspect_addr !== 'string') throw new InvalidConfigError('inspect_addr', `"inspect_addr" in ${file} must be host:port, not ${JSON.stringify(doc.inspect_addr)}`)
    parseInspectAddr(doc.inspect_addr, 'inspect_addr')
    out.inspectAddr = doc.inspect_addr
  }
  if (given('inspect_body_limit')) {
    const v = doc.inspect_body_limit
    if (typeof v !== 'string' && typeof v !== 'number') throw new InvalidConfigError('inspect_body_limit', `"inspect_body_limit" in ${file} must be a size like 1048576 or "512KiB", not ${JSON.stringify(v)}`)
    parseByteSize(v, 'inspect_body_limit')
    out.inspectBodyLimit = v
  }
  const token = indirectSecret(doc, 'token', file, sources)
  if (token !== undefined) out.token = new Secret(token)
  if (given('tunnels')) out.tunnels = parseTunnelList(doc.tunnels, file, sources)
  return out
}
