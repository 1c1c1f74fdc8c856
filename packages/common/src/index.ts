/**
 * `@forgeone/common`: the vocabulary every ForgeOne package shares.
 *
 * @packageDocumentation
 */
export { ErrorCodes, ForgeError, isForgeError, toForgeError, isErrorCode } from './errors.js';
export type { ErrorCode, ErrorCodeInfo, ForgeErrorOptions } from './errors.js';
export { ok, err, fail, unwrap } from './result.js';
export type { Result, Ok, Err } from './result.js';
export { TrustLevel, trustVector, trustLevelName, compareTrust, meetsTrust } from './trust.js';
export type { TrustVector, TrustLevelName } from './trust.js';
export { createIdentity } from './identity.js';
export type { IdentityContext, IdentityInit } from './identity.js';
export { systemClock, createManualClock } from './clock.js';
export type { Clock, ManualClock } from './clock.js';
export { newId, isId, idTime } from './ids.js';
export { toHex, fromHex, bytesEqual, concatBytes, utf8, decodeUtf8Strict } from './bytes.js';
export { canonicalJson, canonicalJsonBytes, formatFieldPath } from './canonical.js';
export type { CanonicalValue } from './canonical.js';
export { parseSemver, compareSemver } from './semver.js';
export type { SemVer } from './semver.js';
export { KNOWN_SYSCALLS, SYSCALL_NAME, SyscallTable } from './syscalls.js';
export type { KnownSyscall } from './syscalls.js';
