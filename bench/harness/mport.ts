/**
 * mport as a contestant: build it once, run its bins (the build, or the source through tsx),
 * and bring up a relay plus one `mport-connect` on loopback with a fresh HOME and data dir.
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { jsonOf } from './port-child.js'
import { LineReader, ROOT, killChild, spawnNode, type NodeWrapper } from './procs.js'

const START_TIMEOUT = 20_000

/**
 * Builds mport so the contestant runs the real dist bins; falls back to the source bins (through
 * tsx) when the build fails. BENCH_NO_BUILD=1 skips it, BENCH_MPORT_FROM_SOURCE=1 always uses source.
 */
export function buildMport (log: (line: string) => void): void {
  if (process.env.BENCH_NO_BUILD !== undefined || process.env.BENCH_MPORT_FROM_SOURCE !== undefined) return
  log('building mport (npm run build) …')
  try {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 })
  } catch (err) {
    log(`npm run build failed (${(err as Error).message.split('\n')[0]}); running mport from source instead`)
    process.env.BENCH_MPORT_FROM_SOURCE = '1'
  }
}

/** The built bins of checkout `root` (its workspace packages' dist), or undefined when it is not built. */
function builtBins (root: string): { relay: string, connect: string } | undefined {
  const relay = path.join(root, 'packages/mport-relay/dist/bin/mport-relay.js')
  const connect = path.join(root, 'packages/mport-connect/dist/bin/mport-connect.js')
  return existsSync(relay) && existsSync(connect) ? { relay, connect } : undefined
}

/**
 * Where mport's bins are run from: the build when it is there (the benches build first), else
 * source through tsx. Another checkout (`root`, for an A/B) must be built.
 */
export function mportBins (root = ROOT): { pre: string[], relay: string, connect: string } {
  const built = builtBins(root)
  if (root !== ROOT) {
    if (built === undefined) throw new Error(`${root} is not built: run npm ci && npm run build there`)
    return { pre: [], ...built }
  }
  if (built !== undefined && process.env.BENCH_MPORT_FROM_SOURCE === undefined) return { pre: [], ...built }
  return { pre: ['--import', 'tsx'], relay: path.join(ROOT, 'bin/mport-relay.ts'), connect: path.join(ROOT, 'bin/mport-connect.ts') }
}

const flagsOf = (value = ''): string[] => value.split(' ').filter(Boolean)

/** Extra node flags for mport's processes (BENCH_MPORT_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). */
const mportFlags = (): string[] => flagsOf(process.env.BENCH_MPORT_NODE_FLAGS)

/**
 * Node flags for the other sides of an A/B (BENCH_MPORT_B): BENCH_MPORT_B_NODE_FLAGS when it is
 * set, so that one checkout can be run against itself with other flags; else BENCH_MPORT_NODE_FLAGS.
 */
export const mportOtherFlags = (): string[] => flagsOf(process.env.BENCH_MPORT_B_NODE_FLAGS ?? process.env.BENCH_MPORT_NODE_FLAGS)

export interface Listening { port: number, fingerprint: string, httpPort?: number, connect?: string, tokenFile?: string }
export interface TunnelLine { remotePort?: number, url?: string }

export interface MportPair {
  relay: ChildProcess
  client: ChildProcess
  /** The relay's `listening` event. */
  listening: Listening
  /** The client's first `tunnel` event. */
  tunnel: TunnelLine
  /** Kills both (SIGTERM first, so a --cpu-prof profile is written) and removes the temp dir. */
  stop: () => Promise<void>
}

/**
 * A relay with `relayArgs` beyond the loopback defaults, and one `mport-connect connectArgs…`
 * pointed at it with the relay's token and fingerprint; resolves once the tunnel is up. `root` is
 * the checkout whose build runs (another one for an A/B: BENCH_MPORT_B); `wrapper` runs both
 * processes under a tool; `nodeFlags` go to both node processes.
 * `connectArgs` may depend on the relay's `listening` event (its shared ports, for ws).
 */
export async function startMport (relayArgs: string[], connectArgs: string[] | ((listening: Listening) => string[]), root = ROOT, wrapper?: NodeWrapper, nodeFlags = mportFlags()): Promise<MportPair> {
  const bins = mportBins(root)
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mport-bench-'))
  const home = path.join(tmp, 'home')
  mkdirSync(home)
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') }
  const relay = spawnNode([...nodeFlags, ...bins.pre, bins.relay, '--host', '127.0.0.1', '--port', '0', '--bind-host', '127.0.0.1',
    '--public-host', '127.0.0.1', '--data-dir', path.join(tmp, 'data'), '--json', ...relayArgs], { env }, wrapper)
  const relayOut = new LineReader(relay, 'mport-relay')
  let client: ChildProcess | undefined
  const stop = async (): Promise<void> => {
    await Promise.all((client === undefined ? [relay] : [client, relay]).map(c => killChild(c, 5000)))
    rmSync(tmp, { recursive: true, force: true })
  }
  try {
    const listening = jsonOf<Listening>(await relayOut.waitLine(l => l.includes('"event":"listening"'), wrapper?.startTimeoutMs ?? START_TIMEOUT, 'listening'))
    // The printed command names the token file (`--token $(cat …)`), not the token: read the file.
    const token = readFileSync(listening.tokenFile ?? path.join(tmp, 'data/token'), 'utf8').trim()
    const args = typeof connectArgs === 'function' ? connectArgs(listening) : connectArgs
    client = spawnNode([...nodeFlags, ...bins.pre, bins.connect, ...args, '--relay', `127.0.0.1:${listening.port}`,
      '--token', token, '--fingerprint', listening.fingerprint, '--json'], { env }, wrapper)
    const clientOut = new LineReader(client, 'mport-connect')
    const tunnel = jsonOf<TunnelLine>(await clientOut.waitLine(l => l.includes('"event":"tunnel"'), wrapper?.startTimeoutMs ?? START_TIMEOUT, 'tunnel'))
    return { relay, client, listening, tunnel, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
