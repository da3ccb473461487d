import {spawnSync} from 'node:child_process'

import type {RemoteRunOptions, RemoteRunResult, SshSession} from '../../../src/ssh/ssh-session.js'

/** An SshSession that runs argv on this machine (no ssh, no sudo): exercises the remote scripts for real. */
export class LocalSession implements SshSession {
  readonly commands: string[][] = []
  readonly stdins: string[] = []
  constructor(
    readonly node = 'local',
    readonly address = 'localhost',
  ) {}

  async run(argv: readonly string[], options: RemoteRunOptions = {}): Promise<RemoteRunResult> {
    this.commands.push([...argv])
    if (options.stdin !== undefined) this.stdins.push(Buffer.from(options.stdin).toString('utf8'))
    const [cmd = '', ...args] = argv
    const result = spawnSync(cmd, args, {input: options.stdin})
    return {exitCode: result.status ?? -1, stdout: result.stdout, stderr: result.stderr.toString('utf8')}
  }
}
