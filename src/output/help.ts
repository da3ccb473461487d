import {Help} from '@oclif/core'

/** Usage lines read `kubectl encryption …`: the plugin is run through kubectl, not by its file name. */
export default class KubectlHelp extends Help {
  protected override log(...args: string[]): void {
    super.log(...args.map((a) => a.replaceAll('kubectl-encryption ', 'kubectl encryption ')))
  }
}
