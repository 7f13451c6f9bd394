/**
 * The client files the relay hands out (GET /dl/…): the single-file bundle its package ships
 * in dist/dl/ (built by scripts/bundle-client.ts), and, where the host can make it, a Linux
 * executable (client-executable.ts). Each file's SHA-256 is computed once per version of the
 * file on disk (size, mtime, inode), so a download never waits for hashing twice.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { DownloadMissingError } from 'mport/errors'

/** Where the relay package keeps the bundle: dist/dl/ of the package (two levels above this module, from src/ or dist/). */
export const DEFAULT_DOWNLOAD_DIR = fileURLToPath(new URL('../../dist/dl/', import.meta.url))

/** The bundle's file name (scripts/bundle-client.ts writes it). */
export const CLIENT_BUNDLE = 'mport-connect.mjs'
/** The oldest Node the bundle runs on: the packages' engines (yargs 18 needs 20.19). */
export const BUNDLE_MIN_NODE = '20.19'
/** The client as CommonJS (next to the bundle): what the executable is made from; Node's SEA takes only a CommonJS main. */
export const EXECUTABLE_SOURCE = 'mport-connect.cjs'
/** The Linux x64 executable's file name. */
export const CLIENT_EXECUTABLE = 'mport-connect-linux-x64'

/** One file ready to serve. */
export interface ClientFile {
  name: string
  path: string
  size: number
  /** Hex SHA-256 of the whole file. */
  sha256: string
  mtimeMs: number
  contentType: string
  /** What runs it, for people: `Node >= 20.19`, `Linux x64`. */
  runsOn: string
}

/** Makes (or finds) the executable on demand; see client-executable.ts. */
export interface ExecutableSource {
  /** The executable's path once it exists; rejects with DownloadMissingError when this host cannot make it. */
  file (): Promise<string>
  /** The path if it exists now, without starting anything. */
  ready (): Promise<string | undefined>
}

/** Where the bundle is, and the executable when this relay offers one. */
export interface ClientDownloadsOptions {
  /** The folder holding mport-connect.mjs (default: the package's dist/dl/). */
  dir?: string
  /** The Linux executable, when this relay offers it. */
  executable?: ExecutableSource
}

/** Hex SHA-256 of a file, read as a stream. */
export async function hashFile (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** The client files of one relay, hashed once per version on disk. */
export class ClientDownloads {
  readonly dir: string
  readonly #executable: ExecutableSource | undefined
  readonly #hashes = new Map<string, { key: string, sha256: Promise<string> }>()

  constructor (opts: ClientDownloadsOptions = {}) {
    this.dir = opts.dir ?? DEFAULT_DOWNLOAD_DIR
    this.#executable = opts.executable
  }

  /** The bundle; DownloadMissingError when it was never built (a source checkout before `npm run build`). */
  async bundle (): Promise<ClientFile> {
    const file = path.join(this.dir, CLIENT_BUNDLE)
    const found = await this.#describe(CLIENT_BUNDLE, file, 'text/javascript; charset=utf-8', `Node >= ${BUNDLE_MIN_NODE}`)
    if (found === undefined) throw new DownloadMissingError(CLIENT_BUNDLE, `the relay package was not built: run "npm run build" in the mport repository (it writes ${file}), or install mport-relay from npm`)
    return found
  }

  /** Whether this relay offers the executable at all (it may still have to be made). */
  get offersExecutable (): boolean {
    return this.#executable !== undefined
  }

  /** The executable, made first if needed; DownloadMissingError when this relay or host cannot make it. */
  async executable (): Promise<ClientFile> {
    if (this.#executable === undefined) throw new DownloadMissingError(CLIENT_EXECUTABLE, `this relay does not offer the executable; use ${CLIENT_BUNDLE} with Node >= ${BUNDLE_MIN_NODE}`)
    const file = await this.#executable.file()
    const found = await this.#describe(CLIENT_EXECUTABLE, file, 'application/octet-stream', 'Linux x64')
    if (found === undefined) throw new DownloadMissingError(CLIENT_EXECUTABLE, 'the executable went missing from the data directory; it is made again on the next request')
    return found
  }

  /** Every file that exists now (nothing is built for this): for SHA256SUMS and connect-info. */
  async available (): Promise<ClientFile[]> {
    const files: ClientFile[] = []
    const bundle = await this.#describe(CLIENT_BUNDLE, path.join(this.dir, CLIENT_BUNDLE), 'text/javascript; charset=utf-8', `Node >= ${BUNDLE_MIN_NODE}`)
    if (bundle !== undefined) files.push(bundle)
    const exe = await this.#executable?.ready()
    const executable = exe === undefined ? undefined : await this.#describe(CLIENT_EXECUTABLE, exe, 'application/octet-stream', 'Linux x64')
    if (executable !== undefined) files.push(executable)
    return files
  }

  async #describe (name: string, file: string, contentType: string, runsOn: string): Promise<ClientFile | undefined> {
    let st
    try {
      st = await stat(file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    if (!st.isFile()) return undefined
    const key = `${st.size}:${st.mtimeMs}:${st.ino}`
    let cached = this.#hashes.get(file)
    if (cached?.key !== key) {
      cached = { key, sha256: hashFile(file) }
      this.#hashes.set(file, cached)
      cached.sha256.catch(() => this.#hashes.delete(file)) // a failed read is tried again next time
    }
    return { name, path: file, size: st.size, sha256: await cached.sha256, mtimeMs: st.mtimeMs, contentType, runsOn }
  }
}

/** `sha256sum` lines for the files: `sha256sum -c --ignore-missing SHA256SUMS` checks what was downloaded. */
export function sha256sums (files: readonly ClientFile[]): string {
  return files.map(f => `${f.sha256}  ${f.name}\n`).join('')
}
