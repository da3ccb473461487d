import {PassThrough} from 'node:stream'
import {describe, expect, it} from 'vitest'

import {PluginError} from '../../../src/errors.js'
import {confirmByTyping, confirmYesNo, type PromptTerminal, readAnswer} from '../../../src/output/prompt.js'

/** A keyboard and a screen made of streams; `terminal` as on a TTY (keys, Ctrl-C and Ctrl-D as keys). */
function fakeTerminal(terminal = true): PromptTerminal & {keyboard: PassThrough; screen: () => string} {
  const keyboard = new PassThrough()
  const output = new PassThrough()
  let shown = ''
  output.on('data', (c: Buffer) => (shown += c.toString()))
  return {input: keyboard, output, terminal, keyboard, screen: () => shown.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')}
}

/** Types `keys` once the question is on the screen. */
function typeAfterQuestion(io: ReturnType<typeof fakeTerminal>, marker: string, keys: string): void {
  const timer = setInterval(() => {
    if (io.screen().includes(marker)) {
      clearInterval(timer)
      io.keyboard.write(keys)
    }
  }, 5)
}

describe('confirmByTyping', () => {
  it('shows the question and the context name on the output stream; the exact name goes ahead', async () => {
    const io = fakeTerminal()
    typeAfterQuestion(io, 'to continue: ', 'kubernetes-admin@kubernetes\r')
    await expect(confirmByTyping('Decrypt everything?', 'kubernetes-admin@kubernetes', io)).resolves.toBe(true)
    expect(io.screen()).toContain(
      'Decrypt everything?\nType the context name (kubernetes-admin@kubernetes) to continue: ',
    )
    // what was typed is echoed, as on a terminal
    expect(io.screen()).toContain('to continue: kubernetes-admin@kubernetes')
  })

  it('a wrong name, a prefix of the name, or Enter alone refuses', async () => {
    for (const typed of ['prod\r', 'kubernetes-admin\r', '\r']) {
      const io = fakeTerminal()
      typeAfterQuestion(io, 'to continue: ', typed)
      await expect(confirmByTyping('Decrypt everything?', 'kubernetes-admin@kubernetes', io)).resolves.toBe(false)
    }
  })

  it('surrounding spaces are forgiven, other case is not', async () => {
    const spaced = fakeTerminal()
    typeAfterQuestion(spaced, 'to continue: ', '  ctx-a  \r')
    await expect(confirmByTyping('Go?', 'ctx-a', spaced)).resolves.toBe(true)
    const upper = fakeTerminal()
    typeAfterQuestion(upper, 'to continue: ', 'CTX-A\r')
    await expect(confirmByTyping('Go?', 'ctx-a', upper)).resolves.toBe(false)
  })

  it('Ctrl-D (end of input) refuses instead of waiting forever', async () => {
    const io = fakeTerminal()
    typeAfterQuestion(io, 'to continue: ', '\x04')
    await expect(confirmByTyping('Go?', 'ctx-a', io)).resolves.toBe(false)
  })

  it('a closed stdin (not a terminal) refuses', async () => {
    const io = fakeTerminal(false)
    io.keyboard.end()
    await expect(confirmByTyping('Go?', 'ctx-a', io)).resolves.toBe(false)
  })

  it('Ctrl-C at the question throws a precondition error (exit 3) that says nothing was changed', async () => {
    const io = fakeTerminal()
    typeAfterQuestion(io, 'to continue: ', 'ctx\x03')
    const error = await confirmByTyping('Go?', 'ctx-a', io).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PluginError)
    expect((error as PluginError).exitCode).toBe(3)
    expect((error as PluginError).code).toBe('INTERRUPTED')
    expect((error as PluginError).message).toContain('nothing was changed')
    expect(io.screen()).toContain('^C')
  })
})

describe('confirmYesNo', () => {
  it('y and yes (any case) go ahead; n, Enter, other words and Ctrl-D refuse', async () => {
    const cases: Array<[string, boolean]> = [
      ['y\r', true],
      ['YES\r', true],
      [' Yes \r', true],
      ['n\r', false],
      ['\r', false],
      ['yep\r', false],
      ['\x04', false],
    ]
    for (const [keys, expected] of cases) {
      const io = fakeTerminal()
      typeAfterQuestion(io, '[y/N] ', keys)
      expect(await confirmYesNo('Enable encryption?', io), JSON.stringify(keys)).toBe(expected)
      expect(io.screen()).toContain('Enable encryption? [y/N] ')
    }
  })

  it('plain streams (no terminal): one line is the answer', async () => {
    const io = fakeTerminal(false)
    io.keyboard.write('y\n')
    await expect(confirmYesNo('Go?', io)).resolves.toBe(true)
  })
})

describe('readAnswer', () => {
  it('reads one line; the input is paused afterwards (a finished question does not keep the process alive)', async () => {
    const io = fakeTerminal(false)
    io.keyboard.write('first\nsecond\n')
    await expect(readAnswer('? ', io)).resolves.toEqual({kind: 'line', text: 'first'})
    expect(io.keyboard.isPaused()).toBe(true)
  })
})
