/**
 * `@forgeone/crypto`: hashes and signatures behind a provider, key files, trust roots with rotation,
 * and signed `.forgepkg` packages.
 *
 * @packageDocumentation
 */
export type { CryptoProvider, HashStream, Ed25519KeyPair, Signer } from './CryptoProvider.js';
export { NodeCryptoProvider } from './NodeCryptoProvider.js';
export type { NodeCryptoProviderOptions } from './NodeCryptoProvider.js';
export { NobleCryptoProvider } from './NobleCryptoProvider.js';
export { checkEd25519Encoding, isAcceptablePointEncoding, isCanonicalScalar, SMALL_ORDER_Y } from './ed25519-rule.js';
export { SigningKey, keyIdOf, publicKeyInfo, saveSigningKey, savePublicKey, loadSigningKey, loadPublicKey } from './keys.js';
export type { PublicKeyInfo, SaveKeyOptions, LoadKeyOptions } from './keys.js';
export { countSignatures } from './quorum.js';
export type { SignatureEntry, SignatureRejection, QuorumOutcome } from './quorum.js';
export {
  TRUST_ROOT_SIGNING_PREFIX,
  REQUIRED_ROLES,
  TrustRootSchema,
  TrustRoleSchema,
  TrustRootSignedSchema,
  parseTrustRoot,
  trustRootSigningBytes,
  roleKeys,
  signTrustRoot,
  verifyTrustRoot,
  updateTrustRoot,
  createTrustRoot,
  nextTrustRoot,
} from './trust-root.js';
export type { TrustRole, TrustRootSigned, TrustRootDocument, VerifyTrustRootOptions, TrustRootVerification, TrustRootInit, TrustRootChange } from './trust-root.js';
export { createMemoryTrustState, openFileTrustState } from './state.js';
export type { TrustState } from './state.js';
export {
  FORGEPKG_MAGIC,
  FORGEPKG_FORMAT_VERSION,
  FORGEPKG_SIGNING_PREFIX,
  DEFAULT_PACKAGE_LIMITS,
  parsePackage,
  decodeManifest,
  encodePackage,
  packageSigningBytes,
} from './forgepkg/format.js';
export type { PackageLimits, ParsedPackage, PackageParts } from './forgepkg/format.js';
export { ManifestSchema, ManifestFileSchema, ManifestTemplateSchema, PACKAGE_NAME, CAPABILITY } from './forgepkg/manifest.js';
export type { Manifest, ManifestTemplate } from './forgepkg/manifest.js';
export { checkPackagePath, pathCollisionKey, MAX_PATH_BYTES, MAX_SEGMENT_BYTES } from './forgepkg/paths.js';
export { buildPackage, signPackage, readPackageDirectory, MANIFEST_TEMPLATE_FILE } from './forgepkg/build.js';
export type { BuildPackageInput, BuildPackageOptions } from './forgepkg/build.js';
export { createPackageVerifier, verifyParsedPackage } from './forgepkg/verify.js';
export type { PackageVerifier, PackageVerifierDeps, VerifiedPackage, VerifyPackageOptions } from './forgepkg/verify.js';
export { createCryptoProvider } from './providers.js';
export type { CryptoProviderName } from './providers.js';
