import {Flags} from '@oclif/core'

import {usageError} from '../errors.js'
import {etcdFlags} from './etcd.js'
import {kubeFlags} from './kube.js'
import {sshFlags} from './ssh.js'

export const statusFlags = {
  ...kubeFlags,
  ...sshFlags,
  ...etcdFlags,
  ssh: Flags.boolean({
    description: 'Read config files and the manifests dir on the nodes over SSH (--no-ssh: API and metrics only).',
    default: true,
    allowNo: true,
  }),
  scan: Flags.boolean({
    description: 'Read every value in etcd under the covered resources and classify it.',
    default: false,
  }),
  resource: Flags.string({
    description:
      'With --scan: scan this resource (e.g. secrets, configmaps, pandas.awesome.bears.example); repeatable.',
    multiple: true,
  }),
  config: Flags.string({
    description: 'Use this local EncryptionConfiguration file instead of reading the one on the nodes.',
  }),
  'page-size': Flags.integer({description: 'With --scan: keys per etcd page.', default: 500, min: 1, max: 10_000}),
  snapshot: Flags.string({
    description:
      "With --scan: scan this etcd snapshot file (etcdctl snapshot save) offline instead of the cluster's etcd.",
    helpGroup: 'SNAPSHOT',
  }),
  etcdutl: Flags.string({
    description: 'With --snapshot: the etcdutl binary (default: $KUBECTL_ENCRYPTION_ETCDUTL, then PATH).',
    helpGroup: 'SNAPSHOT',
  }),
  'etcd-binary': Flags.string({
    description:
      'With --snapshot: the etcd binary that serves the restored snapshot (default: $KUBECTL_ENCRYPTION_ETCD, then PATH).',
    helpGroup: 'SNAPSHOT',
  }),
}

/** Flags that name a live etcd or cluster discovery, which a snapshot scan does not use. */
const NOT_WITH_SNAPSHOT = [
  'resource',
  'etcd-via',
  'etcd-endpoints',
  'etcd-cacert',
  'etcd-cert',
  'etcd-key',
  'etcd-node',
] as const

/** The flags that only go with --scan or --snapshot, or not with --snapshot: usage errors before anything runs. */
export function checkStatusFlags(flags: {
  scan: boolean
  snapshot?: string
  etcdutl?: string
  'etcd-binary'?: string
  resource?: string[]
  [name: string]: unknown
}): void {
  if ((flags.etcdutl || flags['etcd-binary']) && !flags.snapshot)
    throw usageError('USAGE', `--${flags.etcdutl ? 'etcdutl' : 'etcd-binary'} needs --snapshot`)
  if (!flags.snapshot) {
    if (flags.resource && !flags.scan) throw usageError('USAGE', '--resource needs --scan')
    return
  }
  if (!flags.scan)
    throw usageError('USAGE', '--snapshot needs --scan', {
      hint: `Run 'kubectl encryption status --scan --snapshot ${flags.snapshot}'.`,
    })
  const conflicting = NOT_WITH_SNAPSHOT.find((name) => flags[name] !== undefined)
  if (conflicting)
    throw usageError(
      'USAGE',
      `--${conflicting} cannot be used with --snapshot: the snapshot file is read, not the cluster's etcd`,
    )
}
