import {readFile} from 'node:fs/promises'

import {parse as parseYaml} from 'yaml'

import {type ClusterConfig, configFromBytes} from '../controlplane/cluster-config.js'
import {usageError} from '../errors.js'
import type {KubeObject} from '../kube/types.js'

/** verify --from-file: one object with apiVersion, kind and metadata.name, or a usage error (exit 2). */
export async function readManifestFlag(path: string | undefined): Promise<KubeObject | undefined> {
  if (!path) return undefined
  let manifest: KubeObject | undefined
  try {
    manifest = parseYaml(await readFile(path, 'utf8')) as KubeObject
  } catch (error) {
    throw usageError(
      'MANIFEST_UNREADABLE',
      `cannot read --from-file ${path}: ${(error as Error).message.split('\n')[0]}`,
    )
  }
  if (!manifest?.apiVersion || !manifest.kind || !manifest.metadata?.name)
    throw usageError(
      'MANIFEST_INVALID',
      `--from-file ${path} is not one object with apiVersion, kind and metadata.name`,
    )
  return manifest
}

/** verify --config: the file, decoded and validated (an unreadable file is exit 2, an invalid one exit 3). */
export async function readVerifyConfigFlag(path: string | undefined): Promise<ClusterConfig | undefined> {
  if (!path) return undefined
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (error) {
    throw usageError(
      'CONFIG_UNREADABLE',
      `cannot read --config ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    )
  }
  return configFromBytes(bytes, path)
}
