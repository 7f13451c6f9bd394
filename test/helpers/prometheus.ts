/**
 * Debian's Prometheus for tests: `promtool` runs checks, and `startPrometheus()` runs a
 * throwaway server on a free loopback port with a temp config and TSDB dir, queried through
 * its HTTP API; stopped and deleted in teardown.
 *
 * When the binaries are missing, `prometheusTestOptions()` says why; tests then skip with that
 * reason, except under CI (`process.env.CI`), where a missing Prometheus is a failure.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { closedPort } from './ports.js'
import { waitFor, withTimeout } from './wait.js'

const run = promisify(execFile)

export const PROMTOOL = '/usr/bin/promtool'
export const PROMETHEUS = '/usr/bin/prometheus'

/** Why Prometheus cannot be used here, or undefined when it can. */
export function prometheusMissing (): string | undefined {
  const absent = [PROMTOOL, PROMETHEUS].filter(f => !existsSync(f))
  return absent.length === 0 ? undefined : `Prometheus is not installed (missing ${absent.join(', ')}); install it with "apt-get install -y prometheus" to run this test`
}

/** Options for tap's t.test(): a skip reason when Prometheus is missing locally; under CI the test runs and fails. */
export function prometheusTestOptions (env: NodeJS.ProcessEnv = process.env): { skip?: string } {
  const missing = prometheusMissing()
  return missing === undefined || env.CI ? {} : { skip: missing }
}

/** Runs promtool with `args`; resolves with its exit code and output (never rejects on a non-zero exit). */
export async function promtool (args: string[], cwd?: string): Promise<{ code: number, output: string }> {
  const missing = prometheusMissing()
  if (missing !== undefined) throw new Error(missing)
  try {
    const { stdout, stderr } = await run(PROMTOOL, args, { timeout: 60_000, ...(cwd !== undefined ? { cwd } : {}) })
    return { code: 0, output: stdout + stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string, message: string }
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message }
  }
}

/** One series of an instant query's result. */
export interface QuerySample { metric: Record<string, string>, value: [number, string] }

export interface PrometheusServer {
  port: number
  /** An instant query through /api/v1/query; rejects with Prometheus's error for a bad query. */
  query (expr: string): Promise<QuerySample[]>
  /** The scrape targets' health, from /api/v1/targets. */
  targets (): Promise<Array<{ scrapeUrl: string, health: string, lastError: string }>>
  /** What it printed, for failure messages. */
  readonly log: string
  stop (): Promise<void>
}

/** Starts Prometheus with `config` (YAML text) on a free loopback port; resolves once it is ready. */
export async function startPrometheus (config: string): Promise<PrometheusServer> {
  const missing = prometheusMissing()
  if (missing !== undefined) throw new Error(missing)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-prom-'))
  await writeFile(path.join(dir, 'prometheus.yml'), config)
  const port = await closedPort()
  const child: ChildProcess = spawn(PROMETHEUS, [
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--web.console.templates=', '--web.console.libraries=',
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { log += s })
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { log += s })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  const base = `http://127.0.0.1:${port}`
  const api = async <T>(route: string): Promise<T> => {
    const res = await fetch(base + route)
    const body = await res.json() as { status: string, data: T, error?: string }
    if (body.status !== 'success') throw new Error(`Prometheus ${route}: ${body.error ?? res.status}`)
    return body.data
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await withTimeout(exited, { what: 'Prometheus to stop', timeoutMs: 30_000 }).catch(() => { child.kill('SIGKILL') })
    }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`Prometheus exited (${child.exitCode}):\n${log}`)
      return await fetch(`${base}/-/ready`).then(r => r.ok, () => false)
    }, { what: 'Prometheus to be ready', timeoutMs: 60_000, intervalMs: 100, diag: () => log })
  } catch (err) {
    await stop()
    throw err
  }
  return {
    port,
    query: async expr => (await api<{ resultType: string, result: QuerySample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    targets: async () => (await api<{ activeTargets: Array<{ scrapeUrl: string, health: string, lastError: string }> }>('/api/v1/targets')).activeTargets,
    get log () { return log },
    stop,
  }
}
