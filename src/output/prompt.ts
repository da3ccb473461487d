import {createInterface} from 'node:readline'

import {preconditionError} from '../errors.js'

/**
 * Confirmation on the terminal. The question goes to stderr, so stdout stays the result (it may be
 * redirected to a file while the user answers on the terminal). Callers ask only when `interactive()`;
 * scripts pass --yes.
 */

/** Where a question is asked and answered: the user's keyboard and the stream they read (stderr). */
export interface PromptTerminal {
  input: NodeJS.ReadableStream
  output: NodeJS.WritableStream
  /** Line editing, echo and Ctrl-C / Ctrl-D as keys (a real terminal); false for plain streams. */
  terminal: boolean
}

export const processTerminal = (): PromptTerminal => ({
  input: process.stdin,
  output: process.stderr,
  terminal: Boolean(process.stdin.isTTY && process.stderr.isTTY),
})

/** A user can answer only when both the keyboard (stdin) and the question (stderr) are on a terminal. */
export const interactive = (): boolean => processTerminal().terminal

export type PromptAnswer = {kind: 'line'; text: string} | {kind: 'end'} | {kind: 'interrupt'}

/**
 * Asks once and waits for one line. End of input (Ctrl-D, a closed stdin) and Ctrl-C are answers too,
 * never a hang: on a terminal readline reads keys in raw mode, so Ctrl-C arrives as a key (its
 * 'SIGINT' event), not as a signal.
 */
export function readAnswer(question: string, io: PromptTerminal): Promise<PromptAnswer> {
  return new Promise((resolve) => {
    const rl = createInterface({input: io.input, output: io.output, terminal: io.terminal})
    let answer: PromptAnswer | undefined
    const settle = (a: PromptAnswer) => {
      if (answer) return
      answer = a
      rl.close()
    }
    rl.on('line', (text) => settle({kind: 'line', text: text.trim()}))
    rl.on('SIGINT', () => {
      io.output.write('^C\n')
      settle({kind: 'interrupt'})
    })
    rl.on('close', () => {
      if (!answer) {
        io.output.write('\n')
        answer = {kind: 'end'}
      }
      // readline leaves the stream flowing; paused, a finished prompt does not keep the process alive.
      io.input.pause()
      resolve(answer)
    })
    // readline redraws only its prompt line: earlier lines of the question are written once, as they are.
    const lastBreak = question.lastIndexOf('\n')
    if (lastBreak >= 0) io.output.write(question.slice(0, lastBreak + 1))
    rl.setPrompt(question.slice(lastBreak + 1))
    rl.prompt()
  })
}

function accepted(answer: PromptAnswer, test: (text: string) => boolean): boolean {
  if (answer.kind === 'interrupt') {
    throw preconditionError('INTERRUPTED', 'Interrupted at the confirmation: nothing was changed.', {
      hint: 'Run the command again and answer the question, or pass --yes.',
    })
  }
  return answer.kind === 'line' && test(answer.text)
}

/** y/N: only "y" or "yes" (any case) goes ahead; anything else, Enter alone and Ctrl-D refuse; Ctrl-C throws. */
export async function confirmYesNo(question: string, io: PromptTerminal = processTerminal()): Promise<boolean> {
  return accepted(await readAnswer(`${question} [y/N] `, io), (text) => /^y(es)?$/i.test(text))
}

/** For the riskiest commands: the user types the context name, as some cloud CLIs do for deletes. */
export async function confirmByTyping(
  question: string,
  expected: string,
  io: PromptTerminal = processTerminal(),
): Promise<boolean> {
  return accepted(
    await readAnswer(`${question}\nType the context name (${expected}) to continue: `, io),
    (text) => text === expected,
  )
}
