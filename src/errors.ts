/**
 * The one error table of the plugin (docs/architecture.md §2). Every failure that reaches the user is a
 * PluginError with a stable `code`; its exit code comes from the kind, never from the call site.
 */
import {EXIT, type ErrorCode, type ErrorKind, type ExitCode} from './error-codes.js'

export {EXIT, type ErrorCode, type ErrorKind, type ExitCode}

export interface PluginErrorOptions {
  /** What the user can do next; printed on its own line. */
  hint?: string
  /** Raw detail (library bodies, stderr); shown only with --verbose. Never key material. */
  detail?: string
  cause?: unknown
}

export class PluginError extends Error {
  readonly exitCode: ExitCode
  /**
   * What the failing command had done before it stopped (per node, per stage), in the shape of the
   * command's result; rendered with the error so a failed run never loses its record.
   */
  partialResult?: object

  constructor(
    readonly kind: ErrorKind,
    /** Stable, machine-readable code, e.g. CONFIG_INVALID, ETCD_UNREACHABLE. */
    readonly code: ErrorCode,
    message: string,
    readonly options: PluginErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'PluginError'
    this.exitCode = EXIT[kind]
  }

  get hint(): string | undefined {
    return this.options.hint
  }

  get detail(): string | undefined {
    return this.options.detail
  }
}

export const usageError = (code: ErrorCode, message: string, options?: PluginErrorOptions) =>
  new PluginError('usage', code, message, options)

export const preconditionError = (code: ErrorCode, message: string, options?: PluginErrorOptions) =>
  new PluginError('precondition', code, message, options)

export const unexpectedError = (code: ErrorCode, message: string, options?: PluginErrorOptions) =>
  new PluginError('unexpected', code, message, options)

/**
 * A run stopped by Ctrl-C or SIGTERM between two steps (never inside one: a node is finished or
 * rolled back first). Exit 4, as any run that did part of its work; the same command continues.
 */
export const interruptedError = (where: string) =>
  new PluginError('partial', 'INTERRUPTED', `interrupted: stopped at ${where}; run the same command to continue`, {
    hint: 'What was done before the stop is shown above; no node was left half-changed.',
  })

export const isPluginError = (error: unknown): error is PluginError => error instanceof PluginError

/**
 * Attaches what an operation had done when `error` stopped it (its result so far). The record
 * travels on the error (also a library error, until the command edge translates it: the
 * translated PluginError keeps it as `cause`); returns the same error, to rethrow.
 */
export function withPartialResult<E>(error: E, partial: object): E {
  if (error instanceof Error) (error as Error & {partialResult?: object}).partialResult = partial
  return error
}

/** The partial result on an error or, after translation, on its cause chain. */
export function partialResultOf(error: unknown): object | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const partial = (e as Error & {partialResult?: object}).partialResult
    if (partial) return partial
  }
  return undefined
}
