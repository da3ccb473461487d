import {Args} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {bashScript, zshScript} from '../cli/completion.js'

export interface CompletionResult {
  shell: 'bash' | 'zsh'
  script: string
}

export default class Completion extends BaseCommand<CompletionResult, typeof Completion> {
  static override description = `Print a shell completion script for bash or zsh.

The script completes commands, flags and flag values of kubectl-encryption. For \`kubectl encryption <TAB>\` through kubectl's own completion (kubectl 1.26 or later), put an executable \`kubectl_complete-encryption\` on PATH that runs \`kubectl-encryption __complete "$@"\`.`

  static override examples = [
    'source <(kubectl encryption completion bash)',
    'kubectl encryption completion zsh > "${fpath[1]}/_kubectl-encryption"',
  ]

  static override args = {
    shell: Args.string({description: 'the shell', options: ['bash', 'zsh'], required: true}),
  }

  async execute(): Promise<CompletionResult> {
    const shell = this.args.shell as CompletionResult['shell']
    const bin = this.config.bin
    return {shell, script: shell === 'bash' ? bashScript(bin) : zshScript(bin)}
  }

  protected renderTable(result: CompletionResult): string {
    return result.script
  }
}
