/**
 * Real proxies for the transport tests, each started on a free 127.0.0.1 port from a config
 * in a temp dir and stopped in teardown: tinyproxy and squid (HTTP CONNECT, and squid for
 * plain HTTP requests with a WebSocket upgrade), dante (SOCKS5) and nginx (a reverse proxy
 * terminating TLS in front of the relay's shared HTTP port). Locally a missing Debian package
 * skips its tests with the apt-get line; under CI (env CI) it is a failure.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { closedPort } from './ports.js'
import { waitFor } from './wait.js'

const run = promisify(execFile)

/** Each proxy: its binary and the Debian package that has it. */
export const PROXY_BINARIES = {
  tinyproxy: { bin: '/usr/bin/tinyproxy', pkg: 'tinyproxy' },
  squid: { bin: '/usr/sbin/squid', pkg: 'squid' },
  danted: { bin: '/usr/sbin/danted', pkg: 'dante-server' },
  nginx: { bin: '/usr/sbin/nginx', pkg: 'nginx-light' },
} as const

export type ProxyName = keyof typeof PROXY_BINARIES

/** tap options: skip with the install line when the package is missing locally; under CI run (and fail in start). */
export function proxyTestOptions (name: ProxyName, env: NodeJS.ProcessEnv = process.env): { skip?: string } {
  const { bin, pkg } = PROXY_BINARIES[name]
  if (existsSync(bin) || env.CI) return {}
  return { skip: `${pkg} is not installed (no ${bin}); install it with "apt-get install -y ${pkg}" to run this test` }
}

export interface RunningProxy {
  port: number
  /** What the server logged so far (its log file or stderr). */
  log (): Promise<string>
  stop (): Promise<void>
}

interface StartSpec {
  name: ProxyName
  /** Writes the config for `port` into `dir`; returns the command's arguments. */
  configure (dir: string, port: number): Promise<string[]>
  /** Where the server logs (a file in `dir`), if not stderr. */
  logFile?: (dir: string) => string
}

async function start (spec: StartSpec): Promise<RunningProxy> {
  const { bin, pkg } = PROXY_BINARIES[spec.name]
  if (!existsSync(bin)) throw new Error(`${pkg} is not installed (no ${bin}): apt-get install -y ${pkg}`)
  const dir = await mkdtemp(path.join(os.tmpdir(), `mport-${spec.name}-`))
  await chmod(dir, 0o755) // daemons that drop privileges read their config and write their log here
  let stderr = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await closedPort()
    const args = await spec.configure(dir, port)
    const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir })
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
    let exited = false
    child.once('exit', () => { exited = true })
    try {
      await waitFor(async () => exited || await accepts(port), { what: `${spec.name} listening on 127.0.0.1:${port}`, timeoutMs: 30_000, intervalMs: 50 })
    } catch (err) {
      child.kill('SIGKILL')
      throw err
    }
    if (exited) continue // most likely the port was taken meanwhile: another one
    const log = async (): Promise<string> => {
      const file = spec.logFile?.(dir)
      if (file === undefined) return stderr
      return await readFile(file, 'utf8').catch(() => '') + stderr
    }
    return {
      port,
      log,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const gone = new Promise(resolve => child.once('exit', resolve))
          child.kill('SIGTERM')
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
          await gone
          clearTimeout(timer)
        }
        await rm(dir, { recursive: true, force: true })
      },
    }
  }
  await rm(dir, { recursive: true, force: true })
  throw new Error(`${spec.name} did not start: ${stderr.trim().slice(-2000)}`)
}

