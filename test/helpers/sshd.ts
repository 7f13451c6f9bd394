/**
 * A throwaway OpenSSH server for tests: its own config, host key and authorized_keys in a temp
 * dir (nothing under /etc/ssh or ~/.ssh is read or written), listening on 127.0.0.1 at a free
 * port, in the foreground (`-D -e`), stopped and deleted in teardown. Logins are by a key
 * generated for the test, as the user running the tests. `ssh()` runs one bounded login.
 *
 * When sshd, ssh or ssh-keygen is missing, `findSshd()` says why; tests then skip with that
 * reason, except under CI (`process.env.CI`), where a missing OpenSSH is a failure.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { closedPort } from './ports.js'
import { isClosed } from './tunnel.js'
import { waitFor } from './wait.js'

const run = promisify(execFile)

/** sshd must be started by its absolute path (it re-executes itself). */
export const SSHD = '/usr/sbin/sshd'

export interface OpenSsh { sshd: string, ssh: string, keygen: string }

function onPath (name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir !== '' && existsSync(path.join(dir, name))) return path.join(dir, name)
  }
  for (const dir of ['/usr/bin', '/bin']) if (existsSync(path.join(dir, name))) return path.join(dir, name)
  return undefined
}

/** The OpenSSH binaries, or the reason they are not all there. */
export function findSshd (sshd = SSHD): OpenSsh | { missing: string } {
  const ssh = onPath('ssh')
  const keygen = onPath('ssh-keygen')
  const absent = [existsSync(sshd) ? undefined : sshd, ssh === undefined ? 'ssh' : undefined, keygen === undefined ? 'ssh-keygen' : undefined].filter(Boolean)
  if (absent.length > 0) return { missing: `OpenSSH is not installed (missing ${absent.join(', ')}); install it with "apt-get install -y openssh-server openssh-client" to run this test` }
  return { sshd, ssh: ssh!, keygen: keygen! }
}

/**
 * Options for tap's t.test(): a skip reason when OpenSSH is missing locally. Under CI it never
 * skips: the test runs and fails in startSshd() with the same reason.
 */
export function sshdTestOptions (env: NodeJS.ProcessEnv = process.env, sshd?: string): { skip?: string } {
  const found = findSshd(sshd)
  if ('sshd' in found || env.CI) return {}
  return { skip: found.missing }
}

