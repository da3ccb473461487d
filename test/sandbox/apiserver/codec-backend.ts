/** The encryption backend main.ts uses. Identity-only until the plugin's codec and config loader land. */
import {identityBackend, type EncryptionBackend} from './encryption.js'

export const codecBackend: EncryptionBackend = identityBackend
