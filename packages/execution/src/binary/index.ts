export { WasmReader, encodeU, encodeName } from './leb.js';
export { SectionId, inspectModule, readSections } from './module.js';
export type { ExternKind, ExportInfo, ImportInfo, MemoryInfo, ModuleInfo, RawSection } from './module.js';
export { limitMemory, limitMemoryDetailed, memoryExceeded, MAX_PAGES_32, PAGE_SIZE, MEMORY_EXCEEDED_EXPORT } from './limit-memory.js';
export type { LimitMemoryOptions, LimitedModule } from './limit-memory.js';
export * from './export-state.js';
