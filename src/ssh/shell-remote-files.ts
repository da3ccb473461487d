import {createHash} from 'node:crypto'
import {posix} from 'node:path'

import {PluginError} from '../errors.js'
import type {RemoteDirEntry, RemoteFiles, RemoteStat, WriteOptions} from './remote-files.js'
import type {RemoteRunResult, SshSession} from './ssh-session.js'

/** Exit code our scripts use for "no such file". */
const MISSING = 3
const CORRUPT = 4

/*
 * Small fixed POSIX sh scripts; paths and numbers arrive as positional parameters ("$1"…), data on
 * stdin. Nothing user-supplied is ever spliced into script text.
 */
const READ = `[ -e "$1" ] || exit ${MISSING}; exec cat -- "$1"`

const STAT = `[ -e "$1" ] || exit ${MISSING}
stat -L -c '%u %g %a %s %F' -- "$1"
if [ -f "$1" ]; then sha256sum -- "$1" | cut -c1-64; fi`

// $1 target, $2 mode (octal or ""), $3 uid:gid (or ""), $4 sha256 of what was sent; data on stdin.
const WRITE = `set -e
target=$1; dir=$(dirname -- "$target"); base=$(basename -- "$target")
tmp="$dir/.$base.kubectl-encryption-tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
umask 077
cat > "$tmp"
if [ -n "$3" ]; then chown -- "$3" "$tmp"; elif [ -e "$target" ]; then chown --reference="$target" -- "$tmp"; else chown 0:0 -- "$tmp"; fi
if [ -n "$2" ]; then chmod -- "$2" "$tmp"; elif [ -e "$target" ]; then chmod --reference="$target" -- "$tmp"; else chmod 0600 -- "$tmp"; fi
sync -- "$tmp" 2>/dev/null || true
sum=$(sha256sum -- "$tmp" | cut -c1-64)
# A sender killed mid-transfer ends cat early: never rename a short file over the target.
[ "$sum" = "$4" ] || exit ${CORRUPT}
mv -f -- "$tmp" "$target"
trap - EXIT`

const MKDIR = `set -e; mkdir -p -- "$1"; chmod -- "$2" "$1"`

// $1 source, $2 backup dir; prints the backup path.
const BACKUP = `set -e
[ -e "$1" ] || exit ${MISSING}
umask 077
mkdir -p -- "$2"; chmod 0700 -- "$2"
base=$(basename -- "$1"); dst="$2/$base"; n=0
while [ -e "$dst" ]; do n=$((n+1)); dst="$2/$base.$n"; done
cp -p -- "$1" "$dst"
printf '%s\\n' "$dst"`

// $1 backup, $2 target: copy beside the target (dot-prefixed), then rename over it.
const RESTORE = `set -e
[ -e "$1" ] || exit ${MISSING}
dir=$(dirname -- "$2"); base=$(basename -- "$2")
tmp="$dir/.$base.kubectl-encryption-tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
cp -p -- "$1" "$tmp"
mv -f -- "$tmp" "$2"
trap - EXIT`

const LIST = `[ -d "$1" ] || exit ${MISSING}; find "$1" -mindepth 1 -maxdepth 1 -printf '%y %s %f\\0'`

const REMOVE = `rm -f -- "$1"`

const sh = (script: string, ...args: string[]) => ['sh', '-c', script, 'sh', ...args]

/** RemoteFiles over an SshSession with coreutils on the node (every kubeadm node has them). */
export class ShellRemoteFiles implements RemoteFiles {
  constructor(private readonly session: SshSession) {}

  get node(): string {
    return this.session.node
  }

  private fail(op: string, path: string, result: RemoteRunResult): PluginError {
    return new PluginError(
      'unexpected',
      'REMOTE_FILE_OP_FAILED',
      `Could not ${op} ${path} on node ${this.node} (exit ${result.exitCode}).`,
      {
        hint: 'Check the path, free disk space and permissions on the node; run with --verbose for the remote message.',
        detail: result.stderr.trim(),
      },
    )
  }

  private static checkAbsolute(path: string): void {
    if (!posix.isAbsolute(path) || path.includes('\0'))
      throw new PluginError('usage', 'REMOTE_PATH_INVALID', `Remote path ${JSON.stringify(path)} must be absolute.`)
  }

  async read(path: string): Promise<Buffer | undefined> {
    ShellRemoteFiles.checkAbsolute(path)
    const result = await this.session.run(sh(READ, path))
    if (result.exitCode === MISSING) return undefined
    if (result.exitCode !== 0) throw this.fail('read', path, result)
    return result.stdout
  }

