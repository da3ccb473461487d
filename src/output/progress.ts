import type {Ora} from 'ora'

/**
 * Progress on stderr. A spinner only when stderr is a TTY, not under CI, and not with -o json|yaml
 * (DESIGN.md §2); otherwise progress lines are printed only when `verbose` asks for them.
 */
export interface Progress {
  update(text: string): void
  succeed(text?: string): void
  fail(text?: string): void
  stop(): void
  /** A warning line on stderr (always shown), without breaking the spinner. */
  warn(text: string): void
}

export interface ProgressOptions {
  machineOutput: boolean
  verbose: boolean
  stream?: NodeJS.WriteStream
}

export function spinnerAllowed(options: ProgressOptions): boolean {
  const stream = options.stream ?? process.stderr
  return Boolean(stream.isTTY) && !process.env.CI && !options.machineOutput
}

export async function startProgress(text: string, options: ProgressOptions): Promise<Progress> {
  const stream = options.stream ?? process.stderr
  if (spinnerAllowed(options)) {
    const {default: ora} = await import('ora')
    const spinner: Ora = ora({text, stream}).start()
    return {
      update: (t) => {
        spinner.text = t
      },
      succeed: (t) => spinner.succeed(t),
      fail: (t) => spinner.fail(t),
      stop: () => spinner.stop(),
      warn: (t) => {
        spinner.clear()
        stream.write(`Warning: ${t}\n`)
        if (spinner.isSpinning) spinner.render()
      },
    }
  }
  const line = (t?: string) => {
    if (options.verbose && t) stream.write(t + '\n')
  }
  line(text)
  return {update: line, succeed: line, fail: (t) => t && stream.write(t + '\n'), stop: () => {}, warn: (t) => stream.write(`Warning: ${t}\n`)}
}
