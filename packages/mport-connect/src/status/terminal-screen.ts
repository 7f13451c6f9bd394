/**
 * A full-screen view redrawn in place: the alternate screen, the cursor hidden, and every
 * frame written whole in one write (home, each line cleared to its end, the rest cleared), so
 * there is no flicker and nothing scrolls. A frame equal to the last is not written; frames
 * come at most every `minIntervalMs` (the latest wins). Lines are cut to the width, since a
 * wrapped line would push the frame down.
 */

/** What the screen writes to: a TTY (columns, rows, 'resize'). */
export interface ScreenOutput {
  write (s: string): unknown
  readonly columns?: number
  readonly rows?: number
  on?(event: 'resize', fn: () => void): unknown
  off?(event: 'resize', fn: () => void): unknown
}

/** How often the screen may redraw, and its clock. */
export interface TerminalScreenOptions {
  /** Fewest ms between two frames (default 250: at most four a second). */
  minIntervalMs?: number
  /** Timers (tests inject a manual clock). */
  setTimer?: (fn: () => void, ms: number) => () => void
  now?: () => number
}

const ENTER = '\x1b[?1049h\x1b[?25l'
const LEAVE = '\x1b[?25h\x1b[?1049l'
const HOME = '\x1b[H'
const CLEAR_LINE_END = '\x1b[K'
const CLEAR_BELOW = '\x1b[J'

/** A screen redrawn in place (see the module comment). */
export class TerminalScreen {
  readonly #out: ScreenOutput
  readonly #minInterval: number
  readonly #setTimer: (fn: () => void, ms: number) => () => void
  readonly #now: () => number
  #lines: string[] = []
  #lastFrame = ''
  #lastDrawAt = -Infinity
  #cancel: (() => void) | undefined
  #active = false
  readonly #onResize = (): void => { this.#lastFrame = ''; this.#draw() }

  constructor (out: ScreenOutput, opts: TerminalScreenOptions = {}) {
    this.#out = out
    this.#minInterval = opts.minIntervalMs ?? 250
    this.#setTimer = opts.setTimer ?? ((fn, ms) => { const t = setTimeout(fn, ms); t.unref(); return () => clearTimeout(t) })
    this.#now = opts.now ?? Date.now
  }

  get active (): boolean { return this.#active }

  start (): void {
    if (this.#active) return
    this.#active = true
    this.#out.write(ENTER)
    this.#out.on?.('resize', this.#onResize)
  }

  /** The next frame's lines; drawn now or when the interval allows. */
  show (lines: string[]): void {
    this.#lines = lines
    if (!this.#active || this.#cancel !== undefined) return
    const wait = this.#lastDrawAt + this.#minInterval - this.#now()
    if (wait <= 0) this.#draw()
    else this.#cancel = this.#setTimer(() => { this.#cancel = undefined; this.#draw() }, wait)
  }

  /** Leaves the alternate screen: the terminal is as it was before start(). */
  stop (): void {
    if (!this.#active) return
    this.#active = false
    this.#cancel?.()
    this.#cancel = undefined
    this.#out.off?.('resize', this.#onResize)
    this.#out.write(LEAVE)
  }

  #draw (): void {
    if (!this.#active) return
    const width = Math.max(20, this.#out.columns ?? 80)
    const height = Math.max(5, this.#out.rows ?? 24)
    const lines = this.#lines.slice(0, height).map(l => cut(l, width))
    const frame = HOME + lines.map(l => l + CLEAR_LINE_END).join('\r\n') + CLEAR_BELOW
    if (frame === this.#lastFrame) return
    this.#lastFrame = frame
    this.#lastDrawAt = this.#now()
    this.#out.write(frame)
  }
}

/** A line cut to `width` columns (ANSI styles count as zero; wide characters are not measured). */
function cut (line: string, width: number): string {
  let visible = 0
  let out = ''
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      // eslint-disable-next-line no-control-regex -- ANSI style sequences start with ESC
      const m = /^\x1b\[[0-9;]*m/.exec(line.slice(i))
      if (m !== null) { out += m[0]; i += m[0].length - 1; continue }
    }
    if (visible === width) return out + '\x1b[0m'
    out += line[i]
    visible++
  }
  return out
}
