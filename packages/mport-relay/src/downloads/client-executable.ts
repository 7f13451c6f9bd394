/**
 * The client as a Linux x64 executable with Node inside, for machines without Node: made on
 * the relay host from its own Node binary with Node's single-executable-application support
 * (the CommonJS bundle → `node --experimental-sea-config` → a copy of node with the blob
 * injected by postject at the NODE_SEA_FUSE sentinel). About 100 MB, so the npm package never
 * carries it: it is made on the first request, once per Node version and bundle, and kept in
 * the data directory, so a restart serves it at once.
 *
 * The build runs in child processes at low priority (postject holds the whole binary in
 * memory; the relay's heap never does), one at a time; a new file is checked (`--version`
 * must print this version) before it is moved into place. A failed build is not retried for
 * a while, so a stream of requests cannot keep the host busy.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, copyFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { DownloadMissingError } from 'mport/errors'
import { CLIENT_EXECUTABLE, DEFAULT_DOWNLOAD_DIR, EXECUTABLE_SOURCE, hashFile, type ExecutableSource } from './client-downloads.js'

const run = promisify(execFile)

/** The marker postject flips in the Node binary so it runs the injected blob (Node's documented value). */
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
/** How long a failed build is reported as is before the next request tries again. */
const RETRY_AFTER_FAILURE_MS = 10 * 60_000
/** Bound on each step (a 100 MB copy and injection on a slow disk). */
const STEP_TIMEOUT_MS = 5 * 60_000

/** Where executables are kept, the version they must print, and what they are made from. */
export interface ClientExecutableOptions {
  /** Where made executables are kept (the relay uses `<data dir>/downloads`). */
  dir: string
  /** The version the executable must print with --version. */
  version: string
  /** The CommonJS client (default: mport-connect.cjs in the package's dist/dl/). */
  source?: string
  /** The Node binary to copy (default: the one running the relay). */
  node?: string
  /** Told one line when a build starts, ends or fails. */
  log?: (line: string) => void
  /** The clock for the retry pause (ms). */
  now?: () => number
}

/** Why this host cannot make the executable, or undefined when it can try. */
export function executableUnsupported (platform = process.platform, arch = process.arch): string | undefined {
  if (platform !== 'linux' || arch !== 'x64') return `the relay host is ${platform}-${arch}; the executable is made from the host's own Node, so only a linux-x64 relay offers it`
  return undefined
}

/** The Linux x64 executable of one relay: made on demand, kept on disk. */
export class ClientExecutable implements ExecutableSource {
  readonly #o: Required<Omit<ClientExecutableOptions, 'log'>> & Pick<ClientExecutableOptions, 'log'>
  #building: Promise<string> | undefined
  #failed: { error: DownloadMissingError, at: number } | undefined
  #key: Promise<string> | undefined

  constructor (opts: ClientExecutableOptions) {
    this.#o = { source: path.join(DEFAULT_DOWNLOAD_DIR, EXECUTABLE_SOURCE), node: process.execPath, now: Date.now, ...opts }
  }

  /** The folder of this Node version and bundle: a new relay version or Node makes a new file. */
  #target (): Promise<string> {
    this.#key ??= hashFile(this.#o.source).then(
      sha => path.join(this.#o.dir, `node${process.versions.node}-${sha.slice(0, 16)}`, CLIENT_EXECUTABLE),
      err => { this.#key = undefined; throw err })
    return this.#key
  }

  async ready (): Promise<string | undefined> {
    if (executableUnsupported() !== undefined || !existsSync(this.#o.source)) return undefined
    const target = await this.#target()
    return existsSync(target) ? target : undefined
  }

  async file (): Promise<string> {
    const unsupported = executableUnsupported()
    if (unsupported !== undefined) throw new DownloadMissingError(CLIENT_EXECUTABLE, unsupported)
    if (!existsSync(this.#o.source)) throw new DownloadMissingError(CLIENT_EXECUTABLE, `its source ${this.#o.source} was not built: run "npm run build" in the mport repository`)
    const done = await this.ready()
    if (done !== undefined) return done
    if (this.#failed !== undefined && this.#o.now() - this.#failed.at < RETRY_AFTER_FAILURE_MS) throw this.#failed.error
    this.#building ??= this.#build().finally(() => { this.#building = undefined })
    return this.#building
  }

  async #build (): Promise<string> {
    const target = await this.#target()
    const work = path.join(this.#o.dir, `.build-${randomBytes(6).toString('hex')}`)
    const started = this.#o.now()
    this.#o.log?.(`client executable: making ${CLIENT_EXECUTABLE} from ${this.#o.node} (Node ${process.versions.node}); the first download waits for it`)
    try {
      await mkdir(work, { recursive: true, mode: 0o700 })
      const blob = path.join(work, 'sea.blob')
      const exe = path.join(work, CLIENT_EXECUTABLE)
      await writeFile(path.join(work, 'sea.json'), JSON.stringify({ main: this.#o.source, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false }))
      await this.#step(this.#o.node, ['--experimental-sea-config', 'sea.json'], work)
      await copyFile(this.#o.node, exe)
      await chmod(exe, 0o755)
      const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js')
      await this.#step(process.execPath, [postject, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], work)
      const { stdout } = await this.#step(exe, ['--version'], work)
      if (stdout.trim() !== this.#o.version) throw new Error(`the new executable printed ${JSON.stringify(stdout.trim())} for --version, not ${this.#o.version}`)
      await mkdir(path.dirname(target), { recursive: true })
      await rename(exe, target)
      await this.#removeOthers(path.dirname(target), work)
      this.#failed = undefined
      this.#o.log?.(`client executable: ${CLIENT_EXECUTABLE} ready in ${((this.#o.now() - started) / 1000).toFixed(1)} s`)
      return target
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0]
      const error = new DownloadMissingError(CLIENT_EXECUTABLE, `making it on the relay host failed (${reason}); use mport-connect.mjs with Node, or try again later`)
      this.#failed = { error, at: this.#o.now() }
      this.#o.log?.(`client executable: failed: ${reason}`)
      throw error
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  }

  /** One build step as a child process at low priority, bounded in time. */
  async #step (file: string, args: string[], cwd: string): Promise<{ stdout: string }> {
    const child = run(file, args, { cwd, timeout: STEP_TIMEOUT_MS, maxBuffer: 1024 * 1024, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd } })
    try {
      if (child.child.pid !== undefined) os.setPriority(child.child.pid, 10)
    } catch { /* not allowed here: it runs at normal priority */ }
    const { stdout } = await child
    return { stdout }
  }

  /** Executables of older Node versions or bundles (nobody is served them again), and builds a crash left behind. */
  async #removeOthers (...keep: string[]): Promise<void> {
    for (const entry of await readdir(this.#o.dir, { withFileTypes: true })) {
      const p = path.join(this.#o.dir, entry.name)
      if (entry.isDirectory() && !keep.includes(p)) await rm(p, { recursive: true, force: true })
    }
  }
}
