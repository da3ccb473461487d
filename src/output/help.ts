import {Help} from '@oclif/core'

/**
 * Usage lines read `kubectl encryption …`: the plugin is run through kubectl, not by its file name.
 * (The bundle renders help strings without an EJS tag as they are: scripts/bundle.ts, ejsOnlyForTags.)
 */
export default class KubectlHelp extends Help {
  protected override log(...args: string[]): void {
    super.log(...args.map((a) => a.replaceAll('kubectl-encryption ', 'kubectl encryption ')))
  }
}
