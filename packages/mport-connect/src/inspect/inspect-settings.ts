/**
 * The inspector's settings for mport-connect: the flags (`--inspect`, `--inspect-addr`,
 * `--inspect-body-limit`), their config keys, their checks, and starting it: the recorder and
 * its server on loopback, the first free port from 4040 on.
 */
import type { TunnelSpec, TunnelStatus } from 'mport/client'
import { InvalidConfigError } from 'mport/errors'
import { InspectServer } from './inspect-server.js'
import { inspectedTunnels } from './inspected-tunnels.js'
import { Inspector, INSPECTOR_DEFAULTS } from './inspector.js'

/** The inspector's flags, for the bin's yargs options. */
export const INSPECT_FLAGS = {
  inspect: { type: 'boolean', describe: 'Record the requests of http tunnels and serve the inspector page and API (default on when there is an http tunnel; --inspect=false turns it off)' },
  'inspect-addr': { type: 'string', describe: 'Where the inspector listens, host:port (default 127.0.0.1:4040; the next free port when taken). Loopback unless you name another address' },
  'inspect-body-limit': { type: 'string', describe: 'Bytes kept of each request and response body (default 1MiB; the rest is counted): 262144, 512KiB, 4MB' },
} as const

/** Where and how the inspector runs. */
export interface InspectSettings {
  enabled: boolean
  host: string
  port: number
  bodyLimit: number
}

const DEFAULT_PORT = 4040
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i

/** `1048576`, `512KiB`, `4MB`, `1m`: bytes (binary units for k/m/g, with or without `iB`/`B`). */
export function parseByteSize (value: string | number, key: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?b)?\s*$/i.exec(String(value))
  if (m === null) throw new InvalidConfigError(key, `${JSON.stringify(value)} is not a size: use bytes or a unit, like 262144, 512KiB or 4MB`)
  const n = Math.round(Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase()))
  if (n < 1 || n > 256 * 1024 * 1024) throw new InvalidConfigError(key, `${JSON.stringify(value)} must be between 1 byte and 256 MiB`)
  return n
}

/** `host:port` (`[v6]:port`; port 0: any free port) where the inspector listens. */
export function parseInspectAddr (value: string, key: string): { host: string, port: number } {
  // Not parseHostPort: port 0 (any free port) is fine here.
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim())
  if (m === null || Number(m[3]) > 65535) throw new InvalidConfigError(key, `${JSON.stringify(value)} is not host:port, like 127.0.0.1:4040 ([::1]:4040 for IPv6; port 0 for any)`)
  return { host: m[1] ?? m[2]!, port: Number(m[3]) }
}

/** The settings from flags (or file keys) and the tunnels: on by default when some tunnel is http. */
export function inspectSettings (given: { inspect?: boolean | undefined, addr?: string | undefined, bodyLimit?: string | number | undefined }, tunnels: readonly TunnelSpec[]): InspectSettings {
  let host = '127.0.0.1'
  let port = DEFAULT_PORT
  if (given.addr !== undefined) {
    ({ host, port } = parseInspectAddr(given.addr, 'inspect-addr'))
  }
  const bodyLimit = given.bodyLimit === undefined ? INSPECTOR_DEFAULTS.bodyLimit : parseByteSize(given.bodyLimit, 'inspect-body-limit')
  return { enabled: given.inspect ?? tunnels.some(t => t.kind === 'http'), host, port, bodyLimit }
}

/** A running inspector: the recorder (give `inspector.tap` to the Client) and its server. */
export interface RunningInspector {
  inspector: Inspector
  server: InspectServer
  url: string
  /** Set when the address asked for was taken and another port was used. */
  movedFrom?: number
  /** Set when the inspector is reachable from other machines. */
  exposed: boolean
}

/** Creates the recorder; `listen` then serves it (after the Client exists, whose tunnels it lists). */
export function createInspector (s: InspectSettings): Inspector {
  return new Inspector({ bodyLimit: s.bodyLimit })
}

/** Serves `inspector` on the settings' address, or the next free port (then any free one). */
export async function serveInspector (inspector: Inspector, s: InspectSettings, tunnels: () => { statuses: readonly TunnelStatus[], specs: readonly TunnelSpec[] }): Promise<RunningInspector> {
  const list = (): ReturnType<typeof inspectedTunnels> => { const t = tunnels(); return inspectedTunnels(t.statuses, t.specs) }
  let server = new InspectServer({ inspector, tunnels: list, host: s.host, port: s.port, tryNext: 10 })
  try {
    await server.listen()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    server = new InspectServer({ inspector, tunnels: list, host: s.host, port: 0 })
    await server.listen()
  }
  const port = server.address.port
  return { inspector, server, url: server.url, ...(s.port !== 0 && port !== s.port ? { movedFrom: s.port } : {}), exposed: !LOOPBACK.test(s.host) }
}
