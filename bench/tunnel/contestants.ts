/**
 * The contestants of the tunnel bench. Each `start(sinkPort)` brings its processes up on
 * loopback and resolves with the port the load generator connects to, the pids of its own
 * processes by role (relay side / client side; looked up when measured, because sshd forks
 * per connection), and a `stop()` that kills every one of them.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { mportOtherFlags, startMport } from '../harness/mport.js'
import { isJsonWith as hasKey, jsonOf as parseJsonLine, portChild } from '../harness/port-child.js'
import { FD_LIMIT, LineReader, killChild, processTree, spawnLimited, spawnTs, type NodeWrapper } from '../harness/procs.js'
import type { ChildProcess } from 'node:child_process'

export interface Running {
  /** Where the load generator connects. */
  port: number
  /** The tunnel's own processes: relay side and client side. */
  pids: () => { relay: number[], client: number[] }
  stop: () => Promise<void>
}

export interface Contestant {
  key: string
  name: string
  /** Set when the contestant cannot run on this machine (then it is skipped, with this message). */
  skip?: string
  /** File descriptors the busiest of its processes needs to carry `n` connections at once. */
  fdsFor: (n: number) => number
  start: (sinkPort: number) => Promise<Running>
}

const START_TIMEOUT = 20_000

async function stopAll (children: ChildProcess[], graceMs?: number): Promise<void> {
  await Promise.all(children.map(c => killChild(c, graceMs)))
}

export const direct: Contestant = {
  key: 'direct',
  fdsFor: () => 0,
  name: 'direct (no tunnel)',
  async start (sinkPort) {
    return { port: sinkPort, pids: () => ({ relay: [], client: [] }), stop: async () => {} }
  },
}

export const tcpForwarder: Contestant = {
  key: 'node-tcp',
  fdsFor: n => 2 * n + 64,
  name: 'Node TCP forwarder',
  async start (sinkPort) {
    const f = await portChild(new URL('./forwarder.ts', import.meta.url), ['tcp', String(sinkPort)], 'tcp forwarder')
    return { port: f.port, pids: () => ({ relay: [f.child.pid as number], client: [] }), stop: () => stopAll([f.child]) }
  },
}

/**
 * The bare Node TLS forwarder's two processes, the exit dialling `sinkPort`: the entry takes
 * the visitors (relay side). `wrapper` runs both under a tool (the instruction-count probe).
 */
export async function startTlsForwarder (sinkPort: number, wrapper?: NodeWrapper): Promise<Running> {
  const file = new URL('./forwarder.ts', import.meta.url)
  const graceMs = wrapper === undefined ? 2000 : 5000 // a process under valgrind exits slowly
  const exit = await portChild(file, ['tls-exit', String(sinkPort)], 'tls exit', wrapper)
  try {
    const entry = await portChild(file, ['tls-entry', String(exit.port)], 'tls entry', wrapper)
    return {
      port: entry.port,
      pids: () => ({ relay: [entry.child.pid as number], client: [exit.child.pid as number] }),
      stop: () => stopAll([entry.child, exit.child], graceMs),
    }
  } catch (err) {
    await killChild(exit.child, graceMs)
    throw err
  }
}

export const tlsForwarder: Contestant = {
  key: 'node-tls',
  fdsFor: n => 2 * n + 64,
  name: 'Node TLS forwarder',
  start: sinkPort => startTlsForwarder(sinkPort),
}

export const libp2pYamux: Contestant = {
  key: 'libp2p-yamux',
  fdsFor: n => n + 64,
  name: 'libp2p-yamux tunnel (no TLS)',
  async start (sinkPort) {
    const relay = spawnTs(new URL('./yamux-tunnel.ts', import.meta.url), ['relay'])
    const relayOut = new LineReader(relay, 'libp2p-yamux relay')
    let client: ChildProcess | undefined
    try {
      const control = parseJsonLine<{ control: number }>(await relayOut.waitLine(hasKey('control'), START_TIMEOUT, 'control port')).control
      client = spawnTs(new URL('./yamux-tunnel.ts', import.meta.url), ['client', String(control), String(sinkPort)])
      const clientOut = new LineReader(client, 'libp2p-yamux client')
      await clientOut.waitLine(hasKey('connected'), START_TIMEOUT, 'connection')
      const port = parseJsonLine<{ port: number }>(await relayOut.waitLine(hasKey('port'), START_TIMEOUT, 'public port')).port
      const c = client
      return { port, pids: () => ({ relay: [relay.pid as number], client: [c.pid as number] }), stop: () => stopAll([relay, c]) }
    } catch (err) {
      await stopAll(client === undefined ? [relay] : [relay, client])
      throw err
    }
  },
}

