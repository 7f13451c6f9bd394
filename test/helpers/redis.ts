/**
 * A throwaway Redis for tests: Debian's redis-server on 127.0.0.1 at a free port, nothing
 * saved to disk. `restart()` kills it (SIGKILL: everything it held is gone) and starts an
 * empty one on the same port, as a crashed and restarted Redis looks to its clients.
 *
 * When redis-server is not installed, `redisTestOptions()` skips with the reason, except
 * under CI (`process.env.CI`), where a missing Redis is a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'
import { closedPort } from './ports.js'
import { waitFor, withTimeout } from './wait.js'

const REDIS_SERVER = '/usr/bin/redis-server'

export interface RedisServer {
  port: number
  url: string
  /** Kills it and starts an empty one on the same port. */
  restart (): Promise<void>
  stop (): Promise<void>
}

export function redisTestOptions (env: NodeJS.ProcessEnv = process.env): { skip?: string } {
  if (existsSync(REDIS_SERVER) || env.CI) return {}
  return { skip: `Redis is not installed (no ${REDIS_SERVER}); install it with "apt-get install -y redis-server" to run these tests` }
}

export async function startRedis (): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`Redis is not installed (no ${REDIS_SERVER}); apt-get install -y redis-server`)
  let port = 0
  let child: ChildProcess | undefined
  let lastErr: Error | undefined
  // A port chosen free may be taken before the server binds it: retry a few times.
  for (let attempt = 0; attempt < 5 && child === undefined; attempt++) {
    port = await closedPort()
    try {
      child = await launch(port)
    } catch (err) {
      lastErr = err as Error
    }
  }
  if (child === undefined) throw lastErr ?? new Error('redis-server did not start')
  const kill = async (): Promise<void> => {
    const c = child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    const exited = new Promise<void>(resolve => c.once('exit', () => resolve()))
    c.kill('SIGKILL')
    await withTimeout(exited, { what: 'redis-server to die after SIGKILL', timeoutMs: 10_000 })
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async restart () {
      await kill()
      child = await launch(port)
    },
    async stop () {
      await kill()
      child = undefined
    },
  }
}

/** Starts redis-server on `port` and resolves once it accepts connections. */
async function launch (port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (c: Buffer) => { output += c.toString() })
  child.stderr!.on('data', (c: Buffer) => { output += c.toString() })
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`)
      return await accepts(port)
    }, { what: `redis-server on 127.0.0.1:${port}`, timeoutMs: 20_000, intervalMs: 20 })
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  return child
}

function accepts (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.end('PING\r\n'); s.once('data', () => { s.destroy(); resolve(true) }) })
    s.once('error', () => resolve(false))
  })
}
