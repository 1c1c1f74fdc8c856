// The worker script a sandboxed container runs in (filled in by the sandbox module).
export {};
