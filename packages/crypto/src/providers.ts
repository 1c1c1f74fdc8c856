import { ForgeError } from '@forgeone/common';
import type { CryptoProvider } from './CryptoProvider.js';
import { NobleCryptoProvider } from './NobleCryptoProvider.js';
import { NodeCryptoProvider } from './NodeCryptoProvider.js';

/** The built-in providers. */
export type CryptoProviderName = 'node' | 'noble';

/**
 * Create a built-in provider by name: `node` (fast, OpenSSL) or `noble` (portable, pure JavaScript).
 * Both follow one Ed25519 rule, so decisions never depend on the choice.
 * @param name - which provider; default `node`
 * @returns the provider
 * @throws ForgeError `INVALID_ARGUMENT` for an unknown name
 */
export function createCryptoProvider(name: CryptoProviderName = 'node'): CryptoProvider {
  switch (name) {
    case 'node':
      return new NodeCryptoProvider();
    case 'noble':
      return new NobleCryptoProvider();
    default:
      throw new ForgeError('INVALID_ARGUMENT', `unknown crypto provider: ${String(name)}`);
  }
}
