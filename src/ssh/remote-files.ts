/**
 * File operations on a control-plane node, as the safe mutation order needs them (docs/architecture.md §3).
 * Implemented over an SshSession by ShellRemoteFiles; operations and tests may fake it.
 */
export interface RemoteStat {
  path: string
  uid: number
  gid: number
  /** Permission bits, e.g. 0o600. */
  mode: number
  size: number
  type: 'file' | 'directory' | 'other'
  /** `sha256:` + hex of the content (files only) — the apiserver's config hash format (docs/kubernetes-behaviour.md §5.6). */
  sha256?: string
}

export interface RemoteDirEntry {
  name: string
  type: 'file' | 'directory' | 'symlink' | 'other'
  size: number
}

export interface WriteOptions {
  /** Mode of the new file; default: the target's current mode, or 0o600 for a new file. */
  mode?: number
  /** Owner of the new file; default: the target's current owner, or root (0:0) for a new file. */
  uid?: number
  gid?: number
}

export interface RemoteFiles {
  readonly node: string
  /** The file's bytes, or undefined when it does not exist. */
  read(path: string): Promise<Buffer | undefined>
  /** Owner, mode, size and sha256, or undefined when the path does not exist. */
  stat(path: string): Promise<RemoteStat | undefined>
  /**
   * Writes a dot-prefixed temp file beside `path` (so the kubelet ignores it), sets owner and mode,
   * checks its sha256, then renames it over `path` (atomic on one filesystem).
   */
  writeAtomic(path: string, data: Uint8Array | string, options?: WriteOptions): Promise<void>
  /** mkdir -p, then the mode on the last component. */
  mkdir(path: string, mode: number): Promise<void>
  /**
   * Copies `path` (owner, mode and times kept) into `backupDir` (created 0700) and returns the
   * backup file's path; a name already taken there gets a numeric suffix.
   */
  backup(path: string, backupDir: string): Promise<string>
  /** Puts a backup back over `target`, atomically, with the backup's owner and mode. */
  restore(backupPath: string, target: string): Promise<void>
  /** Entries of a directory (not recursive); undefined when the directory does not exist. */
  list(dir: string): Promise<RemoteDirEntry[] | undefined>
  /** Removes a file; no error when it is already gone. */
  remove(path: string): Promise<void>
}

/** Where backups go: outside /etc/kubernetes/manifests, one directory per run (docs/architecture.md §3). */
export const BACKUP_ROOT = '/etc/kubernetes/tmp'

export function backupDirFor(date: Date = new Date()): string {
  const stamp = date
    .toISOString()
    .replaceAll(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
  return `${BACKUP_ROOT}/kubectl-encryption-${stamp}`
}
