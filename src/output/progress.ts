import type {Ora} from 'ora'

/**
 * Progress on stderr. A spinner only when stderr is a TTY, not under CI, and not with -o json|yaml
 * (docs/architecture.md §2); otherwise plain lines: every update with `verbose`, else the current step at most
 * every `intervalMs` (5 s), so a CI log of a long rotate or rewrite shows it moving (issue 13) and a
 * short run prints nothing.
 */
export interface Progress {
  update(text: string): void
  succeed(text?: string): void
  fail(text?: string): void
  stop(): void
  /**
   * Takes the spinner off the terminal (for a question to the user: the spinner would redraw over it
   * and, on a terminal, swallow what is typed); the function returned puts it back.
   */
  pause(): () => void
  /** A warning line on stderr (always shown), without breaking the spinner. */
  warn(text: string): void
}

export interface ProgressOptions {
  machineOutput: boolean
  verbose: boolean
  stream?: NodeJS.WriteStream
  /** Without a spinner and without verbose: the least time between two progress lines (default 5000). */
  intervalMs?: number
}

/**
 * A terminal whose size was never set reports 0 columns (a pseudo-terminal opened by `script`, `expect`
 * or a CI runner without a window size). ora divides by the width to count the lines it must clear
 * before each frame: with 0 that is Infinity lines, a loop that never ends and blocks the whole
 * process (no prompt, no progress, no Ctrl-C). Such a terminal gets plain progress lines instead.
 */
export function spinnerAllowed(options: ProgressOptions): boolean {
  const stream = options.stream ?? process.stderr
  return Boolean(stream.isTTY) && (stream.columns ?? 0) > 0 && !process.env.CI && !options.machineOutput
}

export async function startProgress(text: string, options: ProgressOptions): Promise<Progress> {
  const stream = options.stream ?? process.stderr
  if (spinnerAllowed(options)) {
    const {default: ora} = await import('ora')
    const spinner: Ora = ora({text, stream}).start()
    const pause = () => {
      const wasSpinning = spinner.isSpinning
      // stop() clears the line, shows the cursor and gives stdin back (ora's discardStdin keeps it raw)
      spinner.stop()
      return () => {
        if (wasSpinning) spinner.start()
      }
    }
    return {
      update: (t) => {
        spinner.text = t
      },
      succeed: (t) => spinner.succeed(t),
      fail: (t) => spinner.fail(t),
      stop: () => spinner.stop(),
      pause,
      warn: (t) => {
        const resume = pause()
        stream.write(`Warning: ${t}\n`)
        resume()
      },
    }
  }
  if (options.verbose) {
    const line = (t?: string) => {
      if (t) stream.write(t + '\n')
    }
    line(text)
    return {
      update: line,
      succeed: line,
      fail: (t) => t && stream.write(t + '\n'),
      stop: () => {},
      pause: () => () => {},
      warn: (t) => stream.write(`Warning: ${t}\n`),
    }
  }
  // The current step, printed by a timer: a step that changed, or one still going on (with its time).
  let current = text
  let printed: string | undefined
  let since = Date.now()
  let timer: NodeJS.Timeout | undefined
  const start = () => {
    timer = setInterval(() => {
      if (current !== printed) {
        stream.write(current + '\n')
        printed = current
        since = Date.now()
      } else stream.write(`${current} (${Math.round((Date.now() - since) / 1000)}s)\n`)
    }, options.intervalMs ?? 5000)
    timer.unref()
  }
  const stop = () => {
    clearInterval(timer)
    timer = undefined
  }
  start()
  return {
    update: (t) => {
      current = t
    },
    succeed: stop,
    fail: (t) => {
      stop()
      if (t) stream.write(t + '\n')
    },
    stop,
    // A line printed while a question waits would land in the middle of what the user types.
    pause: () => {
      const wasRunning = timer !== undefined
      stop()
      return () => {
        if (wasRunning) start()
      }
    },
    warn: (t) => stream.write(`Warning: ${t}\n`),
  }
}
