import {Flags} from '@oclif/core'

/** Shared by every command that changes the control plane. */
export const safetyFlags = {
  'dry-run': Flags.boolean({
    description: 'Print the plan and a unified diff per node and file; change nothing.',
    default: false,
  }),
  yes: Flags.boolean({char: 'y', description: 'Do not ask for confirmation (for scripts).', default: false}),
  // A value, not a switch: typing the context name keeps an override from being pasted at the wrong cluster.
  force: Flags.string({
    description:
      'Go ahead despite a refusal that protects stored data (nodes running different configs; values in etcd the new config could not read). The value must be the current context name, typed out.',
    helpValue: 'CONTEXT',
  }),
  timeout: Flags.integer({
    description: 'Seconds to wait for each kube-apiserver to come back (or reload) before rolling back.',
    default: 300,
    min: 1,
  }),
}