function accepts (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = net.connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/**
 * tinyproxy as an HTTP CONNECT proxy. `connectPorts`: the only ports CONNECT may reach (the
 * "firewall"; tinyproxy answers 403 for others); `basicAuth`: required credentials.
 */
export function startTinyproxy (opts: { connectPorts?: number[], basicAuth?: { user: string, password: string } } = {}): Promise<RunningProxy> {
  return start({
    name: 'tinyproxy',
    logFile: dir => path.join(dir, 'tinyproxy.log'),
    configure: async (dir, port) => {
      const lines = [
        `Port ${port}`,
        'Listen 127.0.0.1',
        'Timeout 600',
        'MaxClients 100',
        'Allow 127.0.0.1',
        `LogFile "${path.join(dir, 'tinyproxy.log')}"`,
        'LogLevel Info',
        'DisableViaHeader Yes',
        ...(opts.connectPorts ?? []).map(p => `ConnectPort ${p}`),
        ...(opts.basicAuth !== undefined ? [`BasicAuth ${opts.basicAuth.user} ${opts.basicAuth.password}`] : []),
      ]
      if (process.getuid?.() === 0) lines.push('User nobody', 'Group nogroup')
      const file = path.join(dir, 'tinyproxy.conf')
      await writeFile(file, lines.join('\n') + '\n')
      await writeFile(path.join(dir, 'tinyproxy.log'), '')
      await chmod(path.join(dir, 'tinyproxy.log'), 0o666) // it writes as nobody
      return ['-d', '-c', file]
    },
  })
}

/**
 * squid as an HTTP proxy that forwards plain HTTP requests (and WebSocket upgrades in them,
 * `http_upgrade_request_protocols`) but refuses every CONNECT: a network where only HTTP passes.
 */
export function startSquid (): Promise<RunningProxy> {
  return start({
    name: 'squid',
    logFile: dir => path.join(dir, 'cache.log'),
    configure: async (dir, port) => {
      const lines = [
        `http_port 127.0.0.1:${port}`,
        `pid_filename ${path.join(dir, 'squid.pid')}`,
        `cache_log ${path.join(dir, 'cache.log')}`,
        `access_log ${path.join(dir, 'access.log')}`,
        'cache deny all',
        'cache_mem 8 MB',
        'shutdown_lifetime 0 seconds',
        'acl localhost src 127.0.0.1/32',
        'acl CONNECT method CONNECT',
        'http_access deny CONNECT',
        'http_upgrade_request_protocols websocket allow all',
        'via off',
        'forwarded_for transparent',
        'http_access allow localhost',
        'http_access deny all',
      ]
      if (process.getuid?.() === 0) lines.push('cache_effective_user proxy')
      const file = path.join(dir, 'squid.conf')
      await writeFile(file, lines.join('\n') + '\n')
      await run('chown', ['-R', 'proxy', dir]).catch(() => {})
      return ['-N', '-f', file]
    },
  })
}

/**
 * dante as a SOCKS5 proxy. `auth`: require RFC 1929 username/password (dante checks them
 * against system users, so the test creates a throwaway one); `blockPorts`: destination ports
 * its rules refuse (reply 2, "not allowed by ruleset").
 */
export function startDante (opts: { auth?: { user: string, password: string }, blockPorts?: number[] } = {}): Promise<RunningProxy> {
  return start({
    name: 'danted',
    configure: async (dir, port) => {
      const lines = [
        'logoutput: stderr',
        `internal: 127.0.0.1 port = ${port}`,
        'external: 127.0.0.1',
        `socksmethod: ${opts.auth !== undefined ? 'username' : 'none'}`,
        'clientmethod: none',
        'user.privileged: root',
        'user.unprivileged: nobody',
        'client pass { from: 127.0.0.1/32 to: 0.0.0.0/0 }',
        ...(opts.blockPorts ?? []).map(p => `socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 port = ${p} }`),
        'socks pass { from: 127.0.0.1/32 to: 0.0.0.0/0 command: connect }',
      ]
      const file = path.join(dir, 'danted.conf')
      await writeFile(file, lines.join('\n') + '\n')
      return ['-f', file, '-N', '1', '-p', path.join(dir, 'danted.pid')]
    },
  })
}

/** A throwaway system user for dante's username method (dante checks passwords against the system); removed by `remove`. */
export async function addSystemUser (): Promise<{ user: string, password: string, remove (): Promise<void> }> {
  const user = `mport${process.pid % 100000}${Math.floor(Math.random() * 1000)}`
  const password = `pw-${Math.random().toString(36).slice(2, 12)}`
  await run('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', user])
  await new Promise<void>((resolve, reject) => {
    const c = spawn('chpasswd', [], { stdio: ['pipe', 'ignore', 'pipe'] })
    c.once('exit', code => code === 0 ? resolve() : reject(new Error(`chpasswd exited ${code}`)))
    c.stdin.end(`${user}:${password}\n`)
  })
  return { user, password, remove: async () => { await run('userdel', [user]).catch(() => {}) } }
}

/**
 * nginx terminating TLS (its own certificate, not the relay's) and proxying `location` with
 * WebSocket upgrades to 127.0.0.1:`upstreamPort` (the relay's shared HTTP port).
 */
export function startNginx (opts: { upstreamPort: number, cert: string, key: string, location?: string }): Promise<RunningProxy> {
  return start({
    name: 'nginx',
    logFile: dir => path.join(dir, 'error.log'),
    configure: async (dir, port) => {
      await writeFile(path.join(dir, 'cert.pem'), opts.cert)
      await writeFile(path.join(dir, 'key.pem'), opts.key, { mode: 0o600 })
      const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir};
  proxy_temp_path ${dir};
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${path.join(dir, 'cert.pem')};
    ssl_certificate_key ${path.join(dir, 'key.pem')};
    location ${opts.location ?? '/_mport/'} {
      proxy_pass http://127.0.0.1:${opts.upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_read_timeout 1h;
      proxy_buffering off;
    }
    location / { return 404; }
  }
}
`
      const file = path.join(dir, 'nginx.conf')
      await writeFile(file, conf)
      return ['-p', dir, '-c', file, '-e', path.join(dir, 'error.log')]
    },
  })
}
