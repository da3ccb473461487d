import {createHash} from 'node:crypto'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {backupDirFor} from '../../../src/ssh/remote-files.js'
import {ShellRemoteFiles} from '../../../src/ssh/shell-remote-files.js'
import {LocalSession} from './local-session.js'

describe('ShellRemoteFiles (scripts run for real on this machine)', () => {
  let root: string
  let session: LocalSession
  let files: ShellRemoteFiles
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'remote-files-'))
    session = new LocalSession('cp-1')
    files = new ShellRemoteFiles(session)
  })
  afterEach(() => rmSync(root, {recursive: true, force: true}))

  it('reads and stats a file with the apiserver hash format; undefined when missing', async () => {
    const path = join(root, 'a b.yaml')
    writeFileSync(path, 'hello\n', {mode: 0o640})
    chmodSync(path, 0o640)
    expect((await files.read(path))?.toString()).toBe('hello\n')
    const stat = await files.stat(path)
    expect(stat).toMatchObject({type: 'file', mode: 0o640, size: 6, uid: process.getuid?.()})
    expect(stat?.sha256).toBe('sha256:' + createHash('sha256').update('hello\n').digest('hex'))
    expect(await files.read(join(root, 'nope'))).toBeUndefined()
    expect(await files.stat(join(root, 'nope'))).toBeUndefined()
    expect((await files.stat(root))?.type).toBe('directory')
  })

  it('writes atomically: data over stdin only, mode kept, no temp file left', async () => {
    const manifests = join(root, 'manifests')
    mkdirSync(manifests)
    const target = join(manifests, 'kube-apiserver.yaml')
    writeFileSync(target, 'old\n')
    chmodSync(target, 0o644)
    const secret = 'c2VjcmV0IGlzIHNlY3VyZQ=='
    await files.writeAtomic(target, `new ${secret}\n`)
    expect(readFileSync(target, 'utf8')).toBe(`new ${secret}\n`)
    expect(statSync(target).mode & 0o777).toBe(0o644)
    expect(readdirSync(manifests)).toEqual(['kube-apiserver.yaml'])
    expect(session.commands.flat().join(' ')).not.toContain(secret)
  })

  it('never renames a short file over the target when the transfer is cut off', async () => {
    const target = join(root, 'enc.yaml')
    writeFileSync(target, 'old\n', {mode: 0o600})
    // A sender killed mid-transfer: the node's cat sees end of input after part of the data.
    class CutOffSession extends LocalSession {
      override async run(argv: readonly string[], options: {stdin?: Uint8Array | string} = {}) {
        return super.run(argv, {
          ...options,
          stdin: options.stdin === undefined ? undefined : Buffer.from(options.stdin).subarray(0, 5),
        })
      }
    }
    const cut = new ShellRemoteFiles(new CutOffSession('cp-1'))
    await expect(cut.writeAtomic(target, 'the whole new config\n')).rejects.toMatchObject({
      code: 'REMOTE_WRITE_CORRUPT',
    })
    expect(readFileSync(target, 'utf8')).toBe('old\n')
    expect(readdirSync(root)).toEqual(['enc.yaml'])
  })

  it('writes new files root-only 0600 unless told otherwise, and honours an explicit mode', async () => {
    const enc = join(root, 'enc.yaml')
    await files.writeAtomic(enc, 'x')
    expect(statSync(enc).mode & 0o777).toBe(0o600)
    await files.writeAtomic(enc, 'y', {mode: 0o640, uid: 0, gid: 0})
    expect(statSync(enc).mode & 0o777).toBe(0o640)
  })

  it('backs up outside the target dir (0700), numbering repeats, and restores atomically', async () => {
    const target = join(root, 'kube-apiserver.yaml')
    writeFileSync(target, 'v1\n', {mode: 0o600})
    const dir = join(root, 'tmp', 'kubectl-encryption-x')
    const first = await files.backup(target, dir)
    expect(first).toBe(join(dir, 'kube-apiserver.yaml'))
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    writeFileSync(target, 'v2\n')
    const second = await files.backup(target, dir)
    expect(second).toBe(join(dir, 'kube-apiserver.yaml.1'))
    writeFileSync(target, 'broken\n')
    await files.restore(first, target)
    expect(readFileSync(target, 'utf8')).toBe('v1\n')
    expect(readdirSync(root).sort()).toEqual(['kube-apiserver.yaml', 'tmp'])
    await expect(files.backup(join(root, 'nope'), dir)).rejects.toMatchObject({code: 'REMOTE_FILE_MISSING'})
    await expect(files.restore(join(dir, 'nope'), target)).rejects.toMatchObject({code: 'BACKUP_MISSING', exitCode: 7})
  })

  it('refuses to put backups in the manifests directory', async () => {
    await expect(files.backup('/etc/hosts', '/etc/kubernetes/manifests/bak')).rejects.toMatchObject({
      code: 'BACKUP_DIR_IN_MANIFESTS',
    })
  })

  it('lists a directory including dot files and odd names; undefined when missing', async () => {
    writeFileSync(join(root, 'kube-apiserver.yaml'), 'x')
    writeFileSync(join(root, '.hidden'), 'yy')
    writeFileSync(join(root, 'with space.bak'), '')
    mkdirSync(join(root, 'sub'))
    expect(await files.list(root)).toEqual([
      {name: '.hidden', type: 'file', size: 2},
      {name: 'kube-apiserver.yaml', type: 'file', size: 1},
      {name: 'sub', type: 'directory', size: expect.any(Number)},
      {name: 'with space.bak', type: 'file', size: 0},
    ])
    expect(await files.list(join(root, 'nope'))).toBeUndefined()
  })

  it('creates directories with a mode, removes files, rejects relative paths', async () => {
    const dir = join(root, 'enc', 'deeper')
    await files.mkdir(dir, 0o700)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    writeFileSync(join(dir, 'f'), '')
    await files.remove(join(dir, 'f'))
    await files.remove(join(dir, 'f'))
    expect(readdirSync(dir)).toEqual([])
    await expect(files.read('relative/path')).rejects.toMatchObject({code: 'REMOTE_PATH_INVALID'})
  })

  it('names backup directories by UTC timestamp under /etc/kubernetes/tmp', () => {
    expect(backupDirFor(new Date('2026-11-27T20:49:24.123Z'))).toBe(
      '/etc/kubernetes/tmp/kubectl-encryption-20261127T204924Z',
    )
  })
})
