import { createManualClock, isForgeError } from '@forgeone/common';
import { SigningKey } from '@forgeone/crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { MAX_TOKEN_TTL_SECONDS, TOKEN_AUDIENCE, TOKEN_ISSUER, createTokenVerifier, ed25519PublicKeyObject, issueToken, tokenKeysFromTrustRoot } from '../src/tokens.js';
import { crypto, makeKeys, makeTrustRoot } from './fixture.js';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isForgeError(e)) return e.code;
    throw e;
  }
  return 'no error';
}

describe('API tokens', () => {
  const key = SigningKey.generate(crypto);
  const other = SigningKey.generate(crypto);

  it('issues an EdDSA JWT whose claims verify against the issuing key', async () => {
    const clock = createManualClock(Date.UTC(2030, 0, 1));
    const token = await issueToken({ key, role: 'operator', subject: 'user:alice', ttlSeconds: 3600, clock });
    const [header] = token.split('.');
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: key.keyId });
    const claims = await createTokenVerifier({ keys: [key.toPublic()], clock }).verify(token);
    expect(claims).toMatchObject({ subject: 'user:alice', role: 'operator', keyId: key.keyId, issuedAt: Date.UTC(2030, 0, 1) / 1000, expiresAt: Date.UTC(2030, 0, 1) / 1000 + 3600 });
    expect(claims.tokenId).toMatch(/^tok_/);
  });

  it('refuses expired tokens, also once they were verified and cached', async () => {
    const clock = createManualClock(Date.UTC(2030, 0, 1));
    const verifier = createTokenVerifier({ keys: [key.toPublic()], clock, clockToleranceSeconds: 0 });
    const token = await issueToken({ key, role: 'reader', subject: 'user:bob', ttlSeconds: 60, clock });
    await verifier.verify(token);
    clock.advance(61_000);
    expect(await code(verifier.verify(token))).toBe('AUTH_EXPIRED');
    // A fresh verifier (no cache) says the same.
    expect(await code(createTokenVerifier({ keys: [key.toPublic()], clock, clockToleranceSeconds: 0 }).verify(token))).toBe('AUTH_EXPIRED');
    // Issued in the future.
    const future = await issueToken({ key, role: 'reader', subject: 'user:bob', ttlSeconds: 60, clock: createManualClock(Date.UTC(2031, 0, 1)) });
    expect(await code(verifier.verify(future))).toBe('AUTH_EXPIRED');
  });

  it('refuses tokens signed by another key, altered, unsigned, or of another algorithm', async () => {
    const verifier = createTokenVerifier({ keys: [key.toPublic()] });
    expect(await code(verifier.verify(await issueToken({ key: other, role: 'admin', subject: 'user:eve', ttlSeconds: 60 })))).toBe('AUTH_INVALID');
    // Another key claiming the trusted key's id.
    const forged = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.keyId })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject('user:eve')
      .setIssuedAt()
      .setExpirationTime('1h')
      .setJti('x')
      .sign(generateKeyPairSync('ed25519').privateKey);
    expect(await code(verifier.verify(forged))).toBe('AUTH_INVALID');
    // A reader token whose payload is edited to say admin.
    const good = await issueToken({ key, role: 'reader', subject: 'user:bob', ttlSeconds: 60 });
    const [h, p, s] = good.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const edited = `${h}.${Buffer.from(JSON.stringify({ ...payload, role: 'admin' })).toString('base64url')}.${s}`;
    expect(await code(verifier.verify(edited))).toBe('AUTH_INVALID');
    const unsigned = new UnsecuredJWT({ role: 'admin' }).setSubject('user:eve').setIssuer(TOKEN_ISSUER).setAudience(TOKEN_AUDIENCE).setIssuedAt().setExpirationTime('1h').encode();
    expect(await code(verifier.verify(unsigned))).toBe('AUTH_INVALID');
    const hs = await new SignJWT({ role: 'admin' }).setProtectedHeader({ alg: 'HS256', kid: key.keyId }).setSubject('x').setIssuedAt().setExpirationTime('1h').sign(new Uint8Array(32));
    expect(await code(verifier.verify(hs))).toBe('AUTH_INVALID');
    for (const junk of ['', 'abc', 'a.b.c', `${good}x.y`, 'x'.repeat(10_000)]) expect(await code(verifier.verify(junk))).toBe('AUTH_INVALID');
  });

  it('refuses tokens without a known role, for another audience, or living too long', async () => {
    const verifier = createTokenVerifier({ keys: [key.toPublic()] });
    const sign = (claims: Record<string, unknown>, ttl = 3600, aud = TOKEN_AUDIENCE) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: key.keyId }).setIssuer(TOKEN_ISSUER).setAudience(aud).setSubject('user:x').setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + ttl).setJti('j1').sign(createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(key.publicKey).toString('base64url'), d: Buffer.from(key.exportSecret()).toString('base64url') }, format: 'jwk' }));
    expect(await code(verifier.verify(await sign({ role: 'root' })))).toBe('AUTH_INVALID');
    expect(await code(verifier.verify(await sign({})))).toBe('AUTH_INVALID');
    expect(await code(verifier.verify(await sign({ role: 'admin' }, 3600, 'elsewhere')))).toBe('AUTH_INVALID');
    expect(await code(verifier.verify(await sign({ role: 'admin' }, MAX_TOKEN_TTL_SECONDS + 3600)))).toBe('AUTH_INVALID');
    expect((await verifier.verify(await sign({ role: 'admin' }))).role).toBe('admin');
  });

  it('checks what it is asked to issue', async () => {
    expect(await code(issueToken({ key, role: 'root' as never, subject: 'a', ttlSeconds: 60 }))).toBe('INVALID_ARGUMENT');
    expect(await code(issueToken({ key, role: 'admin', subject: '', ttlSeconds: 60 }))).toBe('INVALID_ARGUMENT');
    expect(await code(issueToken({ key, role: 'admin', subject: 'a\nb', ttlSeconds: 60 }))).toBe('INVALID_ARGUMENT');
    expect(await code(issueToken({ key, role: 'admin', subject: 'a', ttlSeconds: 0 }))).toBe('INVALID_ARGUMENT');
    expect(await code(issueToken({ key, role: 'admin', subject: 'a', ttlSeconds: MAX_TOKEN_TTL_SECONDS + 1 }))).toBe('INVALID_ARGUMENT');
    expect(() => createTokenVerifier({ keys: [] })).toThrow(/at least one/);
    expect(() => ed25519PublicKeyObject(new Uint8Array(31))).toThrow(/32 bytes/);
  });

  it('takes the keys of the trust root\'s api role', () => {
    const keys = makeKeys();
    expect(tokenKeysFromTrustRoot(makeTrustRoot(keys)).map((k) => k.keyId)).toEqual([keys.api.keyId]);
    expect(() => tokenKeysFromTrustRoot(makeTrustRoot(keys, false))).toThrow(/no role "api"/);
  });
});
