/**
 * The model layer: the architecture table, the Model class that owns the native handle, and loading
 * weights into it.
 */
export * from './architectures.js';
export { ceilCount } from './counts.js';
export { Model, createModel, setThreads, threadCount, type ModelOptions } from './model.js';
export { loadHints, loadWeights } from './state-dict.js';
