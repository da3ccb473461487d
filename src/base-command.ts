import {Command, Errors, type Interfaces} from '@oclif/core'

import {EXIT, partialResultOf, PluginError, usageError} from './errors.js'
import {outputFlags} from './flags/output.js'
import {type Progress, startProgress} from './output/progress.js'
import {type OutputFormat, renderResult} from './output/render.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * One base class owns what every verb shares (docs/architecture.md §1–2): -o rendering, the error table,
 * warnings and progress on stderr. A subclass implements `execute()` (flags -> one operation ->
 * typed result) and `renderTable()`; `exitCodeFor()` lets a check command turn a result into exit 5.
 */
export abstract class BaseCommand<TResult, T extends typeof Command = typeof Command> extends Command {
  static override baseFlags = outputFlags
  static override enableJsonFlag = false

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>

  protected get outputFormat(): OutputFormat {
    return (this.flags as {output?: OutputFormat} | undefined)?.output ?? 'table'
  }

  protected get machineOutput(): boolean {
    return this.outputFormat === 'json' || this.outputFormat === 'yaml'
  }

  protected get verbose(): boolean {
    return Boolean((this.flags as {verbose?: boolean} | undefined)?.verbose)
  }

  public override async init(): Promise<void> {
    await super.init()
    try {
      const {args, flags} = await this.parse(this.ctor)
      this.flags = flags as BaseFlags<T>
      this.args = args as BaseArgs<T>
    } catch (error) {
      throw usageError(
        'USAGE',
        usageMessage((error as Error).message, this.ctor.flags as Record<string, FlagRange> | undefined),
        {
          hint: `See 'kubectl encryption ${this.id?.replaceAll(':', ' ') ?? ''} --help'.`,
        },
      )
    }
  }

  abstract execute(): Promise<TResult>

  protected abstract renderTable(result: TResult, wide: boolean): string

  /** Exit code for a successful run; checks override this to report problems with exit 5. */
  protected exitCodeFor(_result: TResult): number {
    return EXIT.ok
  }

  public async run(): Promise<TResult> {
    const result = await this.execute()
    process.stdout.write(renderResult(result, this.outputFormat, (r, wide) => this.renderTable(r, wide)))
    const code = this.exitCodeFor(result)
    if (code !== EXIT.ok) process.exitCode = code
    return result
  }

  /** Warnings go to stderr, never into the result document's stream. */
  public override warn(input: string | Error): string | Error {
    process.stderr.write(`Warning: ${input instanceof Error ? input.message : input}\n`)
    return input
  }

  protected progress(text: string): Promise<Progress> {
    return startProgress(text, {machineOutput: this.machineOutput, verbose: this.verbose})
  }

  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit: number}}): Promise<unknown> {
    // oclif's own exits (--help, --version) pass through untouched.
    if (error instanceof Errors.ExitError) throw error
    const pluginError =
      error instanceof PluginError
        ? error
        : new PluginError('unexpected', 'UNEXPECTED', error.message, {detail: error.stack})
    // What the run had done before it failed (per node, per stage) is printed with the error.
    const partial = partialResultOf(error) as TResult | undefined
    if (partial && !this.machineOutput)
      process.stdout.write(renderResult(partial, this.outputFormat, (r, wide) => this.renderTable(r, wide)))
    const lines = [`error: ${pluginError.message}`]
    if (pluginError.hint) lines.push(`hint: ${pluginError.hint}`)
    if (this.verbose && pluginError.detail) lines.push(pluginError.detail)
    process.stderr.write(lines.join('\n') + '\n')
    if (this.machineOutput) {
      const doc = {
        ...partial,
        error: {
          code: pluginError.code,
          message: pluginError.message,
          hint: pluginError.hint,
          exitCode: pluginError.exitCode,
        },
      }
      process.stdout.write(renderResult(doc, this.outputFormat, () => ''))
    }
    this.exit(pluginError.exitCode)
  }
}

/** What a number flag allows, as declared (`Flags.integer({min, max})`). */
export interface FlagRange {
  type?: string
  min?: number
  max?: number
}

/**
 * oclif's parse error in one line. A message ending in ':' lists what is missing on the next line
 * (`Missing 1 required arg:` / `file  EncryptionConfiguration file…`): that line is kept. A number
 * flag oclif could not take (`Parsing --qps` / `Expected an integer … but received: -5`) is said
 * with the value and the whole allowed range, from the flag's own declaration.
 */
export function usageMessage(message: string, flags: Record<string, FlagRange> = {}): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('See more help'))
  const [first = 'invalid usage', next] = lines
  const parsing = /^Parsing --([\w-]+)$/.exec(first)
  if (parsing) {
    const name = parsing[1]!
    const received = next ? /received: (.*)$/.exec(next)?.[1] : undefined
    const range = flagRange(flags[name])
    if (received !== undefined && range) return `--${name} ${JSON.stringify(received)} is not allowed: ${range}`
    if (next) return `--${name}: ${next.charAt(0).toLowerCase()}${next.slice(1)}`
  }
  return first.endsWith(':') && next ? `${first} ${next.replace(/\s{2,}/, ' - ')}` : first
}

function flagRange(flag: FlagRange | undefined): string | undefined {
  if (flag?.type !== 'option' || (flag.min === undefined && flag.max === undefined)) return undefined
  if (flag.min !== undefined && flag.max !== undefined) return `use a whole number from ${flag.min} to ${flag.max}`
  return flag.min === undefined ? `use a whole number up to ${flag.max}` : `use a whole number of ${flag.min} or more`
}
