/**
 * The load generator as a child process driven over IPC, both ends: `LoadGen` in the bench
 * sends `{id, ...request}` and awaits `{id, result}` or `{id, error}`; `serveLoad` is the child's
 * side. A generator that times out is killed and replaced, so it cannot poison the next case.
 */
import type { ChildProcess } from 'node:child_process'
import { killChild, spawnTs, withTimeout } from './procs.js'

export class LoadGen<Req extends object> {
  readonly #file: URL
  #child: ChildProcess | undefined
  #next = 0
  #pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()

  /** `file`: the generator's TypeScript file, which calls serveLoad(). */
  constructor (file: URL) {
    this.#file = file
  }

  #spawn (): ChildProcess {
    const child = spawnTs(this.#file, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    child.on('message', (m: { id: number, result?: unknown, error?: string }) => {
      const p = this.#pending.get(m.id)
      this.#pending.delete(m.id)
      if (m.error !== undefined || m.result === undefined) p?.reject(new Error(m.error ?? 'no result'))
      else p?.resolve(m.result)
    })
    child.once('exit', (code, sig) => {
      if (this.#child === child) this.#child = undefined
      for (const p of this.#pending.values()) p.reject(new Error(`load generator exited (${code ?? sig})`))
      this.#pending.clear()
    })
    return child
  }

  /** Sends one request; rejects after `ms` (naming `what`) or when the generator fails it. */
  async request<T> (r: Req, ms: number, what: string): Promise<T> {
    this.#child ??= this.#spawn()
    const child = this.#child
    const id = this.#next++
    const p = new Promise<T>((resolve, reject) => this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject }))
    child.send({ id, ...r })
    try {
      return await withTimeout(p, ms, what)
    } catch (err) {
      this.#pending.delete(id)
      if (/timed out/.test((err as Error).message)) await killChild(child)
      throw err
    }
  }

  async stop (): Promise<void> {
    if (this.#child !== undefined) await killChild(this.#child)
  }
}

/** The child's side: answers each IPC request with `handle`'s result or error; exits with its parent. */
export function serveLoad<Req> (handle: (r: Req) => Promise<unknown>): void {
  process.on('message', (m: { id: number } & Req) => {
    handle(m).then(
      result => process.send?.({ id: m.id, result: result ?? {} }),
      (err: Error) => process.send?.({ id: m.id, error: err.message }),
    )
  })
  process.on('disconnect', () => process.exit(0))
}
