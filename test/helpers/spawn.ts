/**
 * The bins as real processes, run from source (`node --import tsx bin/<name>.ts`, cwd = the
 * repo root) so a test never runs a stale build. Output is collected as it arrives; every wait
 * is bounded and says what it waited for, and with the output so far; `killAll()` ends every
 * process still running (call it from teardown).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitFor, withTimeout } from './wait.js'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

export type BinName = 'mport-relay' | 'mport-connect'

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface SpawnOptions {
  /** Added to the scrubbed environment (see cleanEnv). */
  env?: Record<string, string>
  /** Runs this command instead of the bin from source (e.g. `npx mport-relay` from a registry). */
  command?: { file: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv }
  /** Starts it as the leader of a new process group, so `signalGroup()` reaches its children too. */
  detached?: boolean
}

/**
 * Relay flags that keep a test relay on loopback and in the wide test port range. A piped
 * relay logs JSON lines by default; these tests read its human lines unless they ask for
 * JSON (`--json`) or name a format themselves (`--log-format`).
 */
export function relayArgs (dataDir: string, extra: string[] = []): string[] {
  const format = extra.some(a => a === '--json' || a === '--log-format' || a.startsWith('--log-format=')) ? [] : ['--log-format', 'text']
  return ['--host', '127.0.0.1', '--port', '0', '--bind-host', '127.0.0.1', '--public-host', '127.0.0.1', '--ports', '30000-60999', '--data-dir', dataDir, ...format, ...extra]
}

const running = new Set<BinProcess>()
const tmpDirs: string[] = []

/** A fresh temp dir, removed by `cleanup()`. */
export function tmpDir (prefix = 'mport-bin-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix))
  tmpDirs.push(dir)
  return dir
}

/**
 * The parent's environment without anything that could change the bins' behaviour (MPORT_*,
 * NODE_OPTIONS, tap's variables), with HOME and XDG_CONFIG_HOME in a temp dir so
 * trust-on-first-use never touches the real home.
 */
export function cleanEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(MPORT_|TAP|_TAPJS|NODE_OPTIONS$|NODE_V8_COVERAGE$|FORCE_COLOR$)/.test(k)) continue
    env[k] = v
  }
  const home = tmpDir('mport-home-')
  return { ...env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), NO_COLOR: '1', ...extra }
}

export class BinProcess {
  readonly child: ChildProcess
  readonly exited: Promise<Exit>
  #stdout = ''
  #stderr = ''
  #exit: Exit | undefined
  readonly #detached: boolean

  constructor (readonly name: BinName, readonly args: string[], opts: SpawnOptions = {}) {
    this.#detached = opts.detached === true
    const cmd = opts.command ?? { file: process.execPath, args: ['--import', 'tsx', `bin/${name}.ts`, ...args], cwd: REPO_ROOT }
    this.child = spawn(cmd.file, cmd.args, {
      cwd: cmd.cwd,
      env: cmd.env ?? cleanEnv(opts.env),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: opts.detached === true,
    })
    running.add(this)
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => { this.#stdout += s })
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => { this.#stderr += s })
    this.exited = new Promise(resolve => {
      // 'close' comes after the output streams ended, so stdout/stderr are complete.
      this.child.once('close', (code, signal) => {
        this.#exit = { code, signal }
        running.delete(this)
        resolve(this.#exit)
      })
      this.child.once('error', () => {
        this.#exit = { code: null, signal: null }
        running.delete(this)
        resolve(this.#exit)
      })
    })
  }

  get stdout (): string { return this.#stdout }
  get stderr (): string { return this.#stderr }
  /** Everything it printed, for "the token never appears" checks. */
  get output (): string { return this.#stdout + this.#stderr }
  get exit (): Exit | undefined { return this.#exit }

  /** Complete lines of stdout so far. */
  lines (): string[] {
    const all = this.#stdout.split('\n')
    all.pop() // the partial last line (or '' after a final newline)
    return all
  }

  /** Complete stdout lines parsed as JSON; throws on a line that is not a JSON object. */
  jsonLines (): Array<Record<string, unknown>> {
    return this.lines().map(l => {
      const v = JSON.parse(l) as unknown
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`not a JSON object: ${l}`)
      return v as Record<string, unknown>
    })
  }

  #describe (): string {
    const args = this.args.map((a, i) => this.args[i - 1] === '--token' ? '***' : a) // keep tokens out of failure reports
    return `${this.name} ${args.join(' ')}${this.#exit ? ` (exited ${this.#exit.code ?? this.#exit.signal})` : ''}\n--- stdout ---\n${this.#stdout}--- stderr ---\n${this.#stderr}`
  }

  /**
   * The first stdout line matching `re`, waiting for it (bounded); fails early if the process
   * exits. The default bound is 60 s: a bin compiled by tsx on the shared 2-core machine has
   * taken 50 s to print its first line under load.
   */
  async waitLine (re: RegExp, what: string, timeoutMs = 60_000): Promise<string> {
    let found: string | undefined
    try {
      await waitFor(() => {
        found = this.lines().find(l => re.test(l))
        if (found === undefined && this.#exit !== undefined) throw new Error(`exited before printing ${what}`)
        return found !== undefined
      }, { what, timeoutMs, intervalMs: 20 })
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.#describe()}`)
    }
    return found!
  }

  /** The first JSON line with `event` (and matching `pred`), waiting for it (bounded, 60 s by default like waitLine). */
  async waitEvent (event: string, pred: (o: Record<string, unknown>) => boolean = () => true, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined
    try {
      await waitFor(() => {
        found = this.jsonLines().find(o => o.event === event && pred(o))
        if (found === undefined && this.#exit !== undefined) throw new Error(`exited before printing a "${event}" event`)
        return found !== undefined
      }, { what: `a "${event}" event`, timeoutMs, intervalMs: 20 })
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.#describe()}`)
    }
    return found!
  }

  /** Waits for the exit (bounded). */
  async waitExit (timeoutMs = 30_000): Promise<Exit> {
    try {
      return await withTimeout(this.exited, { what: `${this.name} to exit`, timeoutMs })
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.#describe()}`)
    }
  }

  signal (sig: NodeJS.Signals): void {
    if (this.#exit === undefined) this.child.kill(sig)
  }

  /** A signal to its whole process group, as a terminal's Ctrl-C sends it (needs `detached`). */
  signalGroup (sig: NodeJS.Signals): void {
    if (this.#exit === undefined && this.child.pid !== undefined) process.kill(-this.child.pid, sig)
  }

  /** SIGKILL if still running, then wait for the exit. */
  async kill (): Promise<void> {
    if (this.#exit !== undefined) return
    if (this.#detached && this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL')
    else this.child.kill('SIGKILL')
    await withTimeout(this.exited, { what: `${this.name} to die after SIGKILL`, timeoutMs: 10_000 })
  }
}

export function spawnBin (name: BinName, args: string[], opts: SpawnOptions = {}): BinProcess {
  return new BinProcess(name, args, opts)
}

/** Runs a bin to its end (bounded) and returns its exit and output. */
export async function runBin (name: BinName, args: string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<Exit & { stdout: string, stderr: string, proc: BinProcess }> {
  const proc = spawnBin(name, args, opts)
  const exit = await proc.waitExit(opts.timeoutMs ?? 60_000)
  return { ...exit, stdout: proc.stdout, stderr: proc.stderr, proc }
}

/** Kills every bin still running and removes the temp dirs. */
export async function cleanup (): Promise<void> {
  await Promise.all([...running].map(p => p.kill().catch(() => {})))
  for (const dir of tmpDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}
