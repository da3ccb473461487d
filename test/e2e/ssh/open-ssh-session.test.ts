import {execFileSync} from 'node:child_process'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {OpenSshConnector, OpenSshSession} from '../../../src/ssh/open-ssh-session.js'
import {DEFAULT_SSH_OPTIONS, type SshOptions} from '../../../src/ssh/ssh-options.js'
import {ShellRemoteFiles} from '../../../src/ssh/shell-remote-files.js'
import {freePort, type Sshd, startSshd} from './sshd-fixture.js'

/**
 * OpenSshSession against real sshd processes: one normal, one whose PATH puts a sudo first that
 * wants a password (as sudo does for a user without NOPASSWD). Hosts are reached through an ssh
 * config file, as a user would with --ssh-config.
 */
describe('OpenSshSession against a real sshd', () => {
  let good: Sshd
  let noSudo: Sshd
  let work: string
  let config: string
  let downPort: number

  beforeAll(async () => {
    good = await startSshd()
    work = mkdtempSync(join(tmpdir(), 'ssh-client-'))
    const fakeBin = join(work, 'fakebin')
    mkdirSync(fakeBin)
    writeFileSync(join(fakeBin, 'sudo'), '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n')
    chmodSync(fakeBin, 0o755)
    chmodSync(join(fakeBin, 'sudo'), 0o755)
    noSudo = await startSshd([`SetEnv PATH=${fakeBin}:/usr/sbin:/usr/bin:/sbin:/bin`], good.clientKey)
    downPort = await freePort()
    const wrongKey = execFileSync('sh', [
      '-c',
      `ssh-keygen -q -t ed25519 -N '' -f ${work}/other && cat ${work}/other.pub`,
    ])
      .toString()
      .trim()
    const knownHosts = join(work, 'known_hosts')
    writeFileSync(
      knownHosts,
      [`[127.0.0.1]:${good.port} ${good.hostPublicKey}`, `[127.0.0.1]:${noSudo.port} ${noSudo.hostPublicKey}`].join(
        '\n',
      ) + '\n',
    )
    writeFileSync(join(work, 'wrong_known_hosts'), `[127.0.0.1]:${good.port} ${wrongKey}\n`)
    writeFileSync(join(work, 'empty_known_hosts'), '')
    const host = (alias: string, port: number, known: string) =>
      [
        `Host ${alias}`,
        '  HostName 127.0.0.1',
        `  Port ${port}`,
        '  User root',
        `  IdentityFile ${good.clientKey}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${known}`,
        '  GlobalKnownHostsFile /dev/null',
      ].join('\n')
    config = join(work, 'ssh_config')
    writeFileSync(
      config,
      [
        host('cp-1', good.port, knownHosts),
        host('cp-nosudo', noSudo.port, knownHosts),
        host('cp-mismatch', good.port, join(work, 'wrong_known_hosts')),
        host('cp-unknown', good.port, join(work, 'empty_known_hosts')),
        host('cp-down', downPort, knownHosts),
        `Host cp-noauth\n  HostName 127.0.0.1\n  Port ${good.port}\n  User root\n  IdentityFile ${join(work, 'other')}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${knownHosts}\n  GlobalKnownHostsFile /dev/null`,
      ].join('\n') + '\n',
    )
  })

  afterAll(async () => {
    await good?.stop()
    await noSudo?.stop()
    if (work) rmSync(work, {recursive: true, force: true})
  })

  const options = (extra: Partial<SshOptions> = {}): SshOptions => ({
    ...DEFAULT_SSH_OPTIONS,
    configFile: config,
    connectTimeoutSeconds: 5,
    ...extra,
  })

  it('runs a command as root through sudo -n, with argv kept word for word', async () => {
    const session = new OpenSshSession('cp-1', 'cp-1', options())
    const result = await session.run(['sh', '-c', 'id -u; printf "%s|" "$@"', 'sh', "it's", 'a b', '$(id)'])
    expect(result.exitCode).toBe(0)
    expect(result.stdout.toString()).toBe("0\nit's|a b|$(id)|")
  })

  it('passes stdin through and reports the remote exit code without throwing', async () => {
    const session = new OpenSshSession('cp-1', 'cp-1', options())
    const echo = await session.run(['cat'], {stdin: Buffer.from([0, 1, 2, 255])})
    expect([...echo.stdout]).toEqual([0, 1, 2, 255])
    const failing = await session.run(['sh', '-c', 'echo oops >&2; exit 4'])
    expect(failing).toMatchObject({exitCode: 4, stderr: 'oops\n'})
  })

  it('does remote file operations over ssh: atomic write, stat, backup, restore, list', async () => {
    const connector = new OpenSshConnector(options())
    const files = new ShellRemoteFiles(connector.open({name: 'cp-1'}))
    const dir = mkdtempSync(join(tmpdir(), 'remote-'))
    try {
      const target = join(dir, 'enc.yaml')
      await files.writeAtomic(target, 'secret: c2VjcmV0IGlzIHNlY3VyZQ==\n', {mode: 0o600, uid: 0, gid: 0})
      expect(readFileSync(target, 'utf8')).toBe('secret: c2VjcmV0IGlzIHNlY3VyZQ==\n')
      expect(statSync(target).mode & 0o777).toBe(0o600)
      const stat = await files.stat(target)
      expect(stat).toMatchObject({uid: 0, gid: 0, mode: 0o600, type: 'file'})
      const backup = await files.backup(target, join(dir, 'tmp', 'kubectl-encryption-t'))
      await files.writeAtomic(target, 'changed\n')
      await files.restore(backup, target)
      expect(readFileSync(target, 'utf8')).toContain('c2VjcmV0')
      expect((await files.list(dir))?.map((e) => e.name)).toEqual(['enc.yaml', 'tmp'])
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('refuses a changed host key with SSH_HOST_KEY and runs nothing', async () => {
    const marker = join(work, 'should-not-exist')
    const session = new OpenSshSession('cp-mismatch', 'cp-mismatch', options())
    await expect(session.run(['touch', marker])).rejects.toMatchObject({
      code: 'SSH_HOST_KEY',
      exitCode: 3,
      message: expect.stringContaining('cp-mismatch'),
    })
    expect(() => statSync(marker)).toThrow()
  })

  it('never accepts an unknown host key', async () => {
    const session = new OpenSshSession('cp-unknown', 'cp-unknown', options())
    await expect(session.run(['true'])).rejects.toMatchObject({code: 'SSH_HOST_KEY'})
    expect(readFileSync(join(work, 'empty_known_hosts'), 'utf8')).toBe('')
  })

  it("lets an explicit --ssh-option StrictHostKeyChecking win (the user's choice)", async () => {
    const session = new OpenSshSession(
      'cp-unknown',
      'cp-unknown',
      options({extraOptions: ['StrictHostKeyChecking=accept-new', `UserKnownHostsFile=${join(work, 'accepted')}`]}),
    )
    expect((await session.run(['true'])).exitCode).toBe(0)
  })

  it('reports sudo that wants a password as SUDO_PASSWORD_REQUIRED', async () => {
    const session = new OpenSshSession('cp-nosudo', 'cp-nosudo', options())
    await expect(session.run(['true'])).rejects.toMatchObject({
      code: 'SUDO_PASSWORD_REQUIRED',
      exitCode: 3,
      hint: expect.stringContaining('NOPASSWD'),
    })
    const direct = new OpenSshSession('cp-nosudo', 'cp-nosudo', options({sudo: false}))
    expect((await direct.run(['id', '-u'])).stdout.toString().trim()).toBe('0')
  })

  it('reports a wrong key as SSH_AUTH_FAILED and a closed port as SSH_UNREACHABLE', async () => {
    await expect(new OpenSshSession('cp-noauth', 'cp-noauth', options()).run(['true'])).rejects.toMatchObject({
      code: 'SSH_AUTH_FAILED',
    })
    await expect(new OpenSshSession('cp-down', 'cp-down', options()).run(['true'])).rejects.toMatchObject({
      code: 'SSH_UNREACHABLE',
      message: expect.stringContaining('cp-down'),
    })
  })

  it('times out a hanging command with SSH_TIMEOUT', async () => {
    const session = new OpenSshSession('cp-1', 'cp-1', options())
    await expect(session.run(['sleep', '30'], {timeoutMs: 1500})).rejects.toMatchObject({code: 'SSH_TIMEOUT'})
  })

  it('reaches a node by InternalIP with --ssh-address internal-ip', async () => {
    const connector = new OpenSshConnector(
      options({
        address: 'internal-ip',
        port: good.port,
        identity: good.clientKey,
        user: 'root',
        configFile: undefined,
        extraOptions: [`UserKnownHostsFile=${join(work, 'known_hosts')}`, 'GlobalKnownHostsFile=/dev/null'],
      }),
    )
    const session = connector.open({name: 'cp-1', internalIP: '127.0.0.1'})
    expect(session.address).toBe('127.0.0.1')
    expect((await session.run(['true'])).exitCode).toBe(0)
    expect(() => connector.open({name: 'cp-2'})).toThrow(/InternalIP/)
  })
})
