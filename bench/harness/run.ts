/**
 * The frame of a side-by-side bench run: settings from the environment, interleaved rounds,
 * the machine it ran on, the results files, and a main() that kills every child on the way out.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT, killAllSync } from './procs.js'

/** A positive number from the environment, or `dflt`; anything else stops the run. */
export function envNumber (name: string, dflt: number): number {
  const v = process.env[name]
  const n = v === undefined || v === '' ? dflt : Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${v} is not a positive number`)
  return n
}

export const log = (s: string): void => { process.stderr.write(`${s}\n`) }

export interface Entrant { key: string, skip?: string | undefined }

/**
 * Round 1 of every contestant, then round 2, …; skipped contestants are left out. `line`
 * prints one log line per contestant and round (the round's duration is appended).
 */
export async function interleave<C extends Entrant, R> (contestants: C[], rounds: number,
  one: (c: C, round: number) => Promise<R>, line: (r: R) => string): Promise<Map<string, R[]>> {
  const out = new Map<string, R[]>(contestants.map(c => [c.key, []]))
  const width = Math.max(...contestants.map(c => c.key.length))
  for (let round = 1; round <= rounds; round++) {
    for (const c of contestants) {
      if (c.skip !== undefined) continue
      const r0 = Date.now()
      const r = await one(c, round)
      out.get(c.key)?.push(r)
      log(`round ${round}/${rounds} ${c.key.padEnd(width)} ${line(r)}  [${((Date.now() - r0) / 1000).toFixed(1)} s]`)
    }
  }
  return out
}

export type Machine = Record<string, string | number | undefined>

const loadAverage = (): string => os.loadavg().map(x => x.toFixed(2)).join(' ')

/** CPU, cores, memory, kernel, Node, mport's commit and the load average now, plus `extra`. */
export function machine (extra: Machine = {}): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  let commit: string | undefined
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() } catch { /* not a checkout */ }
  return {
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model,
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3 * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    mportCommit: commit,
    ...extra,
    loadAverageAtStart: loadAverage(),
  }
}

/** Notes the load average at the end of the run. */
export function finishMachine (info: Machine): void {
  info.loadAverageAtEnd = loadAverage()
}

/** Writes `<name>-<date>.md` and `.json` to BENCH_OUT (default bench/results); returns the path without extension. */
export function writeResults (name: string, date: string, markdown: string, json: unknown): string {
  const outDir = process.env.BENCH_OUT ?? path.join(ROOT, 'bench/results')
  mkdirSync(outDir, { recursive: true })
  const base = path.join(outDir, `${name}-${date}`)
  writeFileSync(`${base}.md`, markdown)
  writeFileSync(`${base}.json`, JSON.stringify(json, null, 2) + '\n')
  return base
}

/** Runs `main` with every started child killed on exit, SIGINT/SIGTERM or failure. */
export function runBench (name: string, main: () => Promise<void>): void {
  process.on('exit', killAllSync)
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { killAllSync(); process.exit(130) })
  main().then(() => process.exit(0), err => {
    log(`${name} failed: ${(err as Error).stack ?? String(err)}`)
    killAllSync()
    process.exit(1)
  })
}
