import {type Command, CommandHelp, Help, type Interfaces} from '@oclif/core'

/**
 * oclif renders every string of a help page as an EJS template (`<%= config.bin %>`): one compiled
 * template, a `new Function`, per string, about 2 ms of a start-up that prints help. A string
 * with no EJS delimiter renders as itself, so it skips EJS; the others still go through it.
 */
export function skipEjsWithoutTags(render: (input: string) => string): (input: string) => string {
  return (input) => (input.includes('<%') || input.includes('%>') ? render(input) : input)
}

class KubectlCommandHelp extends CommandHelp {
  constructor(command: Command.Loadable, config: Interfaces.Config, opts: Interfaces.HelpOptions) {
    super(command, config, opts)
    this.render = skipEjsWithoutTags(this.render)
  }
}

/** Usage lines read `kubectl encryption …`: the plugin is run through kubectl, not by its file name. */
export default class KubectlHelp extends Help {
  protected override CommandHelpClass = KubectlCommandHelp

  constructor(config: Interfaces.Config, opts?: Partial<Interfaces.HelpOptions>) {
    super(config, opts)
    this.render = skipEjsWithoutTags(this.render)
  }

  protected override log(...args: string[]): void {
    super.log(...args.map((a) => a.replaceAll('kubectl-encryption ', 'kubectl encryption ')))
  }
}
