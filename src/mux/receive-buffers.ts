/**
 * ReceiveBufferPool: the buffers streams gather large received Data frames in (receive-gather.ts),
 * reused once every byte handed out of them has been written on.
 *
 * A tunnel forwards bulk data as 64 KiB frames. With a new buffer per frame, the allocator
 * returns freed memory to the kernel after young-generation collections and takes it back a
 * page fault at a time; reusing buffers avoids that churn. Reuse needs proof that nothing
 * holds a buffer any more, and only the consumer can give it: it reports each chunk's write
 * through MuxStream.writeCallbackFor(), which ends here in writeCallback(). Bytes handed out
 * and never reported (kept, concatenated, written elsewhere) keep their buffer out of the pool
 * for good: it is garbage-collected. A buffer is never reused early; at worst it is not reused.
 */

class ReceiveBlock {
  readonly buf: Buffer
  /** Bytes handed to a reader and not yet confirmed written. */
  outstanding = 0
  /** The stream is still gathering into it. */
  filling = true
  /** A write of its bytes failed: the socket may have let go in any state, so never reuse it. */
  lost = false

  constructor (size: number) {
    this.buf = Buffer.allocUnsafeSlow(size)
  }
}

export class ReceiveBufferPool {
  readonly blockSize: number
  readonly maxFree: number
  /** @internal Overwrites released buffers, so one reused too early corrupts data visibly (tests). */
  poison = false
  readonly #blocks = new WeakMap<ArrayBuffer, ReceiveBlock>()
  readonly #free: ReceiveBlock[] = []
  #created = 0
  #reused = 0

  /** Buffers of `blockSize` bytes; at most `maxFree` idle ones are kept (64 × 64 KiB = 4 MiB by default). */
  constructor (blockSize = 64 * 1024, maxFree = 64) {
    this.blockSize = blockSize
    this.maxFree = maxFree
  }

  /** @internal A buffer of `size` bytes (at most blockSize) to gather into. */
  take (size: number): Buffer {
    let block = this.#free.pop()
    if (block === undefined) {
      block = new ReceiveBlock(this.blockSize)
      this.#blocks.set(block.buf.buffer as ArrayBuffer, block)
      this.#created++
    } else {
      this.#reused++
      block.filling = true
    }
    return block.buf.subarray(0, size)
  }

  /** @internal The stream hands `chunk`, a part of a buffer from take(), to its reader. */
  handedOut (chunk: Buffer): void {
    const block = this.#blocks.get(chunk.buffer as ArrayBuffer)
    if (block !== undefined) block.outstanding += chunk.length
  }

  /** @internal The stream will not gather into `buf` any more. */
  doneFilling (buf: Buffer): void {
    const block = this.#blocks.get(buf.buffer as ArrayBuffer)
    if (block === undefined) return
    block.filling = false
    this.#releaseIfDone(block)
  }

  /**
   * @internal For a writer about to write `chunk` to a net.Socket: the callback to pass to
   * write(), when the chunk comes from this pool; undefined otherwise (MuxStream.writeCallbackFor).
   */
  writeCallback (chunk: Buffer): ((err?: Error | null) => void) | undefined {
    // Most chunks are small copies in Node's shared pool: no lookup needed to know they are not ours.
    if (chunk.buffer.byteLength !== this.blockSize) return undefined
    const block = this.#blocks.get(chunk.buffer as ArrayBuffer)
    if (block === undefined) return undefined
    const n = chunk.length
    return err => {
      if (err != null) block.lost = true
      block.outstanding -= n
      this.#releaseIfDone(block)
    }
  }

  #releaseIfDone (block: ReceiveBlock): void {
    if (block.filling || block.outstanding !== 0 || block.lost) return
    if (this.#free.length >= this.maxFree) return
    if (this.poison) block.buf.fill(0xa5)
    block.filling = true // until take() hands it out again: nothing releases it twice
    this.#free.push(block)
  }

  /** Buffers made, reuses, and idle buffers kept now. */
  get stats (): { created: number, reused: number, free: number } {
    return { created: this.#created, reused: this.#reused, free: this.#free.length }
  }
}
