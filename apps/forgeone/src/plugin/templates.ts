import { PLUGIN_MANIFEST_FILE } from './manifest.js';

/** What `forgeone plugin new` writes, by relative path. */
export interface PluginTemplate {
  /** File contents by relative path (`/`-separated). */
  readonly files: ReadonlyMap<string, string>;
}

/**
 * The documentation of `forgeone.plugin.json`, shared by the generated README and the CLI's help.
 */
export const PLUGIN_MANIFEST_DOC = `## \`${PLUGIN_MANIFEST_FILE}\`

| field | default | meaning |
|---|---|---|
| \`name\` | (required) | package name: lowercase npm-style, optionally \`@scope/name\` |
| \`version\` | (required) | Semantic Versioning 2.0.0; a host refuses a version lower than one it already accepted |
| \`description\`, \`author\` | \`""\` | shown by \`forgeone pkg inspect\` |
| \`entry\` | \`src/index.js\` | the JavaScript module to componentize: one ES module (bundle npm dependencies first) |
| \`world\` | \`forgeone:host/plugin@0.1.0\` | the WIT world the component targets |
| \`wit\` | none | a directory of your own WIT for a custom world; \`forgeone:host\` is available to it as a dependency |
| \`engineFeatures\` | \`[]\` | JavaScript runtime features to keep: \`stdio\` (console), \`random\` (Math.random, crypto), \`clocks\` (Date.now), \`http\` (fetch). Each adds WASI imports; with none the component imports only its world |
| \`capabilities\` | nothing | what the plugin asks to be allowed (below) |
| \`validDays\` | \`365\` | package lifetime from the build |
| \`include\` | \`[]\` | further files or directories to pack (README.md is packed when it exists) |

\`capabilities\` (all optional; absent means not requested):

| field | type | host interface | syscalls |
|---|---|---|---|
| \`log\` | boolean | \`forgeone:host/log\` | \`forgeone:log/write\` |
| \`kv\` | boolean | \`forgeone:host/kv\` | \`forgeone:kv/get\`, \`set\`, \`delete\`, \`list\` |
| \`http\` | \`["host:port", ...]\` | \`forgeone:host/http\` | \`forgeone:http/fetch\` to those destinations (\`*.example.com:443\` for subdomains) |
| \`identity\` | boolean | \`forgeone:host/identity\` | \`forgeone:identity/get\` |
| \`info\` | boolean | \`forgeone:host/info\` | \`forgeone:info/get\` |
| \`time\` | boolean | \`forgeone:host/time\` | \`forgeone:time/now\` |
| \`preopens\` | \`[{ "path": "/data", "access": "read" \\| "read-write" }]\` | \`wasi:filesystem\` | \`wasi:filesystem/read\` (and \`write\`) under that guest path |

A request is not a grant: the host's policy decides every call, and denies what it does not allow. The build
refuses a component that imports an interface the manifest does not request (\`WASM_LINK_ERROR\`), so the
package's capability list is an honest upper bound of what the plugin can ask for.
`;

function manifestJson(name: string): string {
  return `${JSON.stringify(
    {
      name,
      version: '0.1.0',
      description: `The ${name} ForgeOne plugin.`,
      author: '',
      entry: 'src/index.js',
      world: 'forgeone:host/plugin@0.1.0',
      engineFeatures: [],
      capabilities: { log: true },
      validDays: 365,
    },
    null,
    2,
  )}\n`;
}

const INDEX_JS = `// A ForgeOne plugin: one ES module componentized against the world forgeone:host/plugin@0.1.0.
// Imports name WIT interfaces (\`forgeone:host/log\` is short for \`forgeone:host/log@0.1.0\`); every call crosses
// the host's gate, where the policy decides it. Host functions with an error result throw on error: the thrown
// value's \`payload\` is the host-error record { code, message }.
import { write } from 'forgeone:host/log@0.1.0';

/**
 * The entry point. Returning a string is the \`ok\` result; throwing a *string* is the \`err\` result. Throwing
 * anything else (an Error) traps the component: catch errors and rethrow their message.
 * @param {string} input
 * @returns {string}
 */
export function run(input) {
  const greeting = \`Hello, \${input === '' ? 'world' : input}!\`;
  write('info', greeting);
  return greeting;
}
`;

function readme(name: string): string {
  return `# ${name}: a ForgeOne plugin

\`src/index.js\` is componentized into a WebAssembly component for the world \`forgeone:host/plugin@0.1.0\`
(it imports the host interfaces it needs and exports \`run(input: string) -> result<string, string>\`), then
packed with its manifest into a signed \`.forgepkg\`:

\`\`\`sh
forgeone plugin build . --key path/to/release.key        # writes dist/${name.replace(/^@[^/]+\//, '')}.forgepkg
forgeone pkg verify dist/${name.replace(/^@[^/]+\//, '')}.forgepkg --trust-root trust-root.json
\`\`\`

Componentizing embeds a JavaScript engine (SpiderMonkey), so a component is about 11 MB and a build takes
several seconds. The module's top level runs once at build time (the engine is snapshotted after it): keep
side effects inside \`run\`.

\`run\` returns a string for the \`ok\` result and throws a **string** for the \`err\` result; a thrown \`Error\`
traps the component (componentize-js 0.17), so catch and rethrow \`e.message\`. A host function that fails
throws a value whose \`payload\` is the host's \`{ code, message }\` (e.g. \`POLICY_DENIED\`).

${PLUGIN_MANIFEST_DOC}`;
}

function packageJson(name: string): string {
  return `${JSON.stringify(
    {
      name: name.startsWith('@') ? name : `forgeone-plugin-${name}`,
      version: '0.1.0',
      private: true,
      type: 'module',
      scripts: { build: 'forgeone plugin build .' },
    },
    null,
    2,
  )}\n`;
}

/**
 * The files of a new plugin project: manifest, a working `src/index.js` that logs through
 * `forgeone:host/log` and returns a greeting, a README documenting the manifest, a package.json, a .gitignore.
 * @param name - the plugin's package name (already validated)
 * @returns the files to write
 */
export function pluginTemplate(name: string): PluginTemplate {
  return {
    files: new Map([
      [PLUGIN_MANIFEST_FILE, manifestJson(name)],
      ['src/index.js', INDEX_JS],
      ['README.md', readme(name)],
      ['package.json', packageJson(name)],
      ['.gitignore', 'dist/\n'],
    ]),
  };
}
