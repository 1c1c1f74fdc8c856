// The ForgeOne WIT package (plugins/wit/forgeone.wit), embedded so that an installed CLI builds plugins outside the
// repository. It must equal that file byte for byte: test/plugin-manifest.test.ts fails when the two drift, and
// `EMBED_WIT=1 npx vitest run test/plugin-manifest.test.ts` (in apps/forgeone) rewrites this file from it.

/** The WIT package every plugin targets. */
export const FORGEONE_WIT_PACKAGE = 'forgeone:host@0.1.0';

/** The world a plugin targets unless its manifest names another. */
export const DEFAULT_WORLD = 'forgeone:host/plugin@0.1.0';

/** The text of plugins/wit/forgeone.wit: the `forgeone:host@0.1.0` package (log, kv, http, identity, info, time; world `plugin`). */
export const FORGEONE_WIT = `/// ForgeOne's own host interfaces. Every function here crosses the gate: the policy decides it from the
/// syscall name in its doc comment, and it is recorded in the container's execution DNA. A refused call
/// returns \`error\` with \`code\` set to a stable ForgeOne error code (\`POLICY_DENIED\`, \`POLICY_RATE_LIMITED\`,
/// \`CONTAINER_QUARANTINED\`, ...); functions without an error variant trap instead.
package forgeone:host@0.1.0;

/// An error from the host: a stable code and a message for people.
interface types {
  record host-error {
    /// Stable error code (see @forgeone/common ErrorCodes).
    code: string,
    /// What happened.
    message: string,
  }
}

/// Structured logging to the kernel. Syscall \`forgeone:log/write\`.
interface log {
  use types.{host-error};
  enum level { debug, info, warn, error }
  /// Write one log line.
  write: func(level: level, message: string) -> result<_, host-error>;
}

/// A key-value store private to the container (keys are namespaced by the kernel per container).
interface kv {
  use types.{host-error};
  /// Syscall \`forgeone:kv/get\`.
  get: func(key: string) -> result<option<list<u8>>, host-error>;
  /// Syscall \`forgeone:kv/set\`.
  set: func(key: string, value: list<u8>) -> result<_, host-error>;
  /// Syscall \`forgeone:kv/delete\`; returns whether the key existed.
  delete: func(key: string) -> result<bool, host-error>;
  /// Syscall \`forgeone:kv/list\`: keys starting with \`prefix\`, sorted.
  %list: func(prefix: string) -> result<list<string>, host-error>;
}

/// Outgoing HTTP through the kernel. Syscall \`forgeone:http/fetch\` (arguments: host, port, size).
interface http {
  use types.{host-error};
  record request {
    method: string,
    url: string,
    headers: list<tuple<string, string>>,
    body: option<list<u8>>,
  }
  record response {
    status: u16,
    headers: list<tuple<string, string>>,
    body: list<u8>,
  }
  fetch: func(req: request) -> result<response, host-error>;
}

/// Who the container runs as. Syscall \`forgeone:identity/get\`.
interface identity {
  use types.{host-error};
  record identity-info {
    subject: string,
    tenant: string,
    roles: list<string>,
    trust-level: string,
  }
  get: func() -> result<identity-info, host-error>;
}

/// What the container is. Syscall \`forgeone:info/get\`.
interface info {
  use types.{host-error};
  record container-info {
    container-id: string,
    package-name: string,
    package-version: string,
    kernel-version: string,
  }
  get: func() -> result<container-info, host-error>;
}

/// Time. Syscall \`forgeone:time/now\`: wall-clock milliseconds since the epoch (recorded for replay).
interface time {
  use types.{host-error};
  now: func() -> result<u64, host-error>;
}

/// A ForgeOne plugin: imports the host interfaces it needs, exports \`run\`.
world plugin {
  import log;
  import kv;
  import http;
  import identity;
  import info;
  import time;
  /// The plugin's entry point: takes an input string, returns an output string or an error message.
  export run: func(input: string) -> result<string, string>;
}
`;
