import type { ErrorCode } from '@forgeone/common';

/**
 * The error codes of `forgeone plugin new` and `forgeone plugin build`, in one place so that they can move to
 * dedicated codes (`PLUGIN_MANIFEST_INVALID`, `PLUGIN_BUILD_FAILED`) without touching the build logic.
 */
export const PluginErrorCodes = {
  /** `forgeone.plugin.json` is not JSON or does not match its schema (the message names the field). */
  manifestInvalid: 'CONFIG_INVALID',
  /** The plugin directory, its manifest or its entry file does not exist. */
  missing: 'NOT_FOUND',
  /** `plugin new` found something at the target path and refuses to overwrite it. */
  exists: 'ALREADY_EXISTS',
  /** The source does not compile or throws while initialising (syntax error, top-level exception). */
  buildFailed: 'WASM_TRANSPILE_FAILED',
  /** The source imports something the WIT world does not offer, or the component imports more than the manifest requests. */
  importNotAllowed: 'WASM_LINK_ERROR',
  /** The source does not export what the world requires (`run`). */
  exportMissing: 'WASM_EXPORT_MISSING',
  /** Componentizing did not finish within its time limit. */
  timeout: 'SANDBOX_TIMEOUT',
} as const satisfies Record<string, ErrorCode>;
