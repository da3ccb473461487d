import {PassThrough} from 'node:stream'
import {afterEach, describe, expect, it, vi} from 'vitest'

import {spinnerAllowed, startProgress} from '../../../src/output/progress.js'

/** A stderr stand-in: a terminal of the given width, or a plain stream. */
function screen(tty: {columns: number} | undefined): NodeJS.WriteStream & {text: () => string} {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream & {text: () => string}
  let written = ''
  ;(stream as unknown as PassThrough).on('data', (c: Buffer) => (written += c.toString()))
  if (tty)
    Object.assign(stream, {
      isTTY: true,
      columns: tty.columns,
      cursorTo: () => true,
      moveCursor: () => true,
      clearLine: () => true,
    })
  stream.text = () => written
  return stream
}

afterEach(() => {
  vi.unstubAllEnvs()
})

describe('spinnerAllowed', () => {
  it('a terminal with a width, outside CI, with table output: yes', () => {
    vi.stubEnv('CI', '')
    expect(spinnerAllowed({machineOutput: false, verbose: false, stream: screen({columns: 80})})).toBe(true)
  })

  it('a terminal whose size was never set (0 columns, as under script(1) without a terminal): no', () => {
    vi.stubEnv('CI', '')
    expect(spinnerAllowed({machineOutput: false, verbose: false, stream: screen({columns: 0})})).toBe(false)
  })

  it('not a terminal, under CI, or -o json|yaml: no', () => {
    vi.stubEnv('CI', '')
    expect(spinnerAllowed({machineOutput: false, verbose: false, stream: screen(undefined)})).toBe(false)
    expect(spinnerAllowed({machineOutput: true, verbose: false, stream: screen({columns: 80})})).toBe(false)
    vi.stubEnv('CI', 'true')
    expect(spinnerAllowed({machineOutput: false, verbose: false, stream: screen({columns: 80})})).toBe(false)
  })
})

describe('startProgress on a 0-column terminal', () => {
  it('prints plain lines with --verbose and returns (no spinner that could loop forever)', async () => {
    vi.stubEnv('CI', '')
    const stream = screen({columns: 0})
    const progress = await startProgress('Connecting to the cluster', {machineOutput: false, verbose: true, stream})
    progress.update('Reading node cp-1')
    const resume = progress.pause()
    resume()
    progress.stop()
    expect(stream.text()).toBe('Connecting to the cluster\nReading node cp-1\n')
  })
})

describe('startProgress without a terminal (issue 13: CI logs of long runs)', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('prints the current step at most every interval, and a step still going on with its time; a short run prints nothing', async () => {
    vi.useFakeTimers()
    const stream = screen(undefined)
    const progress = await startProgress('rotate: connecting', {
      machineOutput: false,
      verbose: false,
      stream,
      intervalMs: 5000,
    })
    progress.update('add-key: cp-1 writing')
    vi.advanceTimersByTime(4999)
    expect(stream.text()).toBe('')
    vi.advanceTimersByTime(1)
    progress.update('add-key: cp-1 waiting for the apiserver')
    vi.advanceTimersByTime(5000)
    vi.advanceTimersByTime(5000)
    progress.stop()
    vi.advanceTimersByTime(20_000)
    expect(stream.text()).toBe(
      'add-key: cp-1 writing\nadd-key: cp-1 waiting for the apiserver\nadd-key: cp-1 waiting for the apiserver (5s)\n',
    )

    const short = screen(undefined)
    const quick = await startProgress('rewrite: listing', {machineOutput: false, verbose: false, stream: short})
    quick.update('rewrite: 30/30 objects')
    quick.stop()
    vi.advanceTimersByTime(60_000)
    expect(short.text()).toBe('')
  })
})

describe('startProgress: plain lines stop while a question is asked', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('nothing is printed between pause() and resume, however long the user takes; the timer goes on after', async () => {
    vi.useFakeTimers()
    const stream = screen(undefined)
    // -o json on a terminal: plain lines; a slow connection leaves "Connecting" current when the question comes
    const progress = await startProgress('Connecting to the cluster', {machineOutput: true, verbose: false, stream})
    const resume = progress.pause()
    stream.write('Type the context name (ctx) to continue: ')
    vi.advanceTimersByTime(30_000)
    stream.write('ctx\n')
    resume()
    progress.update('add-key: cp-1 writing')
    vi.advanceTimersByTime(5000)
    progress.stop()
    const stopped = progress.pause()
    stopped()
    vi.advanceTimersByTime(20_000)
    expect(stream.text()).toBe('Type the context name (ctx) to continue: ctx\nadd-key: cp-1 writing\n')
  })
})
