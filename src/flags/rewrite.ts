import {Flags} from '@oclif/core'

import {usageError} from '../errors.js'
import {labelSelectorProblem} from '../kube/label-selector.js'
import {FileCheckpointStore} from '../usecases/rewrite/checkpoint.js'
import {REWRITE_DEFAULTS} from '../usecases/rewrite/rewrite.js'
import {etcdFlags} from './etcd.js'
import {kubeFlags, parseNamespace} from './kube.js'
import {sshFlags} from './ssh.js'

export const rewriteFlags = {
  ...kubeFlags,
  ...sshFlags,
  ...etcdFlags,
  namespace: Flags.string({
    char: 'n',
    description: 'Namespace to rewrite (repeatable). Default: the context namespace.',
    multiple: true,
    helpGroup: 'KUBE',
    parse: parseNamespace,
  }),
  'all-namespaces': Flags.boolean({
    char: 'A',
    description: 'Rewrite objects in all namespaces.',
    default: false,
    helpGroup: 'KUBE',
  }),
  resource: Flags.string({
    description:
      'Resource to rewrite, e.g. secrets, configmaps, pandas.awesome.bears.example, or a wildcard *.apps (repeatable). Default: every resource the encryption config lists; secrets if it cannot be read.',
    multiple: true,
  }),
  selector: Flags.string({
    char: 'l',
    description: 'Label selector, as kubectl (e.g. app=web,tier!=db).',
    async parse(input) {
      const problem = labelSelectorProblem(input)
      if (problem) throw new Error(`invalid label selector ${JSON.stringify(input)}: ${problem}`)
      return input
    },
  }),
  concurrency: Flags.integer({
    description: 'Requests in flight at once.',
    default: REWRITE_DEFAULTS.concurrency,
    min: 1,
    max: 256,
  }),
  qps: Flags.integer({
    description: 'Requests per second over all requests (0 = no limit).',
    default: REWRITE_DEFAULTS.qps,
    min: 0,
  }),
  'chunk-size': Flags.integer({
    description: 'Objects per list page, as kubectl.',
    default: REWRITE_DEFAULTS.pageSize,
    min: 1,
    max: 10_000,
  }),
  resume: Flags.boolean({
    description: 'Continue the interrupted run of the same scope from its checkpoint.',
    default: false,
  }),
  'state-file': Flags.string({
    description: 'Checkpoint file (default: one per cluster and scope under $XDG_STATE_HOME/kubectl-encryption/).',
  }),
  'dry-run': Flags.boolean({description: 'List and count; write nothing.', default: false}),
  'only-stale': Flags.boolean({
    description: 'Scan etcd first and rewrite only values not under the current write key.',
    default: false,
  }),
  verify: Flags.boolean({
    description: 'Scan etcd afterwards and report (exit 5) values still not under the current write key.',
    default: false,
  }),
  config: Flags.string({
    description: "The cluster's EncryptionConfiguration as a local file, instead of reading it from a node over SSH.",
  }),
  ssh: Flags.boolean({
    description: 'Read the encryption config from a control-plane node over SSH (--no-ssh: do not).',
    default: true,
    allowNo: true,
  }),
  engine: Flags.string({
    description:
      "Who writes: client (this plugin, paced by --qps and --concurrency) or svm (the cluster's storage-version migrator in kube-controller-manager, one StorageVersionMigration per resource; needs -A).",
    options: ['client', 'svm'],
    default: 'client',
  }),
  // Hidden: for bench:rewrite's JSON-against-protobuf comparison, not a user's choice.
  wire: Flags.string({
    description:
      "Encoding of the client engine's lists and writes of built-in resources: protobuf (as client-go) or json. Custom resources are always JSON.",
    options: ['protobuf', 'json'],
    default: 'protobuf',
    hidden: true,
  }),
}

/** -n with -A, and what --engine svm cannot honour: usage errors before anything runs. */
export function checkRewriteFlags(
  flags: Parameters<typeof checkSvmFlags>[0] & {'all-namespaces': boolean; engine: string},
): void {
  if (flags['all-namespaces'] && flags.namespace?.length)
    throw usageError('USAGE', 'use either -n/--namespace or -A/--all-namespaces, not both', {
      hint: 'Pass -A for every namespace, or one -n per namespace.',
    })
  if (flags.engine === 'svm') checkSvmFlags(flags)
}

/** --state-file: its directory must exist (exit 3 otherwise), checked before connecting. */
export async function stateFileFlag(path: string | undefined): Promise<FileCheckpointStore | undefined> {
  if (path === undefined) return undefined
  const store = new FileCheckpointStore(path, {createDir: false, flag: '--state-file'})
  await store.check()
  return store
}

/**
 * --engine svm: one StorageVersionMigration covers every object of a resource in every namespace,
 * at the controller's pace; options that narrow or pace the client's writes cannot be honoured.
 */
function checkSvmFlags(flags: {
  'only-stale': boolean
  namespace?: string[]
  selector?: string
  concurrency: number
  qps: number
  'chunk-size': number
}): void {
  const refused: Array<[boolean, string, string]> = [
    [flags['only-stale'], '--only-stale', 'the migrator writes every object of a resource'],
    [Boolean(flags.namespace?.length), '--namespace', 'a migration covers every namespace; pass -A'],
    [flags.selector !== undefined, '--selector', 'a migration covers every object of a resource'],
    [flags.concurrency !== REWRITE_DEFAULTS.concurrency, '--concurrency', 'the migrator sets its own pace'],
    [flags.qps !== REWRITE_DEFAULTS.qps, '--qps', 'the migrator sets its own pace'],
    [flags['chunk-size'] !== REWRITE_DEFAULTS.pageSize, '--chunk-size', 'the migrator reads from its own cache'],
  ]
  const first = refused.find(([given]) => given)
  if (first) throw usageError('USAGE', `${first[1]} cannot be used with --engine svm: ${first[2]}`)
}