/** The fd limit children get (the wrapper's `ulimit -n` may not be allowed to raise it). */
export function childFdLimit (): number {
  const r = spawnSync('sh', ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn) 2>/dev/null; ulimit -n`], { encoding: 'utf8' })
  const n = Number(r.stdout.trim())
  return Number.isFinite(n) ? n : 1024
}

/** mport's relay and client from the build of checkout `root`. */
function mportFrom (key: string, name: string, root?: string, nodeFlags?: string[]): Contestant {
  return {
    key,
    fdsFor: n => n + 64,
    name,
    async start (sinkPort) {
      const m = await startMport([], [String(sinkPort)], root, undefined, nodeFlags)
      if (m.tunnel.remotePort === undefined) {
        await m.stop()
        throw new Error('the client\'s tunnel event has no remotePort')
      }
      return { port: m.tunnel.remotePort, pids: () => ({ relay: [m.relay.pid as number], client: [m.client.pid as number] }), stop: m.stop }
    },
  }
}

export const mport = mportFrom('mport', 'mport (relay + connect, TLS)')

/**
 * The other sides of an A/B: BENCH_MPORT_B names other checkouts, comma-separated (each built:
 * npm ci && npm run build), run as contestants mport-b, mport-c, … interleaved with this one,
 * with BENCH_MPORT_B_NODE_FLAGS when it is set (the same checkout against itself with other flags).
 */
const otherFlagsNote = process.env.BENCH_MPORT_B_NODE_FLAGS === undefined ? '' : ` with ${process.env.BENCH_MPORT_B_NODE_FLAGS}`
export const mportOthers: Contestant[] = (process.env.BENCH_MPORT_B ?? '').split(',').filter(Boolean)
  .map((root, i) => mportFrom(`mport-${String.fromCharCode(98 + i)}`, `mport from ${root}${otherFlagsNote}`, path.resolve(root), mportOtherFlags()))

/** The same relay and client over the WebSocket transport (ws on the relay's shared HTTP port, mport's TLS inside). */
export const mportWs: Contestant = {
  key: 'mport-ws',
  fdsFor: n => n + 64,
  name: 'mport (relay + connect, WebSocket ws)',
  async start (sinkPort) {
    const m = await startMport(['--http-port', '0', '--domain', 'mport.test'], l => {
      if (l.httpPort === undefined) throw new Error('the relay\'s listening event has no httpPort')
      return [String(sinkPort), '--transport', 'ws', '--relay-http-port', String(l.httpPort)]
    })
    if (m.tunnel.remotePort === undefined) {
      await m.stop()
      throw new Error('the client\'s tunnel event has no remotePort')
    }
    return { port: m.tunnel.remotePort, pids: () => ({ relay: [m.relay.pid as number], client: [m.client.pid as number] }), stop: m.stop }
  },
}

// ---- OpenSSH ----

function which (cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
}

/** Installs openssh when missing (apt-get, as root); returns why ssh cannot run, or undefined. */
export function prepareOpenSsh (log: (s: string) => void): string | undefined {
  if (process.env.BENCH_SKIP_SSH !== undefined) return 'BENCH_SKIP_SSH is set'
  const sshdPath = existsSync('/usr/sbin/sshd') ? '/usr/sbin/sshd' : which('sshd')
  if (sshdPath === undefined || which('ssh') === undefined || which('ssh-keygen') === undefined) {
    if (process.getuid?.() !== 0 || which('apt-get') === undefined) return 'openssh-server/openssh-client are not installed and cannot be installed here (needs root and apt-get)'
    log('installing openssh-server and openssh-client with apt-get …')
    try {
      execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client'], { stdio: 'ignore', timeout: 300_000 })
    } catch (err) {
      return `apt-get install openssh-server openssh-client failed: ${(err as Error).message.split('\n')[0]}`
    }
    if (!existsSync('/usr/sbin/sshd')) return 'sshd still missing after apt-get install'
  }
  return undefined
}

export function opensshVersion (): string | undefined {
  const r = spawnSync('ssh', ['-V'], { encoding: 'utf8' }) // prints its version on stderr
  return r.error === undefined ? `${r.stderr}${r.stdout}`.trim() || undefined : undefined
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

/** A private sshd (own host key, config, authorized key, loopback port) and one `ssh -R`. */
function openssh (key: string, name: string, tty: boolean): Contestant {
  return {
    key,
    name,
    fdsFor: n => n + 64,
    async start (sinkPort) {
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'mport-bench-ssh-'))
      chmodSync(tmp, 0o700)
      for (const k of ['host_key', 'user_key']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(tmp, k)])
      writeFileSync(path.join(tmp, 'authorized_keys'), readFileSync(path.join(tmp, 'user_key.pub')), { mode: 0o600 })
      mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }) // privilege separation directory sshd insists on
      const port = await freePort()
      const user = os.userInfo().username
      writeFileSync(path.join(tmp, 'sshd_config'), [
        `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${path.join(tmp, 'host_key')}`, `PidFile ${path.join(tmp, 'sshd.pid')}`,
        `AuthorizedKeysFile ${path.join(tmp, 'authorized_keys')}`, 'PubkeyAuthentication yes', 'PasswordAuthentication no',
        'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'PermitRootLogin prohibit-password', `AllowUsers ${user}`,
        'AllowTcpForwarding yes', 'GatewayPorts no', 'Ciphers aes128-gcm@openssh.com', 'Compression no', 'UseDNS no',
        'PermitTTY yes', 'ClientAliveInterval 0', 'MaxStartups 100:30:200', 'LogLevel INFO', 'Subsystem sftp internal-sftp', '',
      ].join('\n'))
      const sshd = spawnLimited('/usr/sbin/sshd', ['-f', path.join(tmp, 'sshd_config'), '-D', '-e'])
      const sshdOut = new LineReader(sshd, 'sshd')
      let ssh: ChildProcess | undefined
      try {
        await sshdOut.waitLine(l => l.includes('Server listening on'), START_TIMEOUT, '"Server listening"')
        const args = ['-F', '/dev/null', '-i', path.join(tmp, 'user_key'), '-p', String(port),
          '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=INFO',
          '-o', 'Ciphers=aes128-gcm@openssh.com', '-o', 'Compression=no', '-o', 'ExitOnForwardFailure=yes', '-o', 'ServerAliveInterval=0',
          '-R', `127.0.0.1:0:127.0.0.1:${sinkPort}`]
        // -tt: a remote pty makes both ends set TCP_NODELAY on the ssh connection (interactive mode).
        const full = tty ? [...args, '-tt', `${user}@127.0.0.1`, 'sleep 2147483647'] : [...args, '-N', `${user}@127.0.0.1`]
        ssh = spawnLimited('ssh', full, { stdio: ['pipe', 'pipe', 'pipe'] })
        const sshOut = new LineReader(ssh, `ssh ${tty ? '-tt' : '-N'} -R`)
        const line = await sshOut.waitLine(l => /Allocated port \d+/.test(l), START_TIMEOUT, '"Allocated port"')
        const fwd = Number(/Allocated port (\d+)/.exec(line)?.[1])
        const sshdPid = sshd.pid as number
        const c = ssh
        return {
          port: fwd,
          pids: () => ({ relay: processTree(sshdPid), client: [c.pid as number] }),
          stop: async () => {
            const tree = processTree(sshdPid)
            await stopAll([c, sshd])
            for (const pid of tree) { // sshd's per-connection children, should one outlive its parent
              try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
            }
          },
        }
      } catch (err) {
        await stopAll(ssh === undefined ? [sshd] : [ssh, sshd])
        throw err
      }
    },
  }
}

export const sshStock = openssh('ssh-R', 'OpenSSH ssh -N -R (aes128-gcm)', false)
export const sshTty = openssh('ssh-tt-R', 'OpenSSH ssh -tt -R (aes128-gcm)', true)
