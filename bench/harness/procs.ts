/**
 * Process plumbing for the side-by-side benches (bench/tunnel, bench/http): spawn children with a raised fd limit, read CPU time
 * and RSS from /proc, find descendants (sshd forks per connection), wait for output lines,
 * and kill everything we started, even on failure.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** File descriptors each child may open: 10,000 idle connections need two per proxied connection. */
export const FD_LIMIT = 65536
const CLK_TCK = 100 // USER_HZ on Linux

const started = new Set<ChildProcess>()

/** Spawns `cmd args` through `sh -c 'ulimit -n …; exec'`, so the pid is the command's own. */
export function spawnLimited (cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn('sh', ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$@"`, 'sh', cmd, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...opts,
  })
  started.add(child)
  child.once('exit', () => started.delete(child))
  return child
}

/** Node children run under a tool (valgrind, for bench/tunnel/instruction-count.ts). */
export interface NodeWrapper {
  /** The tool's command line; node and its arguments follow it. */
  command: string[]
  /** Flags for node itself. */
  nodeFlags: string[]
  /** How long a child may take to say it is ready (node starts slowly under such a tool). */
  startTimeoutMs: number
}

/** `node nodeArgs…`, under `wrapper` when one is given. */
export function spawnNode (nodeArgs: string[], opts: SpawnOptions = {}, wrapper?: NodeWrapper): ChildProcess {
  if (wrapper === undefined) return spawnLimited(process.execPath, nodeArgs, opts)
  const [tool, ...toolArgs] = wrapper.command
  return spawnLimited(tool!, [...toolArgs, process.execPath, ...wrapper.nodeFlags, ...nodeArgs], opts)
}

/** A TypeScript file as a Node child (through tsx): pass `new URL('./x.ts', import.meta.url)`. */
export function spawnTs (file: URL, args: string[], opts: SpawnOptions = {}, wrapper?: NodeWrapper): ChildProcess {
  return spawnNode(['--import', 'tsx', fileURLToPath(file), ...args], opts, wrapper)
}

/** Kills a child (SIGTERM, then SIGKILL after `graceMs`) and waits until it has exited. */
export async function killChild (child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/** Last resort on exit: SIGKILL every child still running (by its own pid). */
export function killAllSync (): void {
  for (const c of started) {
    try { c.kill('SIGKILL') } catch { /* already gone */ }
  }
}

/** Collects a child's stdout/stderr lines; `waitLine` resolves with the first line `match` accepts. */
export class LineReader {
  readonly lines: string[] = []
  #waiters: Array<{ match: (l: string) => boolean, resolve: (l: string) => void }> = []
  #ended = false
  #endWaiters: Array<() => void> = []

  constructor (readonly child: ChildProcess, readonly label: string) {
    for (const s of [child.stdout, child.stderr]) {
      if (s === null) continue
      let rest = ''
      s.setEncoding('utf8')
      s.on('data', (d: string) => {
        rest += d
        let i: number
        while ((i = rest.indexOf('\n')) >= 0) {
          this.#line(rest.slice(0, i))
          rest = rest.slice(i + 1)
        }
        if (rest.length > 65536) rest = rest.slice(-65536)
      })
    }
    child.once('exit', () => {
      this.#ended = true
      for (const w of this.#endWaiters) w()
    })
  }

  #line (l: string): void {
    if (process.env.BENCH_PROC_LOG !== undefined) appendFileSync(`${process.env.BENCH_PROC_LOG}-${this.label}-${this.child.pid}.log`, l + '\n')
    if (this.lines.length < 200) this.lines.push(l) // keep the start (errors, banners), not every per-connection event
    for (const w of [...this.#waiters]) {
      if (w.match(l)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1)
        w.resolve(l)
      }
    }
  }

  waitLine (match: (l: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    const seen = this.lines.find(match)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => reject(new Error(`${this.label}: ${why} waiting for ${what}; output:\n  ${this.lines.slice(-15).join('\n  ')}`))
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs)
      this.#waiters.push({ match, resolve: l => { clearTimeout(timer); resolve(l) } })
      const onEnd = (): void => { clearTimeout(timer); fail(`exited (code ${this.child.exitCode}, signal ${this.child.signalCode})`) }
      if (this.#ended) onEnd()
      else this.#endWaiters.push(onEnd)
    })
  }
}

function statFields (pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return s.slice(s.lastIndexOf(')') + 2).split(' ') // fields from #3 (state) on
  } catch {
    return undefined
  }
}

/**
 * user + system CPU seconds of one process and of its children that have exited and been
 * reaped (0 if gone). Summed over a process tree sampled twice, this counts a forking
 * server's short-lived children too: alive, each counts for itself, reaped, in its parent.
 */
export function cpuSeconds (pid: number): number {
  const f = statFields(pid)
  if (f === undefined) return 0
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK // utime, stime, cutime, cstime (#14–#17)
}

/** The whole machine's CPU time so far from /proc/stat, in clock ticks: idle (idle + iowait) and all. */
export function machineTicks (): { idle: number, total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number)
  return { idle: (f[3] ?? 0) + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) }
}

function statusKiB (pid: number, key: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m?.[1] !== undefined ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

export const rssBytes = (pid: number): number => statusKiB(pid, 'VmRSS') * 1024
export const peakRssBytes = (pid: number): number => statusKiB(pid, 'VmHWM') * 1024

/** Resets VmHWM (peak RSS) to the current RSS (Linux clear_refs 5). False when not permitted. */
export function resetPeakRss (pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** `pid` and all its live descendants. */
export function processTree (pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const f = statFields(Number(name))
    if (f === undefined) continue
    const ppid = Number(f[1])
    const list = children.get(ppid) ?? []
    list.push(Number(name))
    children.set(ppid, list)
  }
  const out: number[] = []
  const todo = [pid]
  while (todo.length > 0 && out.length < 10000) {
    const p = todo.pop() as number
    if (statFields(p) === undefined) continue
    out.push(p)
    todo.push(...(children.get(p) ?? []))
  }
  return out
}

export function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Rejects after `ms` with a message naming what took too long. */
export async function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}
