import {BaseCommand} from '../base-command.js'
import {formatFields} from '../output/render.js'

export interface VersionResult {
  plugin: string
  version: string
  node: string
  platform: string
}

export default class Version extends BaseCommand<VersionResult, typeof Version> {
  static override description = 'Print the plugin version.'
  static override examples = ['kubectl encryption version', 'kubectl encryption version -o json']

  async execute(): Promise<VersionResult> {
    return {
      plugin: this.config.name,
      version: this.config.version,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    }
  }

  protected renderTable(result: VersionResult): string {
    return formatFields([
      ['Plugin', result.plugin],
      ['Version', `v${result.version}`],
      ['Node', result.node],
      ['Platform', result.platform],
    ])
  }
}
