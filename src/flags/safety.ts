import {Flags} from '@oclif/core'

/** Shared by every command that changes the control plane. */
export const safetyFlags = {
  'dry-run': Flags.boolean({description: 'Print the plan and a unified diff per node and file; change nothing.', default: false}),
  yes: Flags.boolean({char: 'y', description: 'Do not ask for confirmation (for scripts).', default: false}),
  force: Flags.boolean({description: 'Go ahead even when the control-plane nodes run different encryption configs.', default: false}),
  timeout: Flags.integer({description: 'Seconds to wait for each kube-apiserver to come back (or reload) before rolling back.', default: 300, min: 1}),
}
