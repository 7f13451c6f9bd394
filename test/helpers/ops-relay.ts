/**
 * A relay bin with its ops listener on a free loopback port (`--ops-port 0`), found from its
 * `--json` listening event, and clients of it: the real processes the ops tests scrape.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { relayArgs, spawnBin, type BinProcess } from './spawn.js'

export interface OpsRelay {
  proc: BinProcess
  port: number
  opsPort: number
  fingerprint: string
  token: string
  /** The REST API's base URL, when started with --api-port. */
  api: string | undefined
  /** GET /metrics: the text, failing on a status other than 200. */
  scrape (): Promise<string>
  /** GET on the ops listener. */
  get (route: string): Promise<Response>
}

/** Starts `mport-relay --json --ops-port 0` (plus `extra`) with its data in `dataDir`. */
export async function startOpsRelay (dataDir: string, extra: string[] = [], env?: Record<string, string>): Promise<OpsRelay> {
  const proc = spawnBin('mport-relay', relayArgs(dataDir, ['--json', '--ops-port', '0', ...extra]), env !== undefined ? { env } : {})
  const ev = await proc.waitEvent('listening', () => true, 60_000)
  if (ev.opsHost !== '127.0.0.1' || typeof ev.opsPort !== 'number') throw new Error(`the listening event names no loopback ops listener: ${JSON.stringify(ev)}`)
  const opsPort = ev.opsPort
  const get = (route: string): Promise<Response> => fetch(`http://127.0.0.1:${opsPort}${route}`)
  const apiLine = typeof ev.msg === 'string' ? /api:\s+(http:\/\/127\.0\.0\.1:\d+)\/docs/.exec(ev.msg)?.[1] : undefined
  return {
    proc,
    port: ev.port as number,
    opsPort,
    fingerprint: ev.fingerprint as string,
    token: readFileSync(path.join(dataDir, 'token'), 'utf8').trim(),
    api: typeof ev.apiPort === 'number' ? `http://127.0.0.1:${ev.apiPort}` : apiLine,
    get,
    scrape: async () => {
      const res = await get('/metrics')
      if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`)
      return await res.text()
    },
  }
}

/** `mport-connect <tunnels> --relay … --json` against `relay` with `token` (the owner's by default). */
export function startClient (relay: OpsRelay, tunnels: string[], extra: string[] = [], token = relay.token): BinProcess {
  return spawnBin('mport-connect', [...tunnels, '--relay', `127.0.0.1:${relay.port}`, '--token', token, '--fingerprint', relay.fingerprint, '--json', '--no-lease-file', ...extra])
}
