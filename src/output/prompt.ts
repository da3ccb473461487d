import {createInterface} from 'node:readline/promises'

/**
 * Confirmation on the terminal (stderr, so stdout stays the result). Callers only ask when stdin
 * is a TTY; scripts pass --yes.
 */
export const interactive = () => Boolean(process.stdin.isTTY)

async function ask(question: string): Promise<string> {
  const rl = createInterface({input: process.stdin, output: process.stderr})
  try {
    return (await rl.question(question)).trim()
  } finally {
    rl.close()
  }
}

export async function confirmYesNo(question: string): Promise<boolean> {
  return /^y(es)?$/i.test(await ask(`${question} [y/N] `))
}

/** For the riskiest commands: the user types the context name, as some cloud CLIs do for deletes. */
export async function confirmByTyping(question: string, expected: string): Promise<boolean> {
  return (await ask(`${question}\nType the context name (${expected}) to continue: `)) === expected
}
