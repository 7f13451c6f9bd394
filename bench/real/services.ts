/**
 * The real servers behind the tunnels in `npm run bench:real`, each a throwaway on a free
 * loopback port from Debian's packages: redis-server, PostgreSQL (initialised for pgbench) and
 * nginx serving a small page and a large file. `missing()` says which package is not installed.
 */
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { startPostgres, findPostgres } from '../../test/helpers/postgres.js'
import { LineReader, killChild, spawnLimited } from '../harness/procs.js'

const run = promisify(execFile)
const START_TIMEOUT = 30_000

export interface Service {
  port: number
  stop: () => Promise<void>
}

function commandPath (cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
}

/** Why `cmd` cannot run here (with the Debian package to install), or undefined. */
export function missing (cmd: string, pkg: string): string | undefined {
  return commandPath(cmd) === undefined ? `${cmd} is not installed (apt-get install -y ${pkg})` : undefined
}

/** A port free on 127.0.0.1 right now. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

/** redis-server without persistence. */
export async function startRedis (): Promise<Service> {
  const port = await freePort()
  const child = spawnLimited('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--protected-mode', 'no'])
  const out = new LineReader(child, 'redis-server')
  await out.waitLine(l => l.includes('Ready to accept connections'), START_TIMEOUT, 'redis "Ready to accept connections"')
  return { port, stop: async () => { await killChild(child) } }
}

export interface PgService extends Service {
  /** The database pgbench was initialised in. */
  database: string
}

/** Why PostgreSQL's server or pgbench cannot run here, or undefined. */
export function missingPostgres (): string | undefined {
  const found = findPostgres()
  if ('missing' in found) return found.missing
  return missing('pgbench', 'postgresql-contrib')
}

/** A PostgreSQL cluster (fsync off) with a database initialised by `pgbench -i -s scale`. */
export async function startPgbenchDatabase (scale: number): Promise<PgService> {
  const pg = await startPostgres()
  try {
    const url = new URL(await pg.createDatabase())
    const database = url.pathname.slice(1)
    await run('pgbench', ['-i', '-q', '-s', String(scale), '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', database], { timeout: 300_000 })
    return { port: pg.port, database, stop: () => pg.stop() }
  } catch (err) {
    await pg.stop()
    throw err
  }
}

export interface WebService extends Service {
  /** Size of `/big` in bytes. */
  bigBytes: number
}

/** nginx with one worker: `/` a small page, `/big` a sparse file of `bigBytes`. */
export async function startNginx (bigBytes: number): Promise<WebService> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mport-bench-nginx-'))
  chmodSync(tmp, 0o755) // nginx's workers drop root and must read the pages
  const www = path.join(tmp, 'www')
  mkdirSync(www)
  writeFileSync(path.join(www, 'index.html'), `<!doctype html><title>bench</title><p>${'mport '.repeat(100)}</p>\n`)
  const fd = openSync(path.join(www, 'big'), 'w')
  ftruncateSync(fd, bigBytes)
  closeSync(fd)
  const port = await freePort()
  const conf = path.join(tmp, 'nginx.conf')
  writeFileSync(conf, [
    'worker_processes 1;', 'daemon off;', `pid ${tmp}/nginx.pid;`, `error_log ${tmp}/error.log warn;`,
    'events { worker_connections 4096; }',
    'http {', '  access_log off;', '  sendfile on;', '  keepalive_requests 1000000;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(k => `  ${k}_temp_path ${tmp}/${k}_temp;`),
    `  server { listen 127.0.0.1:${port}; root ${www}; }`, '}', '',
  ].join('\n'))
  const child = spawnLimited('nginx', ['-c', conf, '-e', `${tmp}/error.log`])
  const stop = async (): Promise<void> => {
    await killChild(child)
    rmSync(tmp, { recursive: true, force: true })
  }
  try {
    await waitForPort(port, 'nginx', () => child.exitCode !== null)
  } catch (err) {
    await stop()
    throw err
  }
  return { port, bigBytes, stop }
}

/** Resolves once something accepts on `port`; fails after START_TIMEOUT or when `exited()` says the server is gone. */
export async function waitForPort (port: number, what: string, exited: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (exited() || Date.now() > deadline) throw new Error(`${what} did not accept on 127.0.0.1:${port} within ${START_TIMEOUT} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