export interface SshResult {
  ok: boolean
  /** How long the login took, ms. */
  ms: number
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface SshServer {
  port: number
  user: string
  /** The OpenSSH version line (`OpenSSH_9.2p1 …`, from ssh -V). */
  version: string
  /** One login to `port` on 127.0.0.1 running `echo ok`; ok when it exits 0 and printed "ok". Never rejects. */
  login (port: number, opts?: { timeoutMs?: number, connectTimeoutS?: number }): Promise<SshResult>
  /** sshd's log so far (stderr, `-e`). */
  log (): string
  stop (): Promise<void>
}

/**
 * Starts sshd on 127.0.0.1 with a config that takes many parallel logins from one address.
 * `config` lines (`Keyword value`) replace the line of the same keyword, or are added
 * (`MaxStartups 10:30:100` puts back a default).
 */
export async function startSshd (opts: { config?: string[] } = {}): Promise<SshServer> {
  const found = findSshd()
  if ('missing' in found) throw new Error(found.missing)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-sshd-'))
  const user = os.userInfo().username
  const hostKey = path.join(dir, 'host_ed25519')
  const clientKey = path.join(dir, 'id_ed25519')
  await run(found.keygen, ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey])
  await run(found.keygen, ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey])
  await writeFile(path.join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`), { mode: 0o600 })
  // The privilege separation directory sshd insists on when started as root.
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 })
  const { stderr: version } = await run(found.ssh, ['-V']).catch(() => ({ stderr: 'unknown' })) // ssh -V prints on stderr

  const config = path.join(dir, 'sshd_config')
  const ours = [
    `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    'ListenAddress 127.0.0.1',
    'AddressFamily inet',
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UseDNS no',
    // Many logins at once from one address: the defaults (10:30:100) drop unauthenticated
    // connections at random beyond 10, which would look exactly like a lost login.
    'MaxStartups 200:30:400',
    'MaxSessions 100',
    'MaxAuthTries 6',
    'LoginGraceTime 60',
    'LogLevel INFO',
    // Cheap logins, so a thousand fit in a test: X25519 key exchange only (the default
    // sntrup761x25519 costs ~75 ms of CPU on each side per login on a slow core), and a shell
    // that skips ~/.bashrc (bash sources it for `ssh host cmd` when SHLVL < 2; a root .bashrc
    // that runs `pyenv init` made every login cost ~100 processes).
    'KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org',
    'SetEnv SHLVL=1',
    'Subsystem sftp internal-sftp',
  ]
  const keyword = (line: string): string => line.split(/\s+/, 1)[0]!.toLowerCase()
  const replaced = new Set((opts.config ?? []).map(keyword))
  const base = [...ours.filter(l => !replaced.has(keyword(l))), ...(opts.config ?? [])]
  await writeFile(config, base.join('\n') + '\n')
  // OpenSSH 9.8 and later penalise an address for failed or dropped sessions (refusing it for
  // a while): off, or one odd session would turn into a run of refused logins.
  const { stdout: effective } = await run(found.sshd, ['-T', '-f', config, '-o', 'Port=22']).catch((err: { stderr?: string }) => {
    throw new Error(`sshd -T rejected the test config: ${err.stderr ?? String(err)}`)
  })
  if (/^persourcepenalties /m.test(effective)) await writeFile(config, [...base, 'PerSourcePenalties no'].join('\n') + '\n')

  let child: ChildProcess | undefined
  let log = ''
  let port = 0
  for (let attempt = 0; attempt < 5 && child === undefined; attempt++) {
    port = await closedPort()
    const c = spawn(found.sshd, ['-D', '-e', '-f', config, '-o', `Port=${port}`], { stdio: ['ignore', 'ignore', 'pipe'] })
    c.stderr!.setEncoding('utf8').on('data', (s: string) => { log += s })
    let exited = false
    c.once('exit', () => { exited = true })
    try {
      await waitFor(async () => {
        if (exited) throw new Error(`sshd exited at start:\n${log}`)
        return !(await isClosed(port))
      }, { what: `sshd listening on 127.0.0.1:${port}`, timeoutMs: 10_000, intervalMs: 20 })
      child = c
    } catch (err) {
      c.kill('SIGKILL')
      if (attempt === 4 || !/Address already in use/.test(log)) { await rm(dir, { recursive: true, force: true }); throw err }
    }
  }
  const sshd = child!
  const exited = new Promise<void>(resolve => { if (sshd.exitCode !== null) resolve(); else sshd.once('exit', () => resolve()) })

  const sshArgs = (p: number, connectTimeoutS: number): string[] => [
    '-p', String(p), '-i', clientKey, '-F', '/dev/null',
    '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'IdentitiesOnly=yes', '-o', `ConnectTimeout=${connectTimeoutS}`, '-o', 'LogLevel=ERROR',
    '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3',
    `${user}@127.0.0.1`, 'echo ok',
  ]

  return {
    port,
    user,
    version: version.trim(),
    log: () => log,
    login (p, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 20_000
      const started = Date.now()
      return new Promise(resolve => {
        const c = spawn(found.ssh, sshArgs(p, opts.connectTimeoutS ?? 10), { stdio: ['ignore', 'pipe', 'pipe'] })
        let stdout = ''
        let stderr = ''
        c.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s })
        c.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s })
        const timer = setTimeout(() => { stderr += `\n[test] killed after ${timeoutMs} ms`; c.kill('SIGKILL') }, timeoutMs)
        c.once('error', err => { stderr += `\n[test] spawn failed: ${err.message}` })
        c.once('close', (code, signal) => {
          clearTimeout(timer)
          resolve({ ok: code === 0 && stdout.trim() === 'ok', ms: Date.now() - started, code, signal, stdout, stderr })
        })
      })
    },
    async stop () {
      if (sshd.exitCode === null && sshd.signalCode === null) {
        sshd.kill('SIGTERM')
        const timer = setTimeout(() => sshd.kill('SIGKILL'), 5_000)
        await exited
        clearTimeout(timer)
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}
