export * from './state.js';
export * from './snapshotter.js';
export * from './module.js';
export * from './component.js';
