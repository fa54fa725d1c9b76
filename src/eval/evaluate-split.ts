/**
 * Evaluation of a model on one split: one inference pass (eval mode, eval transform, metadata order) and
 * the group metrics of src/metrics/groups.ts. Decoding overlaps the forward passes (loader prefetch), and
 * a shared ImageCache makes every pass after the first decode nothing. The pass is evaluateVariants' with
 * the unedited model as its only variant.
 */
import type { Model } from '../model/index.js';
import type { Dataset, Split } from '../data/types.js';
import type { GroupMetrics } from '../metrics/groups.js';
import { evaluateVariants, type EvaluateOptions } from './evaluate-variants.js';

export { splitMetrics, type EvaluateOptions } from './evaluate-variants.js';

/**
 * Runs the model over `ds.samples[split]` and computes the group metrics.
 * @returns outputs: [n, numClasses] row-major, row i = sample i of the split (NaN rows for skipped
 *   images); metrics over the images that were evaluated; seconds: wall time of the pass, of which
 *   dataSeconds waiting for decoded batches (decoding overlaps the model) and computeSeconds in forward
 * @throws SpurmemError naming the image and metadata line of an image that does not decode (unless
 *   skipBadImages), or the model's error
 */
export async function evaluateSplit(
  model: Model,
  ds: Dataset,
  split: Split,
  o: EvaluateOptions,
): Promise<{ outputs: Float32Array; metrics: GroupMetrics; seconds: number; dataSeconds: number; computeSeconds: number }> {
  const r = await evaluateVariants(model, ds, split, [{ start: 0, enter: () => undefined, leave: () => undefined }], o);
  return { outputs: r.results[0].outputs, metrics: r.results[0].metrics, seconds: r.seconds, dataSeconds: r.dataSeconds, computeSeconds: r.computeSeconds };
}