  async stat(path: string): Promise<RemoteStat | undefined> {
    ShellRemoteFiles.checkAbsolute(path)
    const result = await this.session.run(sh(STAT, path))
    if (result.exitCode === MISSING) return undefined
    if (result.exitCode !== 0) throw this.fail('stat', path, result)
    const [first = '', hash] = result.stdout.toString('utf8').trim().split('\n')
    const [uid, gid, mode, size, ...typeWords] = first.split(' ')
    const typeText = typeWords.join(' ')
    const type = typeText.startsWith('regular') ? 'file' : typeText === 'directory' ? 'directory' : 'other'
    return {
      path,
      uid: Number(uid),
      gid: Number(gid),
      mode: Number.parseInt(mode ?? '0', 8),
      size: Number(size),
      type,
      sha256: hash ? `sha256:${hash}` : undefined,
    }
  }

  async writeAtomic(path: string, data: Uint8Array | string, options: WriteOptions = {}): Promise<void> {
    ShellRemoteFiles.checkAbsolute(path)
    const mode = options.mode === undefined ? '' : options.mode.toString(8).padStart(4, '0')
    const owner = options.uid === undefined ? '' : `${options.uid}:${options.gid ?? options.uid}`
    const expected = createHash('sha256').update(data).digest('hex')
    const result = await this.session.run(sh(WRITE, path, mode, owner, expected), {stdin: data})
    // The node compares the sha256 before the rename, so exit 0 means the target holds exactly `data`.
    if (result.exitCode === CORRUPT) {
      throw new PluginError(
        'unexpected',
        'REMOTE_WRITE_CORRUPT',
        `The file written to ${path} on node ${this.node} does not match what was sent.`,
        {
          hint: 'The target was left as it was; check the connection and disk space, then run again.',
        },
      )
    }
    if (result.exitCode !== 0) throw this.fail('write', path, result)
  }

  async mkdir(path: string, mode: number): Promise<void> {
    ShellRemoteFiles.checkAbsolute(path)
    const result = await this.session.run(sh(MKDIR, path, mode.toString(8).padStart(4, '0')))
    if (result.exitCode !== 0) throw this.fail('create directory', path, result)
  }

  async backup(path: string, backupDir: string): Promise<string> {
    ShellRemoteFiles.checkAbsolute(path)
    ShellRemoteFiles.checkAbsolute(backupDir)
    if (backupDir.replace(/\/+$/, '').startsWith('/etc/kubernetes/manifests')) {
      throw new PluginError(
        'unexpected',
        'BACKUP_DIR_IN_MANIFESTS',
        'Backups must never go into /etc/kubernetes/manifests: the kubelet would run them.',
      )
    }
    const result = await this.session.run(sh(BACKUP, path, backupDir))
    if (result.exitCode === MISSING) {
      throw new PluginError(
        'precondition',
        'REMOTE_FILE_MISSING',
        `Cannot back up ${path} on node ${this.node}: it does not exist.`,
      )
    }
    if (result.exitCode !== 0) throw this.fail('back up', path, result)
    return result.stdout.toString('utf8').trim()
  }

  async restore(backupPath: string, target: string): Promise<void> {
    ShellRemoteFiles.checkAbsolute(backupPath)
    ShellRemoteFiles.checkAbsolute(target)
    const result = await this.session.run(sh(RESTORE, backupPath, target))
    if (result.exitCode === MISSING) {
      throw new PluginError(
        'rollbackFailed',
        'BACKUP_MISSING',
        `The backup ${backupPath} on node ${this.node} is gone; cannot restore ${target}.`,
      )
    }
    if (result.exitCode !== 0) throw this.fail('restore', target, result)
  }

  async list(dir: string): Promise<RemoteDirEntry[] | undefined> {
    ShellRemoteFiles.checkAbsolute(dir)
    const result = await this.session.run(sh(LIST, dir))
    if (result.exitCode === MISSING) return undefined
    if (result.exitCode !== 0) throw this.fail('list', dir, result)
    return result.stdout
      .toString('utf8')
      .split('\0')
      .filter((entry) => entry !== '')
      .map((entry) => {
        const [kind = '', size = '0', ...rest] = entry.split(' ')
        const type = kind === 'f' ? 'file' : kind === 'd' ? 'directory' : kind === 'l' ? 'symlink' : 'other'
        return {name: rest.join(' '), type, size: Number(size)} satisfies RemoteDirEntry
      })
      .sort((a, b) => a.name.localeCompare(b.name))
  }

  async remove(path: string): Promise<void> {
    ShellRemoteFiles.checkAbsolute(path)
    const result = await this.session.run(sh(REMOVE, path))
    if (result.exitCode !== 0) throw this.fail('remove', path, result)
  }
}
