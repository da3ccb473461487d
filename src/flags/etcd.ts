import {Flags} from '@oclif/core'

import {usageError} from '../errors.js'
import type {EtcdTransport} from '../etcd/etcd-reader.js'
import {kubeOptionsFromFlags} from './kube.js'

/** How to reach etcd (docs/architecture.md §1): the seed's etcdctl flag names, plus the transport. */
export const etcdFlags = {
  'etcd-via': Flags.option({
    description:
      'How to read etcd: direct (gRPC to --etcd-endpoints), exec (etcdctl in the etcd pod through pods/exec), ssh (etcdctl on a control-plane node). ' +
      'Default: direct when --etcd-endpoints is given, else exec.',
    options: ['direct', 'exec', 'ssh'] as const,
    helpGroup: 'ETCD',
  })(),
  'etcd-endpoints': Flags.string({
    description: 'etcd client URLs, comma-separated (as etcdctl --endpoints), e.g. https://10.0.0.1:2379.',
    helpGroup: 'ETCD',
  }),
  'etcd-cacert': Flags.string({
    description: 'etcd CA certificate (as etcdctl --cacert). With exec/ssh: the path inside the pod or on the node.',
    helpGroup: 'ETCD',
  }),
  'etcd-cert': Flags.string({
    description: 'etcd client certificate (as etcdctl --cert). With exec/ssh: the path inside the pod or on the node.',
    helpGroup: 'ETCD',
  }),
  'etcd-key': Flags.string({
    description: 'etcd client key (as etcdctl --key). With exec/ssh: the path inside the pod or on the node.',
    helpGroup: 'ETCD',
  }),
  'etcd-node': Flags.string({
    description: 'Control-plane node whose etcd pod (exec) or etcdctl (ssh) to use; default: the first ready one.',
    helpGroup: 'ETCD',
  }),
}

export interface EtcdFlagValues {
  'etcd-via'?: EtcdTransport
  'etcd-endpoints'?: string
  'etcd-cacert'?: string
  'etcd-cert'?: string
  'etcd-key'?: string
  'etcd-node'?: string
}

export interface EtcdAccessOptions {
  /** Chosen transport; undefined = decide (direct with endpoints, else exec). */
  via?: EtcdTransport
  endpoints: string[]
  cacert?: string
  cert?: string
  key?: string
  node?: string
  /** --request-timeout: the bound on each etcd read (direct), retries included; 0/undefined = 30 s. */
  timeoutMs?: number
}

export function etcdOptionsFromFlags(flags: EtcdFlagValues & {'request-timeout'?: string}): EtcdAccessOptions {
  const endpoints = (flags['etcd-endpoints'] ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
  if (flags['etcd-via'] === 'direct' && endpoints.length === 0) {
    throw usageError('USAGE', '--etcd-via direct needs --etcd-endpoints', {
      hint: 'Pass --etcd-endpoints https://HOST:2379 with --etcd-cacert/--etcd-cert/--etcd-key, or use --etcd-via exec.',
    })
  }
  if (Boolean(flags['etcd-cert']) !== Boolean(flags['etcd-key'])) {
    throw usageError('USAGE', '--etcd-cert and --etcd-key go together', {
      hint: 'Pass both the client certificate and its key.',
    })
  }
  return {
    via: flags['etcd-via'] ?? (endpoints.length > 0 ? 'direct' : undefined),
    endpoints,
    cacert: flags['etcd-cacert'],
    cert: flags['etcd-cert'],
    key: flags['etcd-key'],
    node: flags['etcd-node'],
    timeoutMs:
      flags['request-timeout'] === undefined
        ? undefined
        : kubeOptionsFromFlags({'request-timeout': flags['request-timeout']}).requestTimeoutMs,
  }
}
