import {readFile, stat} from 'node:fs/promises'

import {Args, Flags} from '@oclif/core'

import type {EncryptionConfiguration} from '../encryption/config/model.js'
import {decodeGoBase64} from '../encryption/gocompat/base64.js'
import {etcdKeyFor, etcdKeyProblem} from '../encryption/storage/etcd-key.js'
import {preconditionError, usageError} from '../errors.js'
import {ResourceIndex} from '../kube/resource-index.js'
import type {KubeCluster} from '../kube/types.js'
import {EtcdctlJsonShapeError, type InspectInput, parseEtcdctlJson, parseEtcdctlSimple} from '../usecases/inspect.js'
import {etcdFlags} from './etcd.js'
import {kubeFlags, parseNamespace} from './kube.js'
import {sshFlags} from './ssh.js'

export const inspectArgs = {
  object: Args.string({
    description:
      'An object as TYPE/NAME, or a raw etcd key (/registry/...), read from etcd; or use --value-file for a saved value.',
    required: false,
  }),
}

export const inspectFlags = {
  'value-file': Flags.string({
    description:
      'File holding the raw etcd value, or the output of `etcdctl get KEY -w json` (which carries the key too).',
  }),
  'key-path': Flags.string({
    description:
      'The full etcd key of the value in --value-file, e.g. /registry/secrets/default/s1 (selects the providers; AAD of aesgcm and KMS).',
  }),
  'etcd-prefix': Flags.string({description: "The apiserver's --etcd-prefix.", default: '/registry'}),
  config: Flags.string({description: 'EncryptionConfiguration file to read the value with, as the apiserver would.'}),
  decrypt: Flags.boolean({description: 'Show the decoded object, including Secret data.', default: false}),
  hexdump: Flags.boolean({description: 'Add the stored bytes as `hexdump -C` prints them.', default: false}),
  'kms-dek': Flags.string({
    description:
      'File (mode 0600) with the plaintext DEK or seed of a KMS value: the 32 bytes the KMS plugin returns from Decrypt, as standard base64 (for KMS v2 seed-type values, the seed).',
  }),
  'any-key': Flags.boolean({
    description:
      'With --config: try every provider and key in the file, whatever resource it is for (the etcd key is then optional; without it aesgcm and KMS values cannot be authenticated).',
    default: false,
  }),
  // Reading TYPE/NAME or an etcd key from the cluster:
  ...kubeFlags,
  namespace: Flags.string({
    char: 'n',
    description: 'Namespace of TYPE/NAME (default: the context namespace).',
    helpGroup: 'KUBE',
    parse: parseNamespace,
  }),
  ...sshFlags,
  'etcd-via': etcdFlags['etcd-via'],
  'etcd-endpoints': etcdFlags['etcd-endpoints'],
  'etcd-cacert': etcdFlags['etcd-cacert'],
  'etcd-cert': etcdFlags['etcd-cert'],
  'etcd-key': etcdFlags['etcd-key'],
  'etcd-node': etcdFlags['etcd-node'],
  ssh: Flags.boolean({
    description: 'Read the config from a control-plane node over SSH when --config is not given.',
    default: true,
    allowNo: true,
  }),
}

