import {Command} from '@oclif/core'

import {complete, type CompletionCommand, formatCompletion} from '../cli/completion.js'

/**
 * `kubectl-encryption __complete [--] WORD…`: the candidates for the last word, in cobra's format,
 * for the completion scripts and for kubectl's plugin completion (`kubectl_complete-encryption`).
 * Takes its words raw: nothing here is parsed as a flag of this command.
 */
export default class Complete extends Command {
  static override hidden = true
  static override strict = false
  static override description = 'Print completion candidates (used by the completion scripts).'

  async run(): Promise<void> {
    const words = this.argv[0] === '--' ? this.argv.slice(1) : this.argv
    const commands = this.config.commands as unknown as CompletionCommand[]
    process.stdout.write(formatCompletion(complete(commands, words.length > 0 ? words : [''])))
  }
}
