import {describe, expect, it} from 'vitest'

import {translateSshFailure} from '../../../src/ssh/ssh-errors.js'

describe('ssh failure translation', () => {
  const cases: Array<[number, string, string, number]> = [
    [
      255,
      '@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\n',
      'SSH_HOST_KEY',
      3,
    ],
    [
      255,
      'No ED25519 host key is known for cp-1 and you have requested strict checking.\nHost key verification failed.\n',
      'SSH_HOST_KEY',
      3,
    ],
    [255, 'root@127.0.0.1: Permission denied (publickey).\n', 'SSH_AUTH_FAILED', 3],
    [255, 'ssh: connect to host 10.0.0.9 port 22: Connection timed out\n', 'SSH_TIMEOUT', 3],
    [255, 'ssh: connect to host 127.0.0.1 port 1: Connection refused\n', 'SSH_UNREACHABLE', 3],
    [255, 'ssh: Could not resolve hostname cp-9: Name or service not known\n', 'SSH_UNREACHABLE', 3],
    [255, 'something odd\n', 'SSH_FAILED', 3],
    [1, 'sudo: a password is required\n', 'SUDO_PASSWORD_REQUIRED', 3],
    [1, 'alice is not in the sudoers file.\n', 'SUDO_NOT_ALLOWED', 3],
    [127, 'bash: line 1: sudo: command not found\n', 'SUDO_MISSING', 3],
  ]
  for (const [exitCode, stderr, code, exit] of cases) {
    it(`maps "${stderr.trim().split('\n').at(-1)}" to ${code}`, () => {
      const error = translateSshFailure('cp-1', '127.0.0.1', exitCode, stderr)
      expect(error?.code).toBe(code)
      expect(error?.exitCode).toBe(exit)
      expect(error?.message).toContain('cp-1')
      expect(error?.hint).toBeTruthy()
    })
  }

  it("leaves a remote command's own failure to the caller", () => {
    expect(translateSshFailure('cp-1', 'cp-1', 1, 'cat: /nope: No such file or directory\n')).toBeUndefined()
    expect(translateSshFailure('cp-1', 'cp-1', 0, '')).toBeUndefined()
  })
})