/** --kms-dek: the 32-byte DEK or seed, as standard base64 in a file that should be 0600 (warned otherwise). */
export async function readKmsDek(path: string, warn: (message: string) => void): Promise<Buffer> {
  let text: string
  try {
    const info = await stat(path)
    if ((info.mode & 0o077) !== 0)
      warn(`${path} is readable by group or others (mode ${(info.mode & 0o777).toString(8)}); keep DEK files at 0600`)
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw preconditionError(
      'KMS_DEK_UNREADABLE',
      `cannot read the --kms-dek file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    )
  }
  const dek = decodeGoBase64(text.trim())
  if (!dek || dek.length === 0) {
    throw preconditionError('KMS_DEK_INVALID', `the --kms-dek file ${path} does not hold standard base64`, {
      hint: 'Write the plaintext DEK or seed (32 bytes) as one line of padded standard base64, e.g. `base64 -w0`.',
    })
  }
  // The apiserver makes every KMS v1 DEK and KMS v2 DEK or seed 32 bytes long (docs/kubernetes-behaviour.md §3.5, §3.6).
  if (dek.length !== KMS_DEK_BYTES) {
    dek.fill(0)
    throw preconditionError(
      'KMS_DEK_INVALID',
      `the --kms-dek file ${path} holds ${dek.length} bytes; a KMS DEK or seed is ${KMS_DEK_BYTES} bytes`,
      {
        hint: 'Write the 32 bytes the KMS plugin returns from Decrypt(encryptedDEKSource) as padded standard base64 (not hex).',
      },
    )
  }
  return dek
}

const KMS_DEK_BYTES = 32

/** A value saved with its key by etcdctl. */
type EtcdctlValue = {key: string; value: Buffer; format: 'etcdctl -w json' | 'etcdctl get'}

/** The value file as `etcdctl get` output, `-w json` or simple (key included), or undefined for a raw value. */
function parseValueFile(raw: Buffer, path: string, etcdPrefix: string): EtcdctlValue | undefined {
  const found = parseEtcdctlOutput(raw, path, etcdPrefix)
  if (found?.value.length === 0) {
    throw preconditionError('VALUE_FILE_EMPTY', `the value of ${found.key} in ${path} is empty`, {
      hint: 'An API object is never stored empty; check the key with `etcdctl get KEY --keys-only`.',
    })
  }
  return found
}

function parseEtcdctlOutput(raw: Buffer, path: string, etcdPrefix: string): EtcdctlValue | undefined {
  const simple = parseEtcdctlSimple(raw, etcdPrefix)
  if (simple) return {...simple, format: 'etcdctl get'}
  let dump: ReturnType<typeof parseEtcdctlJson>
  try {
    dump = parseEtcdctlJson(raw)
  } catch (error) {
    if (!(error instanceof EtcdctlJsonShapeError)) throw error
    throw preconditionError(
      'VALUE_FILE_FORMAT',
      `${path} looks like \`etcdctl get -w json\` output, but ${error.message}`,
      {
        hint: 'Save one value with `etcdctl get KEY -w json > FILE`, or the raw bytes with `etcdctl get KEY --print-value-only > FILE`.',
      },
    )
  }
  if (dump === null) {
    throw preconditionError(
      'VALUE_FILE_NO_KEY',
      `the etcdctl output in ${path} holds no key/value pair (the key does not exist)`,
      {
        hint: 'Check the key with `etcdctl get KEY --keys-only`.',
      },
    )
  }
  return dump ? {...dump, format: 'etcdctl -w json'} : undefined
}

/** Refuses a key that cannot be an API object's etcd key (docs/kubernetes-behaviour.md §12.1) with exit 2, before anything is read. */
export function checkEtcdKey(key: string, etcdPrefix: string, what: string): void {
  const problem = etcdKeyProblem(key, {prefix: etcdPrefix})
  if (problem) {
    throw usageError('INSPECT_ETCD_KEY', `${what} ${JSON.stringify(key)} is not an object's etcd key: ${problem}`, {
      hint: "Give the full key as etcd stores it, e.g. /registry/secrets/default/s1; pass --etcd-prefix if the apiserver's --etcd-prefix is not /registry.",
    })
  }
}

async function readValueFile(path: string): Promise<Buffer> {
  let value: Buffer
  try {
    value = await readFile(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (code ?? (error as Error).message)
    throw preconditionError('VALUE_FILE_UNREADABLE', `cannot read the value file ${path}: ${why}`, {
      hint: 'Save a value with `etcdctl get KEY -w json > FILE`.',
    })
  }
  if (value.length === 0) {
    throw preconditionError('VALUE_FILE_EMPTY', `the value file ${path} is empty`, {
      hint: 'etcdctl prints nothing for a key that does not exist; check the key with `etcdctl get KEY --keys-only`.',
    })
  }
  return value
}

/**
 * The configuration file, decoded and validated as the apiserver would (exit 3 when invalid). The
 * KMSv1 gate is taken as on: inspecting legacy KMS v1 data is what an old config is for here.
 */
export async function loadConfig(path: string): Promise<EncryptionConfiguration> {
  const {loadEncryptionConfig} = await import('../encryption/config/load.js')
  return (await loadEncryptionConfig(path, {featureGates: {KMSv1: true}})).config
}

/**
 * `--etcd-key` is the etcd client key file in every command; inspect once used it for the value's
 * etcd key. An old command line (a key under the etcd prefix) is refused, not read as a key file.
 */
export function refuseOldKeyFlag(etcdKeyFlag: string | undefined, etcdPrefix: string): void {
  if (etcdKeyFlag === undefined || !etcdKeyFlag.startsWith(`${etcdPrefix.replace(/\/+$/, '')}/`)) return
  throw usageError(
    'INSPECT_KEY_PATH_FLAG',
    `--etcd-key ${etcdKeyFlag} looks like a value's etcd key: --etcd-key is the etcd client key file (as etcdctl --key)`,
    {
      hint: `Name the value's etcd key with --key-path ${etcdKeyFlag} (or give it as the argument to read it from etcd).`,
    },
  )
}

/**
 * --value-file and the flags that go with it, checked (exit 2 for a wrong combination, before any
 * file is decoded with a key) and read: the input to inspect, and a note for `etcdctl get` output.
 */
export async function valueFileInput(
  valueFile: string,
  flags: {'key-path'?: string; 'etcd-prefix': string; 'any-key': boolean; config?: string; 'kms-dek'?: string},
  warn: (message: string) => void,
): Promise<{input: Omit<InspectInput, 'etcdPrefix' | 'decrypt' | 'hexdump' | 'anyKey'>; note?: string}> {
  const raw = await readValueFile(valueFile)
  const dump = parseValueFile(raw, valueFile, flags['etcd-prefix'])
  if (dump && flags['key-path'] && flags['key-path'] !== dump.key) {
    throw usageError(
      'INSPECT_ETCD_KEY',
      `--key-path ${flags['key-path']} differs from the key in the etcdctl output (${dump.key})`,
    )
  }
  const etcdKey = dump?.key ?? flags['key-path']
  if (etcdKey !== undefined)
    checkEtcdKey(etcdKey, flags['etcd-prefix'], dump ? `the key in ${valueFile}` : '--key-path')
  if (flags['any-key'] && !flags.config) {
    throw usageError('INSPECT_ANY_KEY', '--any-key needs --config: it tries the keys of that file', {
      hint: 'Add --config FILE.',
    })
  }
  if ((flags.config || flags['kms-dek']) && !etcdKey && !flags['any-key']) {
    throw usageError('INSPECT_ETCD_KEY', '--key-path is required with --config or --kms-dek', {
      hint: 'The etcd key selects the providers for the resource and is the authenticated data of aesgcm and KMS values. Without it, --any-key tries every key in the file.',
    })
  }
  const config = flags.config ? await loadConfig(flags.config) : undefined
  const kmsDek = flags['kms-dek'] ? await readKmsDek(flags['kms-dek'], warn) : undefined
  return {
    input: {
      value: dump?.value ?? raw,
      source: `file:${valueFile}${dump ? ` (${dump.format})` : ''}`,
      etcdKey,
      trailingNewlineMayBeArtifact: !dump,
      config,
      kmsDek,
    },
    note:
      dump?.format === 'etcdctl get'
        ? 'the file is `etcdctl get` output: the key is its first line, the value what follows, without the newline etcdctl adds'
        : undefined,
  }
}

/** The argument TYPE/NAME as its etcd key: the resource found through discovery, the namespace from -n or the context. */
export async function objectEtcdKey(
  object: string,
  cluster: Pick<KubeCluster, 'discovery' | 'context'>,
  namespaceFlag: string | undefined,
  etcdPrefix: string,
): Promise<string> {
  const slash = object.indexOf('/')
  if (slash <= 0 || slash === object.length - 1)
    throw usageError('USAGE', `${JSON.stringify(object)} is neither TYPE/NAME nor an etcd key starting with /`)
  const resource = new ResourceIndex(await cluster.discovery.resources()).resolve(object.slice(0, slash))
  if (!resource)
    throw usageError('RESOURCE_UNKNOWN', `the server has no resource ${JSON.stringify(object.slice(0, slash))}`, {
      hint: "See 'kubectl api-resources'.",
    })
  const namespace = resource.namespaced ? (namespaceFlag ?? cluster.context.namespace) : undefined
  return etcdKeyFor(
    {group: resource.group, resource: resource.resource, namespace, name: object.slice(slash + 1)},
    {prefix: etcdPrefix},
  )
}
